"""``/api/engine``: the agent engines available to the signed-in account, and its own
OpenAI-compatible endpoint (set, remove, test)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from neonrain.accounts.deps import CurrentIdentity, ReadingIdentity
from neonrain.engines import service
from neonrain.engines.schemas import EngineOut, EngineTestOut, SetOpenAIBody
from neonrain.state import Db, ReadDb, State

router = APIRouter(prefix="/api/engine", tags=["engine"])


@router.get("", response_model=EngineOut)
async def get_engine(identity: ReadingIdentity, db: ReadDb, state: State) -> EngineOut:
    return await service.engine_out(db, state.install_engines, identity.user.id)


@router.put("/openai", response_model=EngineOut)
async def set_openai(
    body: SetOpenAIBody, identity: CurrentIdentity, db: Db, state: State
) -> EngineOut:
    return await service.set_openai(db, state.cipher, state.install_engines, identity.user.id, body)


@router.delete("/openai", status_code=status.HTTP_204_NO_CONTENT)
async def remove_openai(identity: CurrentIdentity, db: Db) -> Response:
    await service.remove_openai(db, identity.user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/openai/test", response_model=EngineTestOut)
async def test_openai(identity: CurrentIdentity, db: Db, state: State) -> EngineTestOut:
    return await service.test_openai(
        db, state.cipher, state.install_engines, identity.user.id, state.model_http
    )
