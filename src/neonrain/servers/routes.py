"""``/api/servers``: the signed-in account's server configurations, their stats and actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from neonrain import dashboard_reads, flows
from neonrain.accounts.deps import CurrentIdentity, ReadingIdentity
from neonrain.api_types import json_answer
from neonrain.servers import service
from neonrain.servers.schemas import (
    ActionPage,
    AddServerBody,
    ChannelList,
    ChannelOut,
    ServerConfigOut,
    ServerDetail,
    ServerList,
    StatsOut,
    UpdateServerBody,
)
from neonrain.state import Db, ReadDb, State

router = APIRouter(prefix="/api/servers", tags=["servers"])


@router.get("", response_model=ServerList)
async def list_servers(request: Request) -> Response:
    return json_answer(await dashboard_reads.server_list(request))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ServerConfigOut)
async def add_server(
    body: AddServerBody, identity: CurrentIdentity, db: Db, state: State
) -> ServerConfigOut:
    config = await service.add_server(
        db, state.cipher, state.discord_rest, state.install_engines, identity.user, body.guild_id
    )
    return await flows.readiness_of(db, state.install_engines, identity.user, config)


@router.get("/{server_id}", response_model=ServerDetail)
async def get_server(
    server_id: str, identity: ReadingIdentity, db: ReadDb, state: State
) -> ServerDetail:
    return await flows.server_detail(db, state.install_engines, identity.user, server_id)


@router.put("/{server_id}", response_model=ServerConfigOut)
async def update_server(
    server_id: str, body: UpdateServerBody, identity: CurrentIdentity, db: Db, state: State
) -> ServerConfigOut:
    config = await service.update_config(
        db,
        state.cipher,
        state.discord_rest,
        state.install_engines,
        identity.user,
        server_id,
        body.changes(),
    )
    return await flows.readiness_of(db, state.install_engines, identity.user, config)


@router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_server(
    server_id: str, identity: CurrentIdentity, db: Db, state: State
) -> Response:
    await flows.delete_server(db, state.chat_hub, identity.user.id, server_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{server_id}/channels", response_model=ChannelList)
async def server_channels(
    server_id: str, identity: CurrentIdentity, db: Db, state: State
) -> ChannelList:
    found = await service.server_channels(
        db, state.cipher, state.discord_rest, state.channel_cache, identity.user, server_id
    )
    return ChannelList(channels=[ChannelOut.model_validate(c, from_attributes=True) for c in found])


@router.get("/{server_id}/stats", response_model=StatsOut)
async def server_stats(
    server_id: str,
    identity: ReadingIdentity,
    db: ReadDb,
    days: Annotated[int, Query(ge=1, le=90)] = 30,
) -> StatsOut:
    return await service.daily_stats(db, identity.user.id, server_id, days)


@router.get("/{server_id}/actions", response_model=ActionPage)
async def server_actions(
    server_id: str,
    identity: ReadingIdentity,
    db: ReadDb,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    before: Annotated[str | None, Query(max_length=64)] = None,
    delivered: Annotated[bool | None, Query()] = None,
) -> ActionPage:
    return await service.list_actions(db, identity.user.id, server_id, limit, before, delivered)
