"""One account's agent in one guild — HUMA or an OpenAI-compatible model — and the tools it may
use there (``ToolHost``), within the server's behaviour (``behaviour.md``).

Tools only ever act on channels of this agent's own guild that the bot can see; the agent sends
only where the server's channel scope watches and the bot may write. In shadow mode
(``replyMode: silent``) nothing is shown in Discord: drafts become agent actions marked
``delivered: false``. The reply limits refuse a send before it is typed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import discord

from neonrain.agents.history import ChatLine, format_history_line, join_history
from neonrain.contract import (
    CHANNEL_NAME_MAX,
    EVENT_HELD_BACK,
    EVENT_SENT,
    MESSAGE_TEXT_MAX,
    TRIGGER_MAX,
    AgentActionBody,
    EngineState,
    HeldBack,
    MessageHistory,
    ServerEntry,
    clean_text,
)
from neonrain.contract import OpenAIEndpoint as OpenAIEndpointEntry
from neonrain.huma import (
    AgentSession,
    ChannelRef,
    FetchedMessages,
    HumaRestClient,
    SessionListener,
    ToolError,
    agent_identity,
    build_agent_metadata,
    build_context,
    describe_new_message,
    discord_agent_name,
)
from neonrain.huma.prompt import cut
from neonrain.worker import behaviour
from neonrain.worker.history import ChannelHistory, Entry
from neonrain.worker.quiet_log import NoAnswerLog
from neonrain.worker.reporting import Reporter

if TYPE_CHECKING:
    import httpx2

    from neonrain.openai_engine.client import EngineError
    from neonrain.openai_engine.runtime import EngineListener, OpenAIAgent

log = logging.getLogger(__name__)

ACTION_PRECEDING = 10
TRIGGER_TEXT_LIMIT = 200
RECENT_LINES_PER_CHANNEL = 5
#: Channels the agent is told about, at most (a server with hundreds of channels).
MAX_CHANNELS_LISTED = 100

_CHANNEL_TYPES = {
    discord.ChannelType.text: "text",
    discord.ChannelType.voice: "voice",
    discord.ChannelType.category: "category",
    discord.ChannelType.news: "news",
    discord.ChannelType.forum: "forum",
    discord.ChannelType.stage_voice: "stage",
    discord.ChannelType.public_thread: "thread",
    discord.ChannelType.private_thread: "thread",
    discord.ChannelType.news_thread: "thread",
}
#: Channels people write in (threads are found through their parent).
TEXT_BEARING = frozenset(
    {
        discord.ChannelType.text,
        discord.ChannelType.news,
        discord.ChannelType.forum,
        discord.ChannelType.voice,
        discord.ChannelType.stage_voice,
    }
)


def channel_type(channel: Any) -> str:
    return _CHANNEL_TYPES.get(getattr(channel, "type", None), "text")  # type: ignore[arg-type]


def parent_id_of(channel: Any) -> int | None:
    """A thread's (or forum post's) parent channel id; ``None`` for a channel."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return None


def can_read(channel: Any, me: discord.Member | None) -> bool:
    if me is None:
        return False
    permissions = channel.permissions_for(me)
    return bool(permissions.view_channel and permissions.read_message_history)


def can_send(channel: Any, me: discord.Member | None) -> bool:
    if me is None:
        return False
    permissions = channel.permissions_for(me)
    if isinstance(channel, discord.Thread):
        return bool(permissions.view_channel and permissions.send_messages_in_threads)
    return bool(permissions.view_channel and permissions.send_messages)


@dataclass
class HumaSettings:
    api_url: str
    api_key: str
    typing_wpm: float
    rest: HumaRestClient


class Connection(Protocol):
    """What a guild agent uses of the Discord connection that serves it (``bot.TokenClient``)."""

    huma: HumaSettings | None
    typing_wpm: float
    reporter: Reporter
    no_answer: NoAnswerLog

    @property
    def histories(self) -> Mapping[int, ChannelHistory]:
        """Every channel's recent messages, by channel id."""

    @property
    def bot_user_id(self) -> int | None: ...

    def guild(self, guild_id: int) -> discord.Guild | None: ...

    def readable_channels(self, guild: discord.Guild) -> Sequence[Any]:
        """The guild's text-bearing channels the bot can read, in Discord's order."""

    async def resolve_channel(self, guild: discord.Guild, channel_id: int) -> Any | None:
        """A channel or thread of ``guild`` by id (a thread not in the cache is fetched)."""

    async def send_typing(self, channel_id: int) -> None: ...

    def record(self, message: discord.Message) -> None:
        """Add a message (the agent's own reply) to its channel's history."""

    async def entries(
        self, guild: discord.Guild, messages: Sequence[discord.Message]
    ) -> list[Entry]:
        """History entries of messages read from Discord, each author under one name."""

    def refused(self, guild_id: str, channel: Any, detail: str | None) -> None:
        """Discord refused (``detail``) or accepted again (``None``) the bot's action there."""

    def engine_state(self, user_id: str, state: EngineState, detail: str) -> None:
        """The account's OpenAI-compatible engine works (``ok``) or was refused (``error``)."""

    def openai_http(self) -> httpx2.AsyncClient:
        """The connection pool shared by every OpenAI-compatible agent of the worker."""


def _identity(config: ServerEntry, endpoint: OpenAIEndpointEntry | None) -> tuple[object, ...]:
    """What, when it changes, needs a new agent: the names (HUMA metadata), the engine and the
    OpenAI-compatible endpoint; other edits reach the running agent at its next message."""
    openai = (endpoint.base_url, endpoint.model, endpoint.api_key) if endpoint else None
    return (agent_identity(config.agent), config.engine, openai)


class GuildAgent(SessionListener):
    """The (user, guild) agent: hands it each message, carries out its tools."""

    def __init__(
        self,
        connection: Connection,
        user_id: str,
        config: ServerEntry,
        openai: OpenAIEndpointEntry | None = None,
    ) -> None:
        self.connection = connection
        self.user_id = user_id
        self.config = config
        self.openai = openai
        self.session: AgentSession | None = None
        self.model_agent: OpenAIAgent | None = None  # the OpenAI-compatible engine
        self.limiter = behaviour.ReplyLimiter()
        self._identity = _identity(config, openai)
        self._last_trigger: dict[str, Entry] = {}
        self._answering: dict[str, Entry | None] = {}
        # The message whose update waits for HUMA to come back (only the newest is kept).
        self._kept_for_reconnect: int | None = None
        self._drafts: dict[str, list[str]] = {}

    @property
    def guild_id(self) -> str:
        return self.config.guild_id

    def _log_fields(self, channel_id: str | None = None) -> str:
        fields = f"user={self.user_id} guild={self.guild_id}"
        return fields + (f" channel={channel_id}" if channel_id else "")

    def needs_new_agent(self, config: ServerEntry, openai: OpenAIEndpointEntry | None) -> bool:
        return _identity(config, openai) != self._identity

    def update(self, config: ServerEntry) -> None:
        """Texts, websites and behaviour reach the running agent at the next message."""
        self.config = config

    def unavailable(self) -> str | None:
        """Why no agent can answer for this server (no engine), else ``None``."""
        if self.config.engine == "openai":
            return None if self.openai is not None else "no OpenAI-compatible engine configured"
        return None if self.connection.huma is not None else "HUMA_API_KEY is not set"

    # -- the message path

    def _guild(self) -> discord.Guild | None:
        return self.connection.guild(int(self.guild_id))

    def _session(self) -> AgentSession:
        if self.session is None:
            huma = self.connection.huma
            assert huma is not None
            self.session = AgentSession(
                api_url=huma.api_url,
                api_key=huma.api_key,
                name=discord_agent_name(self.config.guild_name),
                metadata=build_agent_metadata(self.config.agent, "discord"),
                host=self,
                listener=self,
                rest=huma.rest,
                typing_wpm=huma.typing_wpm,
                send_gate=self.gate,
            )
        return self.session

    def _model_agent(self) -> OpenAIAgent:
        if self.model_agent is None:
            # Imported here: the SDK costs seconds and megabytes, paid only where it is used.
            from neonrain.openai_engine.client import OpenAIEndpoint
            from neonrain.openai_engine.runtime import OpenAIAgent

            assert self.openai is not None
            self.model_agent = OpenAIAgent(
                endpoint=OpenAIEndpoint(
                    base_url=self.openai.base_url,
                    model=self.openai.model,
                    api_key=self.openai.api_key,
                ),
                host=self,
                source=_Source(self),
                platform="discord",
                listener=_engine_events(self),
                typing_wpm=self.connection.typing_wpm,
                http_client=self.connection.openai_http(),
                log_fields=self._log_fields(),
                send_gate=self.gate,
            )
        return self.model_agent

    async def on_user_message(self, channel: Any, entry: Entry) -> None:
        """Hand a person's message in ``channel`` to the agent (the reply mode allowed it)."""
        guild = self._guild()
        if guild is None:
            return
        channel_id = str(channel.id)
        self._last_trigger[channel_id] = entry
        if self.config.engine == "openai":
            agent = self._model_agent()
            if agent.state == "error":
                self.connection.no_answer.note(
                    "the OpenAI-compatible engine refused the credentials",
                    channel=channel_id,
                    user=self.user_id,
                    guild=self.guild_id,
                    message=entry.id,
                )
                return
            agent.message(channel_id)
            log.info(
                "message handed to agent %s message=%s engine=openai",
                self._log_fields(channel_id),
                entry.id,
            )
            return
        context = self._context(guild, channel)
        description = describe_new_message(entry.author, channel.name, entry.content)
        session = self._session()
        waiting = self._kept_for_reconnect if session.waiting_context else None
        if waiting is not None and waiting != entry.id:
            # Only the newest update is kept while HUMA is away: the older one will not be
            # answered on its own, the newer carries it in its history.
            log.info(
                "reply superseded %s trigger_message=%s reason=a newer message came before HUMA "
                "could take the older one",
                self._log_fields(channel_id),
                waiting,
            )
        self._kept_for_reconnect = entry.id  # before waiting: a message may come meanwhile
        delivered = await session.send_context(context, description)
        if self._kept_for_reconnect == entry.id and not session.waiting_context:
            self._kept_for_reconnect = None
        log.info(
            "message handed to agent %s message=%s delivered=%s agent=%s",
            self._log_fields(channel_id),
            entry.id,
            "now" if delivered else "on reconnect",
            self.session.agent_id if self.session else None,
        )

    def visible_channels(self, guild: discord.Guild) -> Sequence[Any]:
        """The guild's text-bearing channels the bot can read, in Discord's order."""
        return self.connection.readable_channels(guild)

    def watched_channels(self, guild: discord.Guild) -> list[Any]:
        return [c for c in self.visible_channels(guild) if behaviour.watches(self.config, c.id)]

    def _context(self, guild: discord.Guild, channel: Any) -> dict[str, Any]:
        histories = self.connection.histories
        visible = self.visible_channels(guild)[:MAX_CHANNELS_LISTED]
        watched = [c for c in visible if behaviour.watches(self.config, c.id)]
        recent = {
            str(c.id): histories[c.id].lines(limit=RECENT_LINES_PER_CHANNEL)
            for c in watched
            if c.id != channel.id and c.id in histories and len(histories[c.id])
        }
        history = histories.get(channel.id)
        return build_context(
            self.config.agent,
            guild_id=self.guild_id,
            you=self.config.bot_name,
            current_channel=ChannelRef(id=str(channel.id), name=channel.name),
            history=history.lines() if history is not None else [],
            monitored_channels=[
                ChannelRef(id=str(c.id), name=c.name, type=channel_type(c)) for c in watched
            ],
            recent_messages=recent,
            all_channels=[
                ChannelRef(id=str(c.id), name=c.name, type=channel_type(c)) for c in visible
            ],
        )

    # -- ToolHost

    async def _channel(self, channel_id: str) -> Any:
        guild = self._guild()
        channel: Any = None
        if guild is not None and channel_id.isdigit():
            channel = await self.connection.resolve_channel(guild, int(channel_id))
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            raise ToolError(f"Channel {channel_id} is not a text channel of this server.")
        found: Any = channel
        if guild is not None and not can_read(found, guild.me):
            raise ToolError(f"The bot cannot see #{found.name} ({channel_id}) in this server.")
        return found

    async def check_channel(self, channel_id: str) -> None:
        await self._channel(channel_id)

    async def gate(self, channel_id: str, text: str) -> None:
        """Before a message is typed: the channel scope, the bot's permission, the limits."""
        # The message this reply answers: the newest when it starts (a newer one may come while
        # it is typed, and take its place).
        self._answering[channel_id] = self._last_trigger.get(channel_id)
        channel = await self._channel(channel_id)
        guild = self._guild()
        if not behaviour.watches(self.config, channel.id, parent_id_of(channel)):
            raise ToolError(
                f"#{channel.name} is not one of the channels you take part in; answer in the "
                "current channel."
            )
        if guild is not None and not can_send(channel, guild.me):
            self.connection.refused(self.guild_id, channel, "the bot may not send messages there")
            raise ToolError(f"The bot is not allowed to send messages in #{channel.name}.")
        if self.config.reply_mode == "silent":
            return  # shadow mode: typed and "sent" invisibly, recorded as a draft
        wait = self.limiter.wait_needed(self.config, channel_id, asyncio.get_running_loop().time())
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            self._held_back(channel, text, "rate_limited")
            raise ToolError(
                f"The server's reply limit is reached; the next message is possible in {seconds} s."
            )

    async def show_typing(self, channel_id: str) -> None:
        if self.config.reply_mode == "silent":
            return
        try:
            await self.connection.send_typing(int(channel_id))
        except discord.HTTPException as exc:
            log.info("typing indicator refused %s: %s", self._log_fields(channel_id), exc)

    async def send_text(self, channel_id: str, text: str) -> None:
        if self.config.reply_mode == "silent":
            self._drafts.setdefault(channel_id, []).append(text)
            return
        channel = await self._channel(channel_id)
        try:
            message = await channel.send(text)
        except discord.Forbidden as exc:
            reason = exc.text or "Missing Permissions"
            self.connection.refused(self.guild_id, channel, f"Discord refused a message: {reason}")
            raise ToolError(f"Discord refused the message: {reason}") from exc
        except discord.RateLimited as exc:
            log.warning(
                "discord rate limit: message not sent %s retry_after=%.1fs",
                self._log_fields(channel_id),
                exc.retry_after,
            )
            wait = math.ceil(exc.retry_after)
            raise ToolError(
                f"Discord is slowing this channel down; try again in {wait} s."
            ) from exc
        except discord.HTTPException as exc:
            raise ToolError(f"Discord refused the message ({exc.status}): {exc.text}") from exc
        self.connection.refused(self.guild_id, channel, None)
        self.connection.record(message)

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        channel = await self._channel(channel_id)
        history = self.connection.histories.get(channel.id)
        lines = history.lines() if history is not None else []
        if self.config.reply_mode == "silent":
            self._drafts.pop(channel_id, None)
            self._held_back(channel, text, "silent")
            lines = [
                *lines,
                format_history_line(discord.utils.utcnow(), self.config.bot_name, text),
            ]
        else:
            now = asyncio.get_running_loop().time()
            self.limiter.delivered(channel_id, now)
            self.connection.reporter.count(self.user_id, self.guild_id, EVENT_SENT)
            self.connection.reporter.agent_action(self._action(channel, text, delivered=True))
            log.info(
                "agent replied %s length=%d engine=%s",
                self._log_fields(channel_id),
                len(text),
                self.config.engine,
            )
        return {
            "currentChannel": {
                "id": channel_id,
                "name": channel.name,
                "conversationHistory": join_history(lines),
            }
        }

    def _held_back(self, channel: Any, text: str, why: HeldBack) -> None:
        reporter = self.connection.reporter
        reporter.count(self.user_id, self.guild_id, EVENT_HELD_BACK)
        reporter.agent_action(self._action(channel, text, delivered=False, held_back=why))
        self.connection.no_answer.note(
            "held back: silent" if why == "silent" else "held back: rate limited",
            channel=str(channel.id),
            user=self.user_id,
            guild=self.guild_id,
            length=len(text),
        )

    def _action(
        self, channel: Any, text: str, *, delivered: bool, held_back: HeldBack | None = None
    ) -> AgentActionBody:
        channel_id = str(channel.id)
        history = self.connection.histories.get(channel.id)
        entries = history.entries() if history is not None else []
        trigger = self._last_trigger.get(channel_id)
        # What led to the reply: the messages up to its trigger (the reply itself excluded).
        if trigger is not None:
            preceding = [e for e in entries if e.id <= trigger.id]
        else:
            bot = str(self.connection.bot_user_id)
            preceding = [e for e in entries if e.author_id != bot]
        trigger_text = (
            f"User {trigger.author} in #{channel.name}: {cut(trigger.content, TRIGGER_TEXT_LIMIT)}"
            if trigger is not None
            else f"In #{channel.name}"
        )
        return AgentActionBody(
            user_id=self.user_id,
            guild_id=self.guild_id,
            channel_id=channel_id,
            channel_name=clean_text(channel.name)[:CHANNEL_NAME_MAX],
            agent_message=clean_text(text)[:MESSAGE_TEXT_MAX],
            trigger_description=clean_text(trigger_text)[:TRIGGER_MAX],
            message_history=MessageHistory(
                preceding=tuple(e.as_action_message() for e in preceding[-ACTION_PRECEDING:]),
                agent_response={
                    "author": self.config.bot_name,
                    "content": clean_text(text)[:MESSAGE_TEXT_MAX],
                },
            ),
            delivered=delivered,
            held_back=held_back,
        )

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        channel = await self._channel(channel_id)
        guild = self._guild()
        try:
            messages = [m async for m in channel.history(limit=limit)]
        except discord.Forbidden as exc:
            self.connection.refused(self.guild_id, channel, f"Discord refused to list: {exc.text}")
            raise ToolError(f"Discord refused to list #{channel.name}: {exc.text}") from exc
        except discord.RateLimited as exc:
            raise ToolError(
                f"Discord is slowing reads down; try again in {math.ceil(exc.retry_after)} s."
            ) from exc
        except discord.HTTPException as exc:
            raise ToolError(f"Discord refused to list #{channel.name}: {exc.text}") from exc
        entries = (
            await self.connection.entries(guild, list(reversed(messages)))
            if guild is not None
            else []
        )
        return FetchedMessages(channel_name=channel.name, lines=[e.line() for e in entries])

    # -- SessionListener (HUMA)

    async def agent_created(self, agent_id: str, previous_id: str | None) -> None:
        log.info(
            "huma agent ready %s agent=%s replaces=%s", self._log_fields(), agent_id, previous_id
        )

    async def state_changed(self, state: str) -> None:
        log.info("huma connection %s %s", state, self._log_fields())

    async def agent_error(self, code: str | None, message: str) -> None:
        log.warning("huma agent error %s code=%s: %s", self._log_fields(), code, message)

    async def pending_canceled(self, tool_call_id: str, channel_id: str, reason: str) -> None:
        self.log_superseded(tool_call_id, channel_id, reason)

    def log_superseded(self, tool_call_id: str, channel_id: str, reason: str) -> None:
        """A reply being typed was taken back (a newer message, a Stop): not a lost reply, and
        the log says so with the message that had triggered it."""
        trigger = self._answering.pop(channel_id, None) or self._last_trigger.get(channel_id)
        log.info(
            "reply superseded %s tool_call=%s trigger_message=%s reason=%s",
            self._log_fields(channel_id),
            tool_call_id,
            trigger.id if trigger is not None else None,
            reason,
        )

    async def close(self, *, delete_agent: bool) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close(delete_agent=delete_agent)
        model_agent, self.model_agent = self.model_agent, None
        if model_agent is not None:
            await model_agent.close()


class _Source:
    """What an OpenAI-compatible turn reads of the guild (``ConversationSource``)."""

    def __init__(self, agent: GuildAgent) -> None:
        self._agent = agent

    def agent_config(self) -> Any:
        return self._agent.config.agent

    def channel_name(self, channel_id: str) -> str:
        guild = self._agent._guild()
        channel = (
            guild.get_channel_or_thread(int(channel_id))
            if guild is not None and channel_id.isdigit()
            else None
        )
        return channel.name if channel is not None else channel_id

    def channels(self) -> Sequence[ChannelRef]:
        guild = self._agent._guild()
        if guild is None:
            return []
        return [
            ChannelRef(id=str(c.id), name=c.name, type=channel_type(c))
            for c in self._agent.visible_channels(guild)[:MAX_CHANNELS_LISTED]
        ]

    async def recent_lines(self, channel_id: str, limit: int) -> Sequence[ChatLine]:
        history = self._agent.connection.histories.get(int(channel_id))
        if history is None:
            return []
        bot = self._agent.connection.bot_user_id
        return [entry.chat_line(bot) for entry in history.entries()[-limit:]]


def _engine_events(agent: GuildAgent) -> EngineListener:
    """The OpenAI-compatible engine's notifications, for one guild agent."""
    from neonrain.openai_engine.runtime import EngineListener

    class EngineEvents(EngineListener):
        async def state_changed(self, state: EngineState, detail: str | None) -> None:
            agent.connection.engine_state(agent.user_id, state, detail or "")
            log.log(
                logging.WARNING if state == "error" else logging.INFO,
                "openai engine %s %s%s",
                state,
                agent._log_fields(),
                f": {detail}" if detail else "",
            )

        async def pending_canceled(self, tool_call_id: str, channel_id: str, reason: str) -> None:
            agent.log_superseded(tool_call_id, channel_id, reason)

        async def turn_failed(self, channel_id: str, error: EngineError) -> None:
            agent.connection.no_answer.note(
                f"the model failed ({error.code})",
                channel=channel_id,
                user=agent.user_id,
                guild=agent.guild_id,
            )

    return EngineEvents()
