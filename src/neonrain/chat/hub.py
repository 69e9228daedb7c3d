"""Live web-chat conversations: one agent per open conversation, of the engine its server's
configuration chooses.

A :class:`Room` is an open conversation: the WebSockets showing it (usually one pane) and the agent
serving it. The room is the agent's ``ToolHost`` (the agent's ``send_message`` stores the reply,
then sends it to every socket). The server's configuration — its engine included — is re-read
from the database on every message.

* **HUMA** (``engine: "huma"``): an :class:`~neonrain.huma.AgentSession`, whose
  ``SessionListener`` the room is too (the agent id is stored on the conversation to be reused
  while it lives; a canceled reply hides the typing indicator). A change of bot name or server
  name (``agent_identity``) replaces the agent. When the last socket of a room closes, the agent
  connection is released (the agent is kept for a reconnecting pane); deleting the conversation
  deletes the agent.
* **An OpenAI-compatible model** (``engine: "openai"``): an
  :class:`~neonrain.openai_engine.OpenAIAgent` for the account's own endpoint, else the install's
  (read on every message: new credentials make a new agent). The room is its
  ``ConversationSource`` — the conversation's stored messages are the history — and
  :class:`ModelEvents` its listener: a failed turn (a refused key, a timeout) shows the pane
  ``AGENT_UNAVAILABLE`` with the reason. There is nothing remote to create or delete; all agents
  share the app's HTTP client for model calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from neonrain.chat import service
from neonrain.chat.models import ChatMessage
from neonrain.crypto import TokenCipher
from neonrain.db.base import utcnow
from neonrain.engines import service as engines_service
from neonrain.engines.service import NO_ENGINES, InstallEngines, ResolvedEndpoint
from neonrain.errors import ApiError
from neonrain.huma import (
    AgentSession,
    ConnectionState,
    FetchedMessages,
    HumaError,
    HumaRestClient,
    ServerConfig,
    SessionListener,
    ToolError,
    agent_identity,
    build_agent_metadata,
    build_webchat_context,
    describe_new_message,
    format_history_line,
    join_history,
    webchat_agent_name,
)
from neonrain.huma.prompt import ChannelRef
from neonrain.openai_engine import ChatLine, EngineError, EngineListener, OpenAIAgent

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger(__name__)

AGENT_TTL_SECONDS: Final = 24 * 3600
CHANNEL_NAME: Final = "general"
# Close codes above 4400 tell a page not to reconnect.
CLOSE_NOT_FOUND: Final = 4404
CLOSE_NO_SERVER: Final = 4410
NO_SERVER_ERROR: Final = {
    "code": "NO_SERVER_CONFIG",
    "message": "This chat's server is no longer configured; the chat is read-only.",
}


@dataclass(frozen=True)
class ChatAgentSettings:
    """How the web chat reaches HUMA (``huma_api_key`` None: HUMA agents are not available), and
    the install's engines (its OpenAI-compatible endpoint; the address rule for accounts' own)."""

    huma_api_url: str
    huma_api_key: str | None
    typing_wpm: float
    engines: InstallEngines = NO_ENGINES


def model_failure(error: EngineError) -> str:
    """What the pane says when the model failed a turn (the provider's message, without the
    key)."""
    if error.code == "unauthorized":
        return (
            f"The model provider refused the credentials: {error} Update them in Settings → "
            "Agent engine. Your message is saved."
        )
    if error.code == "timeout":
        return (
            f"The model did not answer in time ({error}). Your message is saved; send another "
            "message to try again."
        )
    return (
        f"The model could not answer ({error}). Your message is saved; send another message "
        "to try again."
    )


#: Sends one frame ``{"type": ..., "data": ...}`` to a client; must not raise.
Send = Callable[[str, Mapping[str, Any]], Awaitable[None]]


def fingerprint(config: ServerConfig) -> str:
    return json.dumps(agent_identity(config), ensure_ascii=False)


class Client:
    """One WebSocket showing a conversation."""

    def __init__(self, send: Send, close: Callable[[int], Awaitable[None]]) -> None:
        self.send = send
        self.close = close


class Room(SessionListener):
    """An open conversation, its sockets and its agent session (``ToolHost`` + listener)."""

    def __init__(
        self,
        hub: ChatHub,
        *,
        conversation_id: str,
        group_id: str,
        user_id: str,
        user_name: str,
        server_id: str | None,
        agent_id: str | None,
        agent_fingerprint: str | None,
        agent_expires_at: datetime | None,
    ) -> None:
        self.hub = hub
        self.conversation_id = conversation_id
        self.group_id = group_id
        self.user_id = user_id
        self.user_name = user_name
        self.server_id = server_id
        self.clients: set[Client] = set()
        self.session: AgentSession | None = None
        self.session_fingerprint: str | None = None
        self.stored_agent_id = agent_id
        self.stored_fingerprint = agent_fingerprint
        self.stored_expires_at = agent_expires_at
        self.bot_name = "Assistant"
        self.channel_id = f"webchat-{conversation_id}"
        #: The configuration as of the latest message (the model agent reads it at each turn).
        self.config = ServerConfig(bot_name=self.bot_name, server_name="")
        self.model: OpenAIAgent | None = None
        self.model_endpoint: ResolvedEndpoint | None = None
        self._lock = asyncio.Lock()
        self.closed = False
        self.typing = False  # so that a tab opened mid-reply shows the indicator too

    # -- frames

    async def broadcast(self, kind: str, data: Mapping[str, Any]) -> None:
        await asyncio.gather(*(client.send(kind, data) for client in list(self.clients)))

    async def set_typing(self, typing: bool) -> None:
        self.typing = typing
        await self.broadcast("chat:typing", {"isTyping": typing})

    async def welcome(self, client: Client) -> None:
        """What a newly joined socket needs beyond ``chat:ready``: a reply being typed."""
        if self.typing:
            await client.send("chat:typing", {"isTyping": True})

    async def error(self, client: Client | None, code: str, message: str) -> None:
        data = {"code": code, "message": message}
        if client is None:
            await self.broadcast("chat:error", data)
        else:
            await client.send("chat:error", data)

    # -- what clients do

    async def handle_message(self, client: Client, content: str, sender_name: str | None) -> None:
        """Store the user's message, echo it, and hand it to the server's agent."""
        async with self._lock:
            hub = self.hub
            resolved: ResolvedEndpoint | None = None
            lines: list[str] = []
            async with hub.sessionmaker() as db:
                entry = await service.load_server_entry(db, self.user_id, self.server_id)
                if entry is None:
                    await self.error(client, NO_SERVER_ERROR["code"], NO_SERVER_ERROR["message"])
                    return
                stored = await service.store_message(
                    db, self.conversation_id, "user", content, sender_name
                )
                if entry.engine == "openai":
                    resolved = await engines_service.resolve_openai(
                        db, hub.cipher, hub.agents.engines, self.user_id
                    )
                else:
                    lines = self._history_lines(await service.history(db, self.conversation_id))
            config = entry.agent
            self.config = config
            self.bot_name = config.bot_name
            await self.broadcast(
                "chat:message", service.message_out(stored.message).model_dump(by_alias=True)
            )
            if stored.group_title is not None:  # every open pane of the chat shows the title
                for room in self.hub.rooms_of_group(self.group_id):
                    await room.broadcast("chat:title-updated", {"title": stored.group_title})
            if entry.engine == "openai":
                if self.session is not None:  # the server switched engines
                    await self._close_huma(delete_agent=False)
                await self._answer_with_model(client, resolved)
            else:
                await self._close_model()
                await self._answer_with_huma(client, config, lines, content, sender_name)

    async def _answer_with_huma(
        self,
        client: Client,
        config: ServerConfig,
        lines: list[str],
        content: str,
        sender_name: str | None,
    ) -> None:
        settings = self.hub.agents
        if not settings.huma_api_url or not settings.huma_api_key:
            await self.error(
                client,
                "AGENT_UNAVAILABLE",
                "The agent is not available: HUMA is not configured on this Neonrain "
                "installation. Your message is saved.",
            )
            return
        author = sender_name or self.user_name
        context = build_webchat_context(config, conversation_id=self.conversation_id, history=lines)
        description = describe_new_message(author, CHANNEL_NAME, content)
        try:
            session = await self._ensure_session(
                config, settings.huma_api_url, settings.huma_api_key, settings.typing_wpm
            )
            delivered = await session.send_context(context, description)
        except HumaError as exc:
            log.warning(
                "web chat agent unavailable conversation_id=%s error=%s",
                self.conversation_id,
                type(exc).__name__,
            )
            delivered = False
        if not delivered:
            await self.error(
                client,
                "AGENT_UNAVAILABLE",
                "The agent cannot be reached right now. Your message is saved; it will be "
                "answered when the agent is back.",
            )

    async def _answer_with_model(self, client: Client, resolved: ResolvedEndpoint | None) -> None:
        if resolved is None:
            await self.error(
                client,
                "AGENT_UNAVAILABLE",
                "This server is answered by an OpenAI-compatible model, and none is set up: add "
                "yours in Settings → Agent engine. Your message is saved.",
            )
            return
        try:
            agent = await self._ensure_model(resolved)
        except ApiError as exc:  # the account's endpoint no longer passes the address check
            await self.error(client, "AGENT_UNAVAILABLE", f"{exc.message} Your message is saved.")
            return
        if agent.state == "error":  # the same credentials were refused before
            await self.error(
                client,
                "AGENT_UNAVAILABLE",
                f"The model provider refused the credentials: {agent.error} Update them in "
                "Settings → Agent engine. Your message is saved.",
            )
            return
        agent.message(self.channel_id)

    async def _ensure_model(self, resolved: ResolvedEndpoint) -> OpenAIAgent:
        """The model agent for ``resolved``; a new one when the endpoint changed."""
        if self.model is not None and self.model_endpoint == resolved:
            return self.model
        await self._close_model()
        if resolved.source == "account":
            await engines_service.check_base_url(
                resolved.endpoint.base_url,
                allow_private=self.hub.agents.engines.allow_private_urls,
            )
        self.model = OpenAIAgent(
            endpoint=engines_service.model_endpoint(resolved.endpoint),
            host=self,
            source=self,
            platform="webchat",
            listener=ModelEvents(self, resolved),
            typing_wpm=self.hub.agents.typing_wpm,
            http_client=self.hub.model_http,
            log_fields=f"conversation_id={self.conversation_id} source={resolved.source}",
        )
        self.model_endpoint = resolved
        return self.model

    async def _close_model(self) -> None:
        model, self.model, self.model_endpoint = self.model, None, None
        if model is not None:
            try:
                await model.close()
            except Exception:
                log.exception(
                    "web chat model agent close failed conversation_id=%s", self.conversation_id
                )

    async def cancel(self) -> bool:
        """The Stop button: cancel the reply being typed."""
        if self.model is not None:
            return await self.model.cancel_pending()
        session = self.session
        if session is None:
            return False
        return await session.cancel_pending()

    def _history_lines(self, messages: Sequence[ChatMessage]) -> list[str]:
        return [
            format_history_line(
                m.created_at,
                (m.sender_name or self.bot_name)
                if m.role == "assistant"
                else (m.sender_name or self.user_name),
                m.content,
            )
            for m in messages
        ]

    async def _ensure_session(
        self, config: ServerConfig, api_url: str, api_key: str, typing_wpm: float
    ) -> AgentSession:
        wanted = fingerprint(config)
        if self.session is not None and self.session_fingerprint != wanted:
            old, self.session = self.session, None
            log.info("web chat agent identity changed conversation_id=%s", self.conversation_id)
            await old.close(delete_agent=True)
            self.stored_agent_id = None
        if self.session is None:
            agent_id = self.stored_agent_id
            if agent_id is not None and (
                self.stored_fingerprint != wanted
                or (self.stored_expires_at is not None and self.stored_expires_at <= utcnow())
            ):
                self.hub.delete_agents_later([agent_id])
                agent_id = None
            self.session = AgentSession(
                api_url=api_url,
                api_key=api_key,
                name=webchat_agent_name(self.conversation_id),
                metadata=build_agent_metadata(config, "webchat"),
                host=self,
                listener=self,
                rest=self.hub.huma_rest,
                agent_id=agent_id,
                ttl_seconds=AGENT_TTL_SECONDS,
                typing_wpm=typing_wpm,
            )
            self.session_fingerprint = wanted
        return self.session

    async def close_session(self, *, delete_agent: bool) -> None:
        """Let go of the room's agent, whichever engine it is (``delete_agent``: HUMA's too)."""
        self.typing = False
        await self._close_model()
        await self._close_huma(delete_agent=delete_agent)

    async def _close_huma(self, *, delete_agent: bool) -> None:
        session, self.session = self.session, None
        self.typing = False
        if session is not None:
            try:
                await session.close(delete_agent=delete_agent)
            except Exception:
                log.exception(
                    "web chat agent close failed conversation_id=%s", self.conversation_id
                )

    # -- ToolHost

    async def check_channel(self, channel_id: str) -> None:
        if channel_id != self.channel_id:
            raise ToolError(f"Unknown channel {channel_id}: answer in {self.channel_id}")

    async def show_typing(self, channel_id: str) -> None:
        await self.set_typing(True)

    async def send_text(self, channel_id: str, text: str) -> None:
        async with self.hub.sessionmaker() as db:
            stored = await service.store_message(
                db, self.conversation_id, "assistant", text, self.bot_name
            )
        await self.broadcast(
            "chat:message", service.message_out(stored.message).model_dump(by_alias=True)
        )

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        await self.set_typing(False)
        if self.session is None:  # the model agent reads the history anew at its next turn
            return None
        async with self.hub.sessionmaker() as db:
            lines = self._history_lines(await service.history(db, self.conversation_id))
        return {
            "currentChannel": {
                "id": self.channel_id,
                "name": CHANNEL_NAME,
                "conversationHistory": join_history(lines),
            }
        }

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        raise ToolError("fetch_channel_messages is not available in web chat")

    # -- ConversationSource (the model agent)

    def agent_config(self) -> ServerConfig:
        return self.config

    def channel_name(self, channel_id: str) -> str:
        return CHANNEL_NAME

    def channels(self) -> Sequence[ChannelRef]:
        return ()

    async def recent_lines(self, channel_id: str, limit: int) -> Sequence[ChatLine]:
        async with self.hub.sessionmaker() as db:
            messages = await service.history(db, self.conversation_id)
        return [
            ChatLine(
                author=(m.sender_name or self.bot_name)
                if m.role == "assistant"
                else (m.sender_name or self.user_name),
                content=m.content,
                timestamp=m.created_at,
                from_agent=m.role == "assistant",
            )
            for m in messages[-limit:]
        ]

    # -- SessionListener

    async def agent_created(self, agent_id: str, previous_id: str | None) -> None:
        expires = utcnow() + timedelta(seconds=AGENT_TTL_SECONDS)
        self.stored_agent_id = agent_id
        self.stored_fingerprint = self.session_fingerprint
        self.stored_expires_at = expires
        async with self.hub.sessionmaker() as db:
            await service.remember_agent(
                db, self.conversation_id, agent_id, self.session_fingerprint or "", expires
            )

    async def state_changed(self, state: ConnectionState) -> None:
        log.debug("web chat agent state conversation_id=%s state=%s", self.conversation_id, state)

    async def agent_error(self, code: str | None, message: str) -> None:
        await self.set_typing(False)
        await self.error(None, "AGENT_UNAVAILABLE", f"The agent reported a problem: {message}")

    async def pending_canceled(self, tool_call_id: str, channel_id: str, reason: str) -> None:
        await self.set_typing(False)


class ModelEvents(EngineListener):
    """What a room's model agent tells it: a canceled reply hides the typing indicator, a failed
    turn is shown to every pane, and a refused key of the account's own endpoint is kept as its
    state (the dashboard shows it)."""

    def __init__(self, room: Room, resolved: ResolvedEndpoint) -> None:
        self.room = room
        self.resolved = resolved

    async def state_changed(self, state: str, detail: str | None) -> None:
        if state != "error" or self.resolved.source != "account":
            return
        room = self.room
        async with room.hub.sessionmaker() as db:
            await engines_service.record_state(
                db, room.hub.cipher, room.user_id, self.resolved.endpoint, "error", detail or ""
            )

    async def pending_canceled(self, tool_call_id: str, channel_id: str, reason: str) -> None:
        await self.room.set_typing(False)

    async def turn_failed(self, channel_id: str, error: EngineError) -> None:
        await self.room.set_typing(False)
        await self.room.error(None, "AGENT_UNAVAILABLE", model_failure(error))


class ChatHub:
    """Every open conversation of this process. ``huma_rest`` is the one HTTP client all HUMA
    chat agents share (``None`` when HUMA is not configured), ``model_http`` the one of the model
    agents; ``cipher`` decrypts an account's own model key."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        agents: ChatAgentSettings,
        huma_rest: HumaRestClient | None,
        *,
        cipher: TokenCipher,
        model_http: httpx2.AsyncClient | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.agents = agents
        self.huma_rest = huma_rest
        self.cipher = cipher
        self.model_http = model_http
        self.rooms: dict[str, Room] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def join(self, client: Client, **room_fields: Any) -> Room:
        conversation_id: str = room_fields["conversation_id"]
        async with self._lock:
            room = self.rooms.get(conversation_id)
            if room is None:
                room = Room(self, **room_fields)
                self.rooms[conversation_id] = room
            room.clients.add(client)
            return room

    def rooms_of_group(self, group_id: str) -> list[Room]:
        return [room for room in self.rooms.values() if room.group_id == group_id]

    async def leave(self, room: Room, client: Client) -> None:
        async with self._lock:
            room.clients.discard(client)
            if room.clients or self.rooms.get(room.conversation_id) is not room:
                return
            del self.rooms[room.conversation_id]
        # Release the connection; keep the agent for a pane that reconnects.
        await room.close_session(delete_agent=False)

    async def conversations_deleted(self, conversations: Sequence[tuple[str, str]]) -> None:
        """Close the rooms of deleted conversations and delete their agents."""
        await self._close_rooms(conversations, close_code=CLOSE_NOT_FOUND, farewell=None)

    async def server_config_deleted(self, conversations: Sequence[tuple[str, str]]) -> None:
        """The conversations' server configuration is gone: their panes become read-only and
        their agents are deleted."""
        await self._close_rooms(conversations, close_code=CLOSE_NO_SERVER, farewell=NO_SERVER_ERROR)

    async def _close_rooms(
        self,
        conversations: Sequence[tuple[str, str]],
        *,
        close_code: int,
        farewell: Mapping[str, Any] | None,
    ) -> None:
        orphans: list[str] = []
        for conversation_id, agent_id in conversations:
            async with self._lock:
                room = self.rooms.pop(conversation_id, None)
            if room is not None:
                if farewell is not None:
                    await room.broadcast("chat:error", farewell)
                for client in list(room.clients):
                    await client.close(close_code)
                room.clients.clear()
                had_session = room.session is not None
                if had_session or room.model is not None:
                    self._spawn(room.close_session(delete_agent=True))
                if had_session:
                    continue
            if agent_id:
                orphans.append(agent_id)
        self.delete_agents_later(orphans)

    def delete_agents_later(self, agent_ids: Sequence[str]) -> None:
        rest = self.huma_rest
        if not agent_ids or rest is None:
            return

        async def delete() -> None:
            for agent_id in agent_ids:
                try:
                    await rest.delete_agent(agent_id)
                except HumaError as exc:
                    log.warning(
                        "web chat agent not deleted agent_id=%s error=%s",
                        agent_id,
                        type(exc).__name__,
                    )

        self._spawn(delete())

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        async def run() -> None:
            await coroutine

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        rooms = list(self.rooms.values())
        self.rooms.clear()
        for room in rooms:
            await room.close_session(delete_agent=False)
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
