"""``/api/discord``: connect/disconnect the bot, its guilds, the dashboard status, and the
seed's removed endpoints (410 with their replacement)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response

from neonrain import dashboard_reads
from neonrain.accounts.deps import CurrentIdentity
from neonrain.api_types import json_answer
from neonrain.discord_link import service
from neonrain.discord_link.schemas import (
    ConnectBody,
    ConnectOut,
    DisconnectOut,
    GuildList,
    StatusOut,
)
from neonrain.errors import ApiError
from neonrain.servers import service as servers_service
from neonrain.state import Db, State

router = APIRouter(prefix="/api/discord", tags=["discord"])


@router.post("/connect", response_model=ConnectOut)
async def connect(body: ConnectBody, identity: CurrentIdentity, db: Db, state: State) -> ConnectOut:
    return await service.connect(db, state.cipher, state.discord_rest, identity.user, body.token)


@router.post("/disconnect", response_model=DisconnectOut)
async def disconnect(identity: CurrentIdentity, db: Db) -> DisconnectOut:
    return await service.disconnect(db, identity.user)


@router.get("/guilds", response_model=GuildList)
async def guilds(identity: CurrentIdentity, db: Db, state: State) -> GuildList:
    found = await service.list_bot_guilds(db, state.cipher, state.discord_rest, identity.user)
    return GuildList(guilds=await servers_service.guild_choices(db, identity.user.id, found))


@router.get("/status", response_model=StatusOut)
async def discord_status(request: Request) -> Response:
    return json_answer(await dashboard_reads.discord_status(request))


# The seed's deprecated endpoints (its Phase 4 end state: removed).
_UPDATE_SERVER = "PUT /api/servers/:serverId"
REMOVED_ENDPOINTS: dict[tuple[str, str], str] = {
    ("POST", "/guild"): "POST /api/servers",
    ("GET", "/guild"): "GET /api/servers",
    ("DELETE", "/guild"): "DELETE /api/servers/:serverId",
    ("GET", "/bot-status"): _UPDATE_SERVER,
    ("POST", "/bot-status"): _UPDATE_SERVER,
    ("GET", "/config"): _UPDATE_SERVER,
    ("POST", "/config"): _UPDATE_SERVER,
}


def _removed(replacement: str) -> ApiError:
    return ApiError(
        410,
        "ENDPOINT_REMOVED",
        f"This endpoint was removed with multi-server support; use {replacement}.",
        replacement=replacement,
    )


def _gone(replacement: str) -> Callable[[], Awaitable[None]]:
    async def gone() -> None:
        raise _removed(replacement)

    return gone


for (_method, _path), _replacement in REMOVED_ENDPOINTS.items():
    router.add_api_route(
        _path,
        _gone(_replacement),
        methods=[_method],
        status_code=410,
        include_in_schema=False,
        name=f"removed {_method} {_path}",
    )
