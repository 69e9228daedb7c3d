"""``/api/chat``: personas, conversation groups, message pages (``api.md`` § Chat)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from neonrain.accounts.deps import CurrentIdentity
from neonrain.chat import service
from neonrain.chat.schemas import (
    GroupBody,
    GroupDetail,
    GroupList,
    GroupPatchBody,
    MessagePage,
    PersonaBody,
    PersonaList,
    PersonaOut,
)
from neonrain.state import Db, State

router = APIRouter(prefix="/api/chat", tags=["chat"])


@router.get("/personas", response_model=PersonaList)
async def list_personas(identity: CurrentIdentity, db: Db) -> PersonaList:
    return PersonaList(personas=await service.list_personas(db, identity.user.id))


@router.post("/personas", status_code=status.HTTP_201_CREATED, response_model=PersonaOut)
async def create_persona(body: PersonaBody, identity: CurrentIdentity, db: Db) -> PersonaOut:
    return await service.create_persona(db, identity.user.id, body.nickname, body.color)


@router.delete("/personas/{persona_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_persona(persona_id: str, identity: CurrentIdentity, db: Db) -> Response:
    await service.delete_persona(db, identity.user.id, persona_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/groups", response_model=GroupList)
async def list_groups(
    identity: CurrentIdentity,
    db: Db,
    server_id: Annotated[str | None, Query(alias="serverId", max_length=64)] = None,
) -> GroupList:
    return GroupList(groups=await service.list_groups(db, identity.user.id, server_id or None))


@router.post("/groups", status_code=status.HTTP_201_CREATED, response_model=GroupDetail)
async def create_group(body: GroupBody, identity: CurrentIdentity, db: Db) -> GroupDetail:
    return await service.create_group(
        db, identity.user.id, body.server_id, body.pane_count, body.title
    )


@router.get("/groups/{group_id}", response_model=GroupDetail)
async def get_group(group_id: str, identity: CurrentIdentity, db: Db) -> GroupDetail:
    return await service.group_detail(db, identity.user.id, group_id)


@router.patch("/groups/{group_id}", response_model=GroupDetail)
async def rename_group(
    group_id: str, body: GroupPatchBody, identity: CurrentIdentity, db: Db
) -> GroupDetail:
    return await service.rename_group(db, identity.user.id, group_id, body.title)


@router.delete("/groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_group(group_id: str, identity: CurrentIdentity, db: Db, state: State) -> Response:
    agents = await service.delete_group(db, identity.user.id, group_id)
    await state.chat_hub.conversations_deleted(agents)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/conversations/{conversation_id}/messages", response_model=MessagePage)
async def list_messages(
    conversation_id: str,
    identity: CurrentIdentity,
    db: Db,
    before: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = service.PAGE_SIZE,
) -> MessagePage:
    return await service.messages_page(db, identity.user.id, conversation_id, before, limit)
