"""One account's HUMA agent in one guild, and the tools it may use there (``ToolHost``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import discord

from neonrain.contract import (
    CHANNEL_NAME_MAX,
    EVENT_SENT,
    MESSAGE_TEXT_MAX,
    TRIGGER_MAX,
    AgentActionBody,
    MessageHistory,
    ServerEntry,
)
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
from neonrain.huma.prompt import cut, join_history
from neonrain.worker.history import ChannelHistory, Entry
from neonrain.worker.reporting import Reporter

log = logging.getLogger(__name__)

ACTION_PRECEDING = 10
TRIGGER_TEXT_LIMIT = 200


@dataclass
class HumaSettings:
    api_url: str
    api_key: str
    typing_wpm: float
    rest: HumaRestClient


class Connection(Protocol):
    """What a guild agent uses of the Discord connection that serves it (``bot.TokenClient``)."""

    huma: HumaSettings | None
    reporter: Reporter

    @property
    def histories(self) -> Mapping[int, ChannelHistory]:
        """Every channel's recent messages, by channel id."""

    @property
    def bot_user_id(self) -> int | None: ...

    def guild(self, guild_id: int) -> discord.Guild | None: ...

    async def send_typing(self, channel_id: int) -> None: ...

    def record(self, message: discord.Message) -> None:
        """Add a message (the agent's own reply) to its channel's history."""

    def entry(self, message: discord.Message) -> Entry: ...


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


def channel_type(channel: Any) -> str:
    return _CHANNEL_TYPES.get(getattr(channel, "type", None), "text")  # type: ignore[arg-type]


class GuildAgent(SessionListener):
    """The (user, guild) agent: builds context updates and carries out the agent's tools.

    Tools only ever act on channels of this agent's own guild.
    """

    def __init__(self, connection: Connection, user_id: str, config: ServerEntry) -> None:
        self.connection = connection
        self.user_id = user_id
        self.config = config
        self.session: AgentSession | None = None
        self._identity = agent_identity(config.agent)
        self._last_trigger: dict[str, Entry] = {}

    @property
    def guild_id(self) -> str:
        return self.config.guild_id

    def _log_fields(self, channel_id: str | None = None) -> str:
        fields = f"user={self.user_id} guild={self.guild_id}"
        return fields + (f" channel={channel_id}" if channel_id else "")

    def needs_new_agent(self, config: ServerEntry) -> bool:
        """A bot or server name change changes the agent's metadata: start a new agent."""
        return agent_identity(config.agent) != self._identity

    def update(self, config: ServerEntry) -> None:
        """Texts and websites reach the running agent through the next context update."""
        self.config = config

    # -- the message path

    def _guild(self) -> discord.Guild | None:
        return self.connection.guild(int(self.guild_id))

    def _session(self) -> AgentSession:
        if self.session is None:
            huma = self.connection.huma
            assert huma is not None
            agent_config = self.config.agent
            self.session = AgentSession(
                api_url=huma.api_url,
                api_key=huma.api_key,
                name=discord_agent_name(self.config.guild_name),
                metadata=build_agent_metadata(agent_config, "discord"),
                host=self,
                listener=self,
                rest=huma.rest,
                typing_wpm=huma.typing_wpm,
            )
        return self.session

    async def on_user_message(self, channel: Any, entry: Entry) -> None:
        """Send the ``new-message`` context update for a message in ``channel``."""
        guild = self._guild()
        if guild is None:
            return
        channel_id = str(channel.id)
        self._last_trigger[channel_id] = entry
        context = self._context(guild, channel)
        description = describe_new_message(entry.author, channel.name, entry.content)
        delivered = await self._session().send_context(context, description)
        log.info(
            "message handed to agent %s message=%s delivered=%s agent=%s",
            self._log_fields(channel_id),
            entry.id,
            "now" if delivered else "on reconnect",
            self.session.agent_id if self.session else None,
        )

    def _context(self, guild: discord.Guild, channel: Any) -> dict[str, Any]:
        histories = self.connection.histories
        text_channels = guild.text_channels  # sorted anew on every access
        monitored = [
            ChannelRef(id=str(c.id), name=c.name, type=channel_type(c)) for c in text_channels
        ]
        recent = {
            str(c.id): histories[c.id].lines(limit=5)
            for c in text_channels
            if c.id != channel.id and c.id in histories and len(histories[c.id])
        }
        history = histories.get(channel.id)
        return build_context(
            self.config.agent,
            guild_id=self.guild_id,
            you=self.config.bot_name,
            current_channel=ChannelRef(id=str(channel.id), name=channel.name),
            history=history.lines() if history is not None else [],
            monitored_channels=monitored,
            recent_messages=recent,
            all_channels=[
                ChannelRef(id=str(c.id), name=c.name, type=channel_type(c)) for c in guild.channels
            ],
        )

    # -- ToolHost

    def _channel(self, channel_id: str) -> Any:
        guild = self._guild()
        try:
            channel = guild.get_channel(int(channel_id)) if guild is not None else None
        except ValueError:
            channel = None
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            raise ToolError(f"Channel {channel_id} is not a text channel of this server.")
        return channel

    async def check_channel(self, channel_id: str) -> None:
        self._channel(channel_id)

    async def show_typing(self, channel_id: str) -> None:
        try:
            await self.connection.send_typing(int(channel_id))
        except discord.HTTPException as exc:
            log.info("typing indicator refused %s: %s", self._log_fields(channel_id), exc)

    async def send_text(self, channel_id: str, text: str) -> None:
        channel = self._channel(channel_id)
        try:
            message = await channel.send(text)
        except discord.Forbidden as exc:
            reason = exc.text or "missing permission"
            raise ToolError(f"Discord refused the message: {reason}") from exc
        except discord.HTTPException as exc:
            raise ToolError(f"Discord refused the message ({exc.status}): {exc.text}") from exc
        self.connection.record(message)

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        channel = self._channel(channel_id)
        connection = self.connection
        connection.reporter.count(self.user_id, self.guild_id, EVENT_SENT)
        history = connection.histories.get(channel.id)
        entries = history.entries() if history is not None else []
        trigger = self._last_trigger.get(channel_id)
        # What led to the reply: the messages up to its trigger (the reply itself excluded).
        if trigger is not None:
            preceding = [e for e in entries if e.id <= trigger.id]
        else:
            preceding = [e for e in entries if e.author_id != str(connection.bot_user_id)]
        trigger_text = (
            f"User {trigger.author} in #{channel.name}: {cut(trigger.content, TRIGGER_TEXT_LIMIT)}"
            if trigger is not None
            else f"In #{channel.name}"
        )
        connection.reporter.agent_action(
            AgentActionBody(
                user_id=self.user_id,
                guild_id=self.guild_id,
                channel_id=channel_id,
                channel_name=channel.name[:CHANNEL_NAME_MAX],
                agent_message=text[:MESSAGE_TEXT_MAX],
                trigger_description=trigger_text[:TRIGGER_MAX],
                message_history=MessageHistory(
                    preceding=tuple(e.as_action_message() for e in preceding[-ACTION_PRECEDING:]),
                    agent_response={
                        "author": self.config.bot_name,
                        "content": text[:MESSAGE_TEXT_MAX],
                    },
                ),
            )
        )
        log.info(
            "agent replied %s length=%d agent=%s",
            self._log_fields(channel_id),
            len(text),
            self.session.agent_id if self.session else None,
        )
        return {
            "currentChannel": {
                "id": channel_id,
                "name": channel.name,
                "conversationHistory": join_history(history.lines() if history else []),
            }
        }

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        channel = self._channel(channel_id)
        try:
            messages = [m async for m in channel.history(limit=limit)]
        except discord.HTTPException as exc:
            raise ToolError(f"Discord refused to list #{channel.name}: {exc.text}") from exc
        entries = [self.connection.entry(m) for m in reversed(messages)]
        return FetchedMessages(channel_name=channel.name, lines=[e.line() for e in entries])

    # -- SessionListener

    async def agent_created(self, agent_id: str, previous_id: str | None) -> None:
        log.info(
            "huma agent ready %s agent=%s replaces=%s", self._log_fields(), agent_id, previous_id
        )

    async def state_changed(self, state: str) -> None:
        log.info("huma connection %s %s", state, self._log_fields())

    async def agent_error(self, code: str | None, message: str) -> None:
        log.warning("huma agent error %s code=%s: %s", self._log_fields(), code, message)

    async def close(self, *, delete_agent: bool) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close(delete_agent=delete_agent)
