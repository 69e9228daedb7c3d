"""The internal API the Discord worker uses (``X-API-Key``; not in the public OpenAPI document)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.responses import StreamingResponse

from neonrain.contract import (
    MAX_ID_LENGTH,
    AgentActionBody,
    CursorsBody,
    StatsBody,
    WorkerStatusBody,
)
from neonrain.crypto import constant_time_equals
from neonrain.discord_link import service as discord_service
from neonrain.errors import ApiError, validation_error
from neonrain.internal_api import service
from neonrain.servers import reports
from neonrain.servers.schemas import AgentActionCreated, StatsResult
from neonrain.sharding import MAX_SHARDS
from neonrain.state import Db, ReadDb, State


async def require_internal_key(
    state: State, x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> None:
    if not x_api_key or not constant_time_equals(x_api_key, state.internal_api_key):
        raise ApiError(401, "INVALID_API_KEY", "A valid X-API-Key header is required.")


router = APIRouter(
    prefix="/api/discord",
    tags=["internal"],
    include_in_schema=False,
    dependencies=[Depends(require_internal_key)],
)


@router.get("/tokens")
async def tokens(
    state: State,
    shard: Annotated[int | None, Query(ge=0, lt=MAX_SHARDS)] = None,
    shards: Annotated[int | None, Query(ge=1, le=MAX_SHARDS)] = None,
    wait: Annotated[float, Query(ge=0, le=service.MAX_WAIT_SECONDS)] = 0.0,
    since: Annotated[int | None, Query(ge=0)] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    if (shard is None) != (shards is None) or (
        shard is not None and shards is not None and shard >= shards
    ):
        raise validation_error("shard and shards go together, with 0 <= shard < shards.")
    answer = await service.tokens(
        state.sessionmaker,
        state.notifier,
        state.cipher,
        service.TokensRequest(shard=shard, shards=shards, since=since),
        if_none_match=if_none_match,
        wait=wait,
        engines=state.install_engines,
    )
    headers = {"ETag": answer.etag, "Cache-Control": "no-store"}
    if answer.body is None:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return StreamingResponse(answer.body, media_type="application/json", headers=headers)


@router.post("/stats", response_model=StatsResult)
async def stats(body: StatsBody, db: Db) -> StatsResult:
    return await reports.apply_stats(db, body.events)


@router.post(
    "/agent-actions", status_code=status.HTTP_201_CREATED, response_model=AgentActionCreated
)
async def agent_actions(body: AgentActionBody, db: Db) -> AgentActionCreated:
    return AgentActionCreated(id=await reports.record_agent_action(db, body))


@router.post("/worker-status", status_code=status.HTTP_204_NO_CONTENT)
async def worker_status(body: WorkerStatusBody, db: Db) -> Response:
    await discord_service.record_worker_status(db, body.tokens)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/cursors", status_code=status.HTTP_204_NO_CONTENT)
async def record_cursors(body: CursorsBody, db: Db) -> Response:
    await reports.record_cursors(db, body.cursors)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/cursors", response_model=CursorsBody)
async def read_cursors(
    db: ReadDb,
    user_id: Annotated[list[str], Query(alias="userId", max_length=1000)],
) -> CursorsBody:
    if any(not 0 < len(u) <= MAX_ID_LENGTH for u in user_id):
        raise validation_error("userId: each is an account id.")
    return CursorsBody(cursors=tuple(await reports.read_cursors(db, user_id)))
