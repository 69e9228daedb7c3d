"""The web chat's data: personas, conversation groups bound to a server, conversations, messages.

Every function takes the signed-in user's id and scopes its queries to it: another account's ids
look exactly like ids that do not exist (404). The WebSocket side (``chat/ws.py``) uses the same
functions to store messages and to re-read the server's configuration on every message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain.accounts.models import User
from neonrain.api_types import now_ms, plausible_id
from neonrain.chat.markdown import render_markdown
from neonrain.chat.models import ChatConversation, ChatConversationGroup, ChatMessage, ChatPersona
from neonrain.chat.schemas import (
    ConversationDetail,
    ConversationSummary,
    GroupDetail,
    GroupSummary,
    MessageOut,
    MessagePage,
    PersonaOut,
)
from neonrain.contract import ServerConfig, ServerEntry
from neonrain.db.base import iso
from neonrain.errors import ApiError
from neonrain.huma.prompt import cut
from neonrain.servers import service as servers_service
from neonrain.servers.models import Server, UserServerConfig

#: Persona colours, in the order new personas get them: ten hues that each read as name text on
#: the chat pane's background (#2b2d31) with a contrast of at least 4.5:1 (WCAG AA).
PALETTE: Final = (
    "#8d98ff", "#57f287", "#fee75c", "#ff7fc8", "#ff7a7a",
    "#3ed6b5", "#faa61a", "#38c6ff", "#c49cf5", "#c6ef5e",
)  # fmt: skip
MAX_PERSONAS: Final = 50
DEFAULT_GROUP_TITLE: Final = "New chat"
DEFAULT_CONVERSATION_TITLE: Final = "New conversation"
TITLE_LENGTH: Final = 60
PAGE_SIZE: Final = 50
HISTORY_MESSAGES: Final = 50


class ChatNotFound(ApiError):
    def __init__(self, what: str = "That chat", code: str = "CHAT_NOT_FOUND") -> None:
        super().__init__(404, code, f"{what} was not found.")


def user_display_name(user: User) -> str:
    """The account's own name in chats: the local part of its email."""
    email = user.email or ""
    return email.split("@", 1)[0] or "me"


# ----------------------------------------------------------------------------------- personas


def persona_out(persona: ChatPersona) -> PersonaOut:
    return PersonaOut(id=persona.id, nickname=persona.nickname, color=persona.color)


async def list_personas(db: AsyncSession, user_id: str) -> list[PersonaOut]:
    rows = await db.scalars(
        select(ChatPersona)
        .where(ChatPersona.user_id == user_id)
        .order_by(ChatPersona.created_at, ChatPersona.id)
    )
    return [persona_out(p) for p in rows]


def _persona_exists() -> ApiError:
    return ApiError(409, "PERSONA_EXISTS", "You already have a persona with this nickname.")


async def create_persona(
    db: AsyncSession, user_id: str, nickname: str, color: str | None
) -> PersonaOut:
    count = await db.scalar(select(func.count()).where(ChatPersona.user_id == user_id)) or 0
    if count >= MAX_PERSONAS:
        raise ApiError(
            409, "PERSONA_LIMIT", f"You can have at most {MAX_PERSONAS} personas; delete one first."
        )
    taken = await db.scalar(
        select(ChatPersona.id).where(
            ChatPersona.user_id == user_id, func.lower(ChatPersona.nickname) == nickname.lower()
        )
    )
    if taken is not None:
        raise _persona_exists()
    persona = ChatPersona(
        user_id=user_id,
        nickname=nickname,
        color=(color or PALETTE[count % len(PALETTE)]).lower(),
        created_at=now_ms(),
    )
    db.add(persona)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise _persona_exists() from None
    return persona_out(persona)


async def delete_persona(db: AsyncSession, user_id: str, persona_id: str) -> None:
    """Delete a persona; its messages keep their ``senderName``."""
    if not plausible_id(persona_id):
        raise ChatNotFound("That persona", "PERSONA_NOT_FOUND")
    result = await db.execute(
        delete(ChatPersona).where(ChatPersona.id == persona_id, ChatPersona.user_id == user_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise ChatNotFound("That persona", "PERSONA_NOT_FOUND")
    await db.commit()


# ----------------------------------------------------------------------------------- messages


def message_out(message: ChatMessage) -> MessageOut:
    return MessageOut(
        id=message.id,
        role=message.role,
        content=message.content,
        content_html=render_markdown(message.content) if message.role == "assistant" else None,
        sender_name=message.sender_name,
        created_at=iso(message.created_at) or "",
    )


async def _page(
    db: AsyncSession, conversation_id: str, limit: int, before: ChatMessage | None = None
) -> tuple[list[ChatMessage], bool]:
    """The newest ``limit`` messages (older than ``before``), oldest first, and whether there
    are more before them."""
    query = select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
    if before is not None:
        query = query.where(
            tuple_(ChatMessage.created_at, ChatMessage.id) < (before.created_at, before.id)
        )
    rows = list(
        await db.scalars(
            query.order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc()).limit(limit + 1)
        )
    )
    has_more = len(rows) > limit
    return list(reversed(rows[:limit])), has_more


async def messages_page(
    db: AsyncSession, user_id: str, conversation_id: str, before: str | None, limit: int
) -> MessagePage:
    conversation, _group = await get_conversation(db, user_id, conversation_id)
    anchor: ChatMessage | None = None
    if before is not None:
        anchor = (
            await db.scalar(
                select(ChatMessage).where(
                    ChatMessage.id == before, ChatMessage.conversation_id == conversation.id
                )
            )
            if plausible_id(before)
            else None
        )
        if anchor is None:
            raise ApiError(
                400, "VALIDATION_ERROR", "before: not a message of this conversation", details=[]
            )
    rows, has_more = await _page(db, conversation.id, limit, anchor)
    return MessagePage(messages=[message_out(m) for m in rows], has_more=has_more)


# ------------------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class _ServerInfo:
    name: str | None
    configured: bool


async def _server_infos(
    db: AsyncSession, user_id: str, server_ids: Sequence[str]
) -> dict[str, _ServerInfo]:
    if not server_ids:
        return {}
    rows = await db.execute(
        select(Server.id, Server.guild_name, UserServerConfig.id)
        .outerjoin(
            UserServerConfig,
            (UserServerConfig.server_id == Server.id) & (UserServerConfig.user_id == user_id),
        )
        .where(Server.id.in_(set(server_ids)))
    )
    return {sid: _ServerInfo(name, config_id is not None) for sid, name, config_id in rows.all()}


def _group_fields(group: ChatConversationGroup, info: _ServerInfo | None) -> dict[str, object]:
    return {
        "id": group.id,
        "title": group.title,
        "pane_count": group.pane_count,
        "server_id": group.server_id,
        "server_name": info.name if info else None,
        "read_only": info is None or not info.configured,
        "created_at": iso(group.created_at) or "",
        "updated_at": iso(group.updated_at) or "",
    }


async def list_groups(
    db: AsyncSession, user_id: str, server_id: str | None = None
) -> list[GroupSummary]:
    """The user's chats, most recent activity first (optionally of one server)."""
    query = select(ChatConversationGroup).where(ChatConversationGroup.user_id == user_id)
    if server_id is not None:
        if not plausible_id(server_id):
            return []
        query = query.where(ChatConversationGroup.server_id == server_id)
    groups = list(
        await db.scalars(
            query.order_by(ChatConversationGroup.updated_at.desc(), ChatConversationGroup.id)
        )
    )
    if not groups:
        return []
    group_ids = [g.id for g in groups]
    counts = dict(
        (
            await db.execute(
                select(ChatConversation.id, func.count(ChatMessage.id))
                .outerjoin(ChatMessage, ChatMessage.conversation_id == ChatConversation.id)
                .where(ChatConversation.group_id.in_(group_ids))
                .group_by(ChatConversation.id)
            )
        ).all()
    )
    conversations: dict[str, list[ConversationSummary]] = {gid: [] for gid in group_ids}
    for conversation in await db.scalars(
        select(ChatConversation)
        .where(ChatConversation.group_id.in_(group_ids))
        .order_by(ChatConversation.pane_index)
    ):
        if conversation.group_id is not None:
            conversations[conversation.group_id].append(
                ConversationSummary(
                    id=conversation.id,
                    pane_index=conversation.pane_index,
                    message_count=counts.get(conversation.id, 0),
                )
            )
    infos = await _server_infos(db, user_id, [g.server_id for g in groups if g.server_id])
    return [
        GroupSummary(
            **_group_fields(g, infos.get(g.server_id) if g.server_id else None),
            conversations=conversations[g.id],
        )
        for g in groups
    ]


async def _group(db: AsyncSession, user_id: str, group_id: str) -> ChatConversationGroup:
    if not plausible_id(group_id):
        raise ChatNotFound()
    group = await db.scalar(
        select(ChatConversationGroup).where(
            ChatConversationGroup.id == group_id, ChatConversationGroup.user_id == user_id
        )
    )
    if group is None:
        raise ChatNotFound()
    return group


async def group_detail(db: AsyncSession, user_id: str, group_id: str) -> GroupDetail:
    group = await _group(db, user_id, group_id)
    conversations: list[ConversationDetail] = []
    for conversation in await db.scalars(
        select(ChatConversation)
        .where(ChatConversation.group_id == group.id)
        .order_by(ChatConversation.pane_index)
    ):
        rows, has_more = await _page(db, conversation.id, PAGE_SIZE)
        conversations.append(
            ConversationDetail(
                id=conversation.id,
                pane_index=conversation.pane_index,
                title=conversation.title,
                messages=[message_out(m) for m in rows],
                has_more=has_more,
            )
        )
    infos = await _server_infos(db, user_id, [group.server_id] if group.server_id else [])
    info = infos.get(group.server_id) if group.server_id else None
    return GroupDetail(**_group_fields(group, info), conversations=conversations)


async def create_group(
    db: AsyncSession, user_id: str, server_id: str, pane_count: int, title: str | None
) -> GroupDetail:
    """A chat on one of the user's configured servers, with ``pane_count`` conversations."""
    await servers_service.get_config(db, user_id, server_id)  # 404 unless configured
    now = now_ms()
    group = ChatConversationGroup(
        user_id=user_id,
        server_id=server_id,
        title=title or DEFAULT_GROUP_TITLE,
        pane_count=pane_count,
        created_at=now,
        updated_at=now,
    )
    db.add(group)
    await db.flush()
    for index in range(pane_count):
        db.add(
            ChatConversation(
                user_id=user_id,
                group_id=group.id,
                pane_index=index,
                created_at=now,
                updated_at=now,
            )
        )
    await db.commit()
    return await group_detail(db, user_id, group.id)


async def rename_group(db: AsyncSession, user_id: str, group_id: str, title: str) -> GroupDetail:
    group = await _group(db, user_id, group_id)
    group.title = title
    group.updated_at = now_ms()
    await db.commit()
    return await group_detail(db, user_id, group.id)


async def delete_group(db: AsyncSession, user_id: str, group_id: str) -> list[tuple[str, str]]:
    """Delete a chat with its conversations and messages; returns ``(conversation id, HUMA agent
    id)`` of its conversations so their agents can be closed and deleted."""
    group = await _group(db, user_id, group_id)
    agents = [
        (cid, agent_id or "")
        for cid, agent_id in (
            await db.execute(
                select(ChatConversation.id, ChatConversation.huma_agent_id).where(
                    ChatConversation.group_id == group.id
                )
            )
        ).all()
    ]
    await db.execute(delete(ChatConversationGroup).where(ChatConversationGroup.id == group.id))
    await db.commit()
    return agents


async def release_server_agents(
    db: AsyncSession, user_id: str, server_id: str
) -> list[tuple[str, str]]:
    """The user's configuration of ``server_id`` is gone: its chats stay, read-only, and their
    conversations let go of their HUMA agents. Returns ``(conversation id, HUMA agent id)`` of
    those conversations so that open panes are closed and the agents deleted. The caller commits
    (see ``neonrain.flows.delete_server``)."""
    rows = (
        await db.execute(
            select(ChatConversation.id, ChatConversation.huma_agent_id)
            .join(ChatConversationGroup, ChatConversationGroup.id == ChatConversation.group_id)
            .where(
                ChatConversationGroup.user_id == user_id,
                ChatConversationGroup.server_id == server_id,
            )
        )
    ).all()
    with_agents = [cid for cid, agent_id in rows if agent_id]
    if with_agents:
        await db.execute(
            update(ChatConversation)
            .where(ChatConversation.id.in_(with_agents))
            .values(huma_agent_id=None, huma_agent_fingerprint=None, huma_agent_expires_at=None)
        )
    return [(cid, agent_id or "") for cid, agent_id in rows]


# ------------------------------------------------------------------ conversations (WebSocket)


async def get_conversation(
    db: AsyncSession, user_id: str, conversation_id: str
) -> tuple[ChatConversation, ChatConversationGroup]:
    if not plausible_id(conversation_id):
        raise ChatNotFound("That conversation", "CONVERSATION_NOT_FOUND")
    row = (
        await db.execute(
            select(ChatConversation, ChatConversationGroup)
            .join(ChatConversationGroup, ChatConversationGroup.id == ChatConversation.group_id)
            .where(ChatConversation.id == conversation_id, ChatConversation.user_id == user_id)
        )
    ).first()
    if row is None:
        raise ChatNotFound("That conversation", "CONVERSATION_NOT_FOUND")
    return row[0], row[1]


async def load_server_entry(
    db: AsyncSession, user_id: str, server_id: str | None
) -> ServerEntry | None:
    """The user's current configuration of the server (its engine, and as the agent sees it:
    texts and websites' newest successful scrapes), read fresh; ``None`` when it no longer
    exists."""
    return await servers_service.server_entry(db, user_id, server_id)


async def load_server_config(
    db: AsyncSession, user_id: str, server_id: str | None
) -> ServerConfig | None:
    """The configuration as the agent sees it (:func:`load_server_entry`)."""
    entry = await load_server_entry(db, user_id, server_id)
    return entry.agent if entry is not None else None


async def history(db: AsyncSession, conversation_id: str) -> list[ChatMessage]:
    rows, _more = await _page(db, conversation_id, HISTORY_MESSAGES)
    return rows


@dataclass(frozen=True)
class Stored:
    message: ChatMessage
    group_title: str | None  # the group's new title when this message titled it


async def store_message(
    db: AsyncSession, conversation_id: str, role: str, content: str, sender_name: str | None
) -> Stored:
    """Store a message (timestamps strictly increasing within the conversation, so the order is
    stable), mark the group's activity, and title the group after its first message."""
    conversation = await db.get(ChatConversation, conversation_id)
    if conversation is None or conversation.group_id is None:
        raise ChatNotFound("That conversation", "CONVERSATION_NOT_FOUND")
    group = await db.get(ChatConversationGroup, conversation.group_id)
    if group is None:
        raise ChatNotFound("That conversation", "CONVERSATION_NOT_FOUND")
    now = now_ms()
    last: datetime | None = await db.scalar(
        select(func.max(ChatMessage.created_at)).where(
            ChatMessage.conversation_id == conversation_id
        )
    )
    if last is not None and now <= last:
        now = last + timedelta(milliseconds=1)
    new_title: str | None = None
    if role == "user" and last is None:
        title = cut(content.strip().splitlines()[0] if content.strip() else content, TITLE_LENGTH)
        if conversation.title == DEFAULT_CONVERSATION_TITLE:
            conversation.title = title
        group_has_messages = await db.scalar(
            select(ChatMessage.id)
            .join(ChatConversation, ChatConversation.id == ChatMessage.conversation_id)
            .where(ChatConversation.group_id == group.id)
            .limit(1)
        )
        if group_has_messages is None and group.title == DEFAULT_GROUP_TITLE:
            group.title = title
            new_title = title
    message = ChatMessage(
        conversation_id=conversation_id,
        role=role,
        content=content,
        sender_name=sender_name,
        created_at=now,
    )
    db.add(message)
    conversation.updated_at = now
    group.updated_at = now
    await db.commit()
    return Stored(message, new_title)


async def remember_agent(
    db: AsyncSession,
    conversation_id: str,
    agent_id: str,
    fingerprint: str,
    expires_at: datetime,
) -> None:
    conversation = await db.get(ChatConversation, conversation_id)
    if conversation is None:
        return
    conversation.huma_agent_id = agent_id
    conversation.huma_agent_fingerprint = fingerprint
    conversation.huma_agent_expires_at = expires_at
    await db.commit()
