"""The fake Discord: REST API v10 and a gateway WebSocket served by one aiohttp app.

It runs in the test's event loop on an ephemeral port. The real discord.py client and the product's
own REST client talk to it exactly as they would talk to Discord; tests drive it (post a message as
a user, add a bot to a guild, inject failures, drop connections) and read what bots did (messages
sent, typing, nickname changes) through the attributes and coroutines of :class:`FakeDiscord`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import json
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .gateway import CloseCode, GatewayConnection, GatewaySession, Op, parse_payload
from .models import (
    ALL_INTENTS,
    BOT_ROLE_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    JSON,
    MESSAGEABLE_CHANNEL_TYPES,
    ChannelType,
    FakeAttachment,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    Intent,
    SnowflakeGenerator,
)

_log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
GATEWAY_PATH = "/gateway"
RESUME_GATEWAY_PATH = "/gateway-resume"
MAX_MESSAGE_LENGTH = 2000
MAX_NICK_LENGTH = 32
_MENTION = re.compile(r"<@!?(\d{1,20})>")
_SNOWFLAKE = re.compile(r"^\d{1,20}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------------------------------------
# Records of what happened, for assertions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """A REST request the fake received (the token is never recorded, only the bot it named)."""

    method: str
    path: str
    query: dict[str, str]
    bot_id: int | None
    status: int
    body: Any = None


@dataclass(frozen=True)
class TypingCall:
    bot_id: int
    channel_id: int
    at: float


@dataclass(frozen=True)
class NicknameChange:
    bot_id: int
    guild_id: int
    nick: str | None


@dataclass(frozen=True)
class GatewayLogin:
    """An IDENTIFY or a RESUME the gateway accepted."""

    kind: str  # "identify" or "resume"
    bot_id: int
    session_id: str
    intents: int
    zlib_stream: bool
    path: str


@dataclass
class FailureRule:
    """A REST failure to inject: matching requests wait ``delay`` seconds, then get ``status``.

    ``path`` is an fnmatch pattern on the path after ``/api/v10`` (``/users/@me/guilds``,
    ``/guilds/*``, ``*``). ``status=None`` means "answer normally after the delay" (a slow Discord);
    ``delay=math.inf`` hangs until the fake stops. The first ``skip`` matching requests pass
    untouched (fail the second page, not the first); ``times`` limits how often the rule applies.
    """

    path: str
    method: str | None = None
    status: int | None = 500
    body: JSON | None = None
    delay: float = 0.0
    token: str | None = None
    times: int | None = None
    skip: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    seen: int = 0
    hits: int = 0

    def matches(self, method: str, path: str, token: str | None) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.token is not None and self.token != token:
            return False
        return fnmatch.fnmatchcase(path, self.path)

    def applies(self, method: str, path: str, token: str | None) -> bool:
        """Whether this request fails; counts the request when it matches."""
        if not self.matches(method, path, token):
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


class DiscordHTTPError(Exception):
    """Raised inside handlers to answer with Discord's error shape."""

    def __init__(
        self, status: int, message: str, code: int = 0, errors: JSON | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.errors = errors

    def response(self) -> web.Response:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer with ``Content-Type: application/json`` exactly (discord.py insists)."""
    response = web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
    )
    response.headers["Content-Type"] = "application/json"
    return response


def _unauthorized() -> DiscordHTTPError:
    return DiscordHTTPError(401, "401: Unauthorized", 0)


def _invalid_form(field_name: str, code: str, message: str) -> DiscordHTTPError:
    errors = {field_name: {"_errors": [{"code": code, "message": message}]}}
    return DiscordHTTPError(400, "Invalid Form Body", 50035, errors)


def _snowflake(value: str, field_name: str) -> int:
    if not _SNOWFLAKE.match(value):
        raise _invalid_form(field_name, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
    return int(value)


def _int_param(query: Any, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid_form(name, "NUMBER_TYPE_COERCE", f'Value "{raw}" is not int.') from None
    if value < low:
        raise _invalid_form(
            name, "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}."
        )
    if value > high:
        raise _invalid_form(
            name, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}."
        )
    return value


# ---------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------


class FakeDiscord:
    """A local Discord for tests. Use ``async with FakeDiscord() as fake:`` (or start/stop)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_ms: int = 41250,
        zlib_chunk_size: int | None = None,
        history_limit: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        #: When set, a channel's history is cut back to its newest ``history_limit`` messages
        #: whenever a user message makes it twice as long (load tests post for minutes).
        self.history_limit = history_limit
        #: HELLO's heartbeat interval; tests that want to see heartbeats lower it.
        self.heartbeat_interval_ms = heartbeat_interval_ms
        #: When set, each zlib-compressed gateway message is split over frames of this size.
        self.zlib_chunk_size = zlib_chunk_size
        #: Answer heartbeats with HEARTBEAT_ACK (switch off to make a client think the link died).
        self.ack_heartbeats = True

        self._ids = SnowflakeGenerator()
        self.bots: dict[str, FakeBot] = {}
        self.users: dict[int, FakeUser] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self._channel_guild: dict[int, int] = {}
        self._dm_channels: dict[int, tuple[int, int]] = {}  # channel id -> (bot id, user id)
        self._history: dict[int, list[FakeMessage]] = {}
        self._messages: dict[int, FakeMessage] = {}

        self.failures: list[FailureRule] = []
        self.requests: list[RecordedRequest] = []
        self.sent_messages: list[FakeMessage] = []
        self.typing_calls: list[TypingCall] = []
        self.nickname_changes: list[NicknameChange] = []
        self.logins: list[GatewayLogin] = []
        self.closed_connections: list[tuple[int | None, int | None]] = []  # (bot id, close code)

        self._sessions: dict[str, GatewaySession] = {}
        self._connections: set[GatewayConnection] = set()
        self._consumed: set[int] = set()
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base_http = ""

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._rest_middleware])
        app.router.add_get(GATEWAY_PATH, self._gateway_handler)
        app.router.add_get(GATEWAY_PATH + "/", self._gateway_handler)
        app.router.add_get(RESUME_GATEWAY_PATH, self._gateway_handler)
        app.router.add_get(RESUME_GATEWAY_PATH + "/", self._gateway_handler)
        self._add_rest_routes(app)
        self._add_control_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._base_http = f"http://{self.host}:{self.port}"
        return self

    async def stop(self) -> None:
        self._stopping.set()
        for conn in list(self._connections):
            conn.close(1001, "fake Discord stopping")
            await conn.flush(timeout=1.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the server itself (control endpoints live under /_fake)."""
        return self._base_http

    @property
    def api_url(self) -> str:
        """The REST base, the value for ``DISCORD_API_URL`` / ``discord.http.Route.BASE``."""
        return self._base_http + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The gateway: ``DISCORD_GATEWAY_URL`` / ``DiscordWebSocket.DEFAULT_GATEWAY``."""
        return f"ws://{self.host}:{self.port}{GATEWAY_PATH}"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}{RESUME_GATEWAY_PATH}"

    @contextlib.contextmanager
    def patch_discord_py(self) -> Iterator[None]:
        """Point discord.py's REST base and gateway at this fake for the ``with`` block."""
        from .discord_py import discord_py_pointed_at

        with discord_py_pointed_at(self.api_url, self.gateway_url):
            yield

    # ---------------------------------------------------------------- configuration

    def new_id(self) -> int:
        return self._ids.next()

    def add_user(self, username: str, *, user_id: int | None = None, bot: bool = False) -> FakeUser:
        """A Discord user (people who post messages in tests). Reuses an existing id."""
        if user_id is not None and user_id in self.users:
            return self.users[user_id]
        user = FakeUser(id=user_id or self.new_id(), username=username, bot=bot)
        self.users[user.id] = user
        return user

    def user_named(self, username: str) -> FakeUser | None:
        return next((u for u in self.users.values() if u.username == username), None)

    def add_bot(
        self,
        token: str,
        username: str = "Neonrain Bot",
        *,
        bot_id: int | None = None,
        avatar: str | None = None,
        is_bot: bool = True,
        message_content_intent: bool = True,
        members_intent: bool = False,
        presence_intent: bool = False,
    ) -> FakeBot:
        """A bot account. ``*_intent`` are the privileged intents switched on in the portal;
        ``is_bot=False`` makes ``GET /users/@me`` describe a person (a user token)."""
        user = FakeUser(id=bot_id or self.new_id(), username=username, bot=is_bot, avatar=avatar)
        self.users[user.id] = user
        bot = FakeBot(
            token=token,
            user=user,
            message_content_intent=message_content_intent,
            members_intent=members_intent,
            presence_intent=presence_intent,
        )
        self.bots[token] = bot
        return bot

    def bot(self, token_or_id: str | int) -> FakeBot:
        if isinstance(token_or_id, str):
            return self.bots[token_or_id]
        for bot in self.bots.values():
            if bot.id == token_or_id:
                return bot
        raise KeyError(token_or_id)

    def add_guild(
        self,
        name: str,
        *,
        guild_id: int | None = None,
        icon: str | None = None,
        channels: Sequence[tuple[str, ChannelType]] | None = None,
        bots: Iterable[str | FakeBot] = (),
    ) -> FakeGuild:
        """A guild with an @everyone role and channels.

        Default channels: category "Text Channels" holding #general and #random, and category
        "Voice Channels" holding the voice channel "General". ``channels`` replaces them with
        ``(name, type)`` pairs (no categories). ``bots`` (tokens or bots) become members.
        """
        gid = guild_id or self.new_id()
        if gid in self.guilds:
            raise ValueError(f"guild {gid} exists")
        owner = self.add_user(f"owner-of-{name}")
        guild = FakeGuild(id=gid, name=name, owner_id=owner.id, icon=icon)
        guild.roles.append(FakeRole(id=gid, name="@everyone", permissions=EVERYONE_PERMISSIONS))
        guild.members[owner.id] = FakeMember(user=owner, joined_at=dt.datetime.now(dt.UTC))
        self.guilds[gid] = guild
        if channels is None:
            text = self.add_channel(gid, "Text Channels", ChannelType.GUILD_CATEGORY)
            self.add_channel(gid, "general", parent_id=text.id)
            self.add_channel(gid, "random", parent_id=text.id)
            voice = self.add_channel(gid, "Voice Channels", ChannelType.GUILD_CATEGORY)
            self.add_channel(gid, "General", ChannelType.GUILD_VOICE, parent_id=voice.id)
        else:
            for channel_name, channel_type in channels:
                self.add_channel(gid, channel_name, channel_type)
        for b in bots:
            self._join(guild, b if isinstance(b, FakeBot) else self.bots[b])
        return guild

    def add_channel(
        self,
        guild_id: int,
        name: str,
        type: ChannelType = ChannelType.GUILD_TEXT,
        *,
        channel_id: int | None = None,
        parent_id: int | None = None,
        topic: str | None = None,
        permission_overwrites: list[JSON] | None = None,
    ) -> FakeChannel:
        """Add a channel; connected bots of the guild get CHANNEL_CREATE."""
        guild = self.guilds[guild_id]
        channel = FakeChannel(
            id=channel_id or self.new_id(),
            guild_id=guild_id,
            name=name,
            type=type,
            position=sum(1 for c in guild.channels if c.type == type),
            parent_id=parent_id,
            topic=topic,
            permission_overwrites=list(permission_overwrites or []),
        )
        guild.channels.append(channel)
        self._channel_guild[channel.id] = guild_id
        self._history.setdefault(channel.id, [])
        for session in self._guild_sessions(guild):
            session.dispatch("CHANNEL_CREATE", channel.payload())
        return channel

    def guild(self, guild_id: int) -> FakeGuild:
        return self.guilds[guild_id]

    def bots_in(self, guild_id: int) -> list[FakeBot]:
        guild = self.guilds[guild_id]
        return [b for b in self.bots.values() if b.id in guild.members]

    def nickname(self, guild_id: int, token: str) -> str | None:
        member = self.guilds[guild_id].members.get(self.bots[token].id)
        return member.nick if member else None

    # ---------------------------------------------------------------- failure injection

    def add_failure(
        self,
        path: str = "*",
        *,
        method: str | None = None,
        status: int | None = 500,
        body: JSON | None = None,
        delay: float = 0.0,
        token: str | None = None,
        times: int | None = None,
        skip: int = 0,
        headers: dict[str, str] | None = None,
    ) -> FailureRule:
        """Make matching REST requests fail (see :class:`FailureRule`)."""
        rule = FailureRule(
            path=path,
            method=method,
            status=status,
            body=body,
            delay=delay,
            token=token,
            times=times,
            skip=skip,
            headers=dict(headers or {}),
        )
        self.failures.append(rule)
        return rule

    def hang(
        self, path: str = "*", *, method: str | None = None, token: str | None = None
    ) -> FailureRule:
        """Matching requests never answer (until the fake stops): for client timeouts."""
        return self.add_failure(path, method=method, status=503, delay=math.inf, token=token)

    def rate_limit(
        self, path: str, *, retry_after: float = 0.05, method: str | None = None, times: int = 1
    ) -> FailureRule:
        """Answer 429 as Discord does (``retry_after`` body, ``Retry-After`` and ``Via``)."""
        return self.add_failure(
            path,
            method=method,
            status=429,
            times=times,
            body={
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": False,
                "code": 0,
            },
            headers={
                "Retry-After": str(math.ceil(retry_after)),
                "Via": "1.1 google",
                "X-RateLimit-Scope": "user",
            },
        )

    def clear_failures(self) -> None:
        self.failures.clear()

    def revoke_token(self, token: str) -> None:
        """The owner reset the token: REST answers 401 and live gateway sessions close 4004."""
        bot = self.bots[token]
        bot.revoked = True
        for session in list(self._sessions.values()):
            if session.bot is bot:
                session.invalidated = True
                if session.connection is not None:
                    session.connection.close(
                        CloseCode.AUTHENTICATION_FAILED, "Authentication failed."
                    )

    # ---------------------------------------------------------------- driving the gateway

    async def post_user_message(
        self,
        guild_id: int,
        channel_id: int,
        author_name: str,
        content: str,
        *,
        author_id: int | None = None,
        author_is_bot: bool = False,
        webhook: bool = False,
        message_type: int = 0,
        attachments: Sequence[str] = (),
        reply_to: int | None = None,
    ) -> FakeMessage:
        """A person (or another bot, a webhook, a system message) posts in a guild channel.

        The message joins the channel's history and MESSAGE_CREATE goes to every gateway session of
        every bot in that guild (sent now if connected, kept for RESUME otherwise). Returns once the
        events have been written to the connected sockets.
        """
        message = self.dispatch_user_message(
            guild_id,
            channel_id,
            author_name,
            content,
            author_id=author_id,
            author_is_bot=author_is_bot,
            webhook=webhook,
            message_type=message_type,
            attachments=attachments,
            reply_to=reply_to,
        )
        await self.flush()
        return message

    def dispatch_user_message(
        self,
        guild_id: int,
        channel_id: int,
        author_name: str,
        content: str,
        *,
        author_id: int | None = None,
        author_is_bot: bool = False,
        webhook: bool = False,
        message_type: int = 0,
        attachments: Sequence[str] = (),
        reply_to: int | None = None,
    ) -> FakeMessage:
        """:meth:`post_user_message` without waiting for the sockets: the events are queued on
        the connections when this returns (for load generators that post faster than a flush)."""
        guild = self.guilds[guild_id]
        channel = guild.channel(channel_id)
        if channel is None:
            raise KeyError(f"channel {channel_id} is not in guild {guild_id}")
        if channel.type not in MESSAGEABLE_CHANNEL_TYPES:
            raise ValueError(f"#{channel.name} cannot hold messages (type {int(channel.type)})")
        if webhook:
            author = FakeUser(id=self.new_id(), username=author_name, bot=True)
        else:
            author = self._user_for(author_name, author_id, author_is_bot)
            if author.id not in guild.members:
                guild.members[author.id] = FakeMember(
                    user=author, joined_at=dt.datetime.now(dt.UTC)
                )
        message = FakeMessage(
            id=self.new_id(),
            channel_id=channel_id,
            guild_id=guild_id,
            author=author,
            content=content,
            type=message_type,
            attachments=[FakeAttachment(id=self.new_id(), filename=a) for a in attachments],
            mention_ids=self._mentions_in(content),
            reference_id=reply_to,
            webhook_id=author.id if webhook else None,
        )
        if reply_to is not None and message_type == 0:
            message.type = 19
        self._store_and_dispatch(message)
        return message

    async def post_direct_message(self, token: str, author_name: str, content: str) -> FakeMessage:
        """A person sends the bot a direct message (DMs need the DIRECT_MESSAGES intent)."""
        bot = self.bots[token]
        author = self._user_for(author_name, None, False)
        channel_id = next(
            (cid for cid, pair in self._dm_channels.items() if pair == (bot.id, author.id)), None
        )
        if channel_id is None:
            channel_id = self.new_id()
            self._dm_channels[channel_id] = (bot.id, author.id)
            self._history[channel_id] = []
        message = FakeMessage(
            id=self.new_id(), channel_id=channel_id, guild_id=None, author=author, content=content
        )
        self._history[channel_id].append(message)
        self._messages[message.id] = message
        for session in self._bot_sessions(bot):
            if session.has_intent(Intent.DIRECT_MESSAGES):
                session.dispatch("MESSAGE_CREATE", self._message_event(message, session))
        await self.flush()
        return message

    async def add_bot_to_guild(self, guild_id: int, token: str) -> None:
        """The bot is invited: it becomes a member and its sessions get GUILD_CREATE."""
        guild = self.guilds[guild_id]
        bot = self.bots[token]
        if bot.id in guild.members:
            return
        self._join(guild, bot)
        for session in self._bot_sessions(bot):
            if session.covers_guild(guild.id):
                session.dispatch("GUILD_CREATE", guild.gateway_payload(bot.id, initial=False))
        await self.flush()

    async def remove_bot_from_guild(self, guild_id: int, token: str) -> None:
        """The bot is kicked: its sessions get GUILD_DELETE (without ``unavailable``)."""
        guild = self.guilds[guild_id]
        bot = self.bots[token]
        if guild.members.pop(bot.id, None) is None:
            return
        guild.roles = [r for r in guild.roles if r.bot_id != bot.id]
        for session in self._bot_sessions(bot):
            if session.covers_guild(guild.id):
                session.dispatch("GUILD_DELETE", {"id": str(guild.id)})
        await self.flush()

    async def drop_connections(self, token: str | None = None) -> int:
        """Cut the TCP connections (no close frame) of one bot or all; sessions stay resumable.

        Returns how many connections were dropped."""
        conns = self._live_connections(token)
        for conn in conns:
            conn.abort()
        await self._flush_connections(conns)
        return len(conns)

    async def close_connections(
        self,
        token: str | None = None,
        *,
        code: int = CloseCode.UNKNOWN_ERROR,
        reason: str = "",
        invalidate_session: bool = False,
    ) -> int:
        """Close gateway connections with ``code`` (4000: discord.py resumes; 4004: it stops)."""
        conns = self._live_connections(token)
        for conn in conns:
            if invalidate_session and conn.session is not None:
                conn.session.invalidated = True
            conn.close(code, reason)
        await self._flush_connections(conns)
        return len(conns)

    async def send_reconnect(self, token: str | None = None) -> int:
        """Send op 7 RECONNECT: the client should close and RESUME."""
        conns = self._live_connections(token)
        for conn in conns:
            conn.send({"op": Op.RECONNECT, "d": None, "s": None, "t": None})
        await self._flush_connections(conns)
        return len(conns)

    async def invalidate_sessions(
        self, token: str | None = None, *, resumable: bool = False
    ) -> int:
        """Send op 9 INVALID_SESSION; with ``resumable=False`` the sessions are forgotten."""
        conns = self._live_connections(token)
        for conn in conns:
            if not resumable and conn.session is not None:
                conn.session.invalidated = True
            conn.send({"op": Op.INVALID_SESSION, "d": resumable, "s": None, "t": None})
        await self._flush_connections(conns)
        return len(conns)

    async def flush(self) -> None:
        """Wait until everything queued for the connected sockets has been written."""
        await self._flush_connections(list(self._connections))

    # ---------------------------------------------------------------- reading what happened

    def connections(self, token: str | None = None) -> list[GatewayConnection]:
        """Open gateway connections (of one bot, or all); each counts its ``heartbeats``."""
        return self._live_connections(token)

    def connection_count(self, token: str | None = None) -> int:
        return len(self._live_connections(token))

    def is_online(self, token: str) -> bool:
        """A connection of this bot has been sent READY (or RESUMED) and its guilds."""
        bot = self.bots[token]
        return any(c.online and c.session and c.session.bot is bot for c in self._live_conns())

    def sessions_of(self, token: str) -> list[GatewaySession]:
        bot = self.bots[token]
        return [s for s in self._sessions.values() if s.bot is bot and not s.invalidated]

    def history(self, channel_id: int) -> list[FakeMessage]:
        """The channel's messages, oldest first."""
        return list(self._history.get(channel_id, []))

    def messages_sent_to(self, channel_id: int) -> list[FakeMessage]:
        return [m for m in self.sent_messages if m.channel_id == channel_id]

    async def wait_for_online(self, token: str, timeout: float = 5.0) -> None:
        await self._wait(lambda: self.is_online(token), timeout, f"bot {token[:4]}… online")

    async def wait_for_bot_message(
        self,
        channel_id: int | None = None,
        timeout: float = 5.0,
        *,
        predicate: Callable[[FakeMessage], bool] | None = None,
    ) -> FakeMessage:
        """The oldest bot-sent message (in that channel, matching ``predicate``) that no earlier
        call returned; waits up to ``timeout`` seconds for one."""
        found: list[FakeMessage] = []

        def ready() -> bool:
            for message in self.sent_messages:
                if message.id in self._consumed:
                    continue
                if channel_id is not None and message.channel_id != channel_id:
                    continue
                if predicate is not None and not predicate(message):
                    continue
                found.append(message)
                return True
            return False

        await self._wait(ready, timeout, f"a bot message in channel {channel_id}")
        self._consumed.add(found[0].id)
        return found[0]

    async def wait_for_typing(self, channel_id: int, timeout: float = 5.0) -> TypingCall:
        await self._wait(
            lambda: any(t.channel_id == channel_id for t in self.typing_calls),
            timeout,
            f"typing in channel {channel_id}",
        )
        return next(t for t in self.typing_calls if t.channel_id == channel_id)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked whenever the fake records something)."""
        await self._wait(predicate, timeout, "condition")

    # ---------------------------------------------------------------- internals: state

    def _user_for(self, name: str, user_id: int | None, is_bot: bool) -> FakeUser:
        if user_id is not None:
            return self.add_user(name, user_id=user_id, bot=is_bot)
        existing = self.user_named(name)
        if existing is not None and existing.bot == is_bot:
            return existing
        return self.add_user(name, bot=is_bot)

    def _mentions_in(self, content: str) -> list[int]:
        ids = [int(m) for m in _MENTION.findall(content)]
        return [i for i in dict.fromkeys(ids) if i in self.users]

    def _join(self, guild: FakeGuild, bot: FakeBot) -> None:
        role = FakeRole(
            id=self.new_id(),
            name=bot.username,
            permissions=BOT_ROLE_PERMISSIONS,
            position=1,
            managed=True,
            bot_id=bot.id,
        )
        guild.roles.append(role)
        guild.members[bot.id] = FakeMember(
            user=bot.user, joined_at=dt.datetime.now(dt.UTC), role_ids=[role.id]
        )

    def _store_and_dispatch(self, message: FakeMessage) -> None:
        history = self._history.setdefault(message.channel_id, [])
        history.append(message)
        self._messages[message.id] = message
        if self.history_limit is not None and len(history) > 2 * self.history_limit:
            for old in history[: -self.history_limit]:
                self._messages.pop(old.id, None)
            del history[: -self.history_limit]
        assert message.guild_id is not None
        guild = self.guilds[message.guild_id]
        channel = guild.channel(message.channel_id)
        if channel is not None:
            channel.last_message_id = message.id
        for session in self._guild_sessions(guild):
            if session.has_intent(Intent.GUILD_MESSAGES):
                session.dispatch("MESSAGE_CREATE", self._message_event(message, session))
        self._notify()

    def _content_visible(self, message: FakeMessage, bot: FakeBot, intents: int | None) -> bool:
        """Discord blanks content for apps without the message content intent, except in DMs,
        their own messages and messages that mention them."""
        if message.guild_id is None or message.author.id == bot.id or bot.id in message.mention_ids:
            return True
        if not bot.message_content_intent:
            return False
        return intents is None or bool(intents & Intent.MESSAGE_CONTENT)

    def _message_event(self, message: FakeMessage, session: GatewaySession) -> JSON:
        member = None
        if message.guild_id is not None:
            member = self.guilds[message.guild_id].members.get(message.author.id)
        return message.payload(
            users=self.users,
            member=member,
            with_content=self._content_visible(message, session.bot, session.intents),
            for_gateway=True,
            referenced=self._messages.get(message.reference_id or 0),
        )

    def _rest_message(self, message: FakeMessage, bot: FakeBot) -> JSON:
        return message.payload(
            users=self.users,
            with_content=self._content_visible(message, bot, None),
            referenced=self._messages.get(message.reference_id or 0),
        )

    def _guild_sessions(self, guild: FakeGuild) -> list[GatewaySession]:
        return [
            s
            for s in self._sessions.values()
            if not s.invalidated and s.bot.id in guild.members and s.covers_guild(guild.id)
        ]

    def _bot_sessions(self, bot: FakeBot) -> list[GatewaySession]:
        return [s for s in self._sessions.values() if s.bot is bot and not s.invalidated]

    def _live_conns(self) -> list[GatewayConnection]:
        return [c for c in self._connections if not c.closed]

    def _live_connections(self, token: str | None) -> list[GatewayConnection]:
        conns = self._live_conns()
        if token is None:
            return conns
        bot = self.bots[token]
        return [c for c in conns if c.session is not None and c.session.bot is bot]

    async def _flush_connections(self, conns: Iterable[GatewayConnection]) -> None:
        for conn in list(conns):
            await conn.flush()

    def _notify(self) -> None:
        """Wake everyone waiting in ``_wait``: set the current event and start a new one."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"fake Discord: timed out waiting for {what}")
            # Also re-check every 50 ms, for changes made by tests directly on the state.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.05))

    # ---------------------------------------------------------------- REST plumbing

    @web.middleware
    async def _rest_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        path = request.path[len(API_PREFIX) :]
        token = _bearer_token(request)
        bot = self.bots.get(token) if token is not None else None
        body: Any = None
        if request.can_read_body and request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                body = await request.json()
        status = 500
        try:
            rule = next((r for r in self.failures if r.applies(request.method, path, token)), None)
            response: web.StreamResponse | None = None
            if rule is not None:
                if rule.delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._stopping.wait(), None if math.isinf(rule.delay) else rule.delay
                        )
                if rule.status is not None:
                    default = {"message": f"{rule.status}: injected failure", "code": 0}
                    response = json_response(
                        rule.body if rule.body is not None else default,
                        status=rule.status,
                        headers=rule.headers,
                    )
            if response is None:
                try:
                    response = await handler(request)
                except DiscordHTTPError as exc:
                    response = exc.response()
                except web.HTTPNotFound:
                    response = json_response({"message": "404: Not Found", "code": 0}, status=404)
                except web.HTTPMethodNotAllowed:
                    response = json_response(
                        {"message": "405: Method Not Allowed", "code": 0}, status=405
                    )
            status = response.status
            return response
        finally:
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=path,
                    query=dict(request.query),
                    bot_id=bot.id if bot else None,
                    status=status,
                    body=body,
                )
            )
            self._notify()

    def _auth(self, request: web.Request) -> FakeBot:
        token = _bearer_token(request)
        bot = self.bots.get(token) if token is not None else None
        if bot is None or bot.revoked:
            raise _unauthorized()
        return bot

    def _guild_for_bot(self, request: web.Request, bot: FakeBot) -> FakeGuild:
        guild_id = _snowflake(request.match_info["guild_id"], "guild_id")
        guild = self.guilds.get(guild_id)
        if guild is None:
            raise DiscordHTTPError(404, "Unknown Guild", 10004)
        if bot.id not in guild.members:
            raise DiscordHTTPError(403, "Missing Access", 50001)
        return guild

    def _channel_for_bot(self, request: web.Request, bot: FakeBot) -> FakeChannel | int:
        """A guild channel the bot can see, or the id of a DM channel of this bot."""
        channel_id = _snowflake(request.match_info["channel_id"], "channel_id")
        dm = self._dm_channels.get(channel_id)
        if dm is not None:
            if dm[0] != bot.id:
                raise DiscordHTTPError(403, "Missing Access", 50001)
            return channel_id
        guild_id = self._channel_guild.get(channel_id)
        if guild_id is None:
            raise DiscordHTTPError(404, "Unknown Channel", 10003)
        guild = self.guilds[guild_id]
        channel = guild.channel(channel_id)
        if channel is None:
            raise DiscordHTTPError(404, "Unknown Channel", 10003)
        if bot.id not in guild.members:
            raise DiscordHTTPError(403, "Missing Access", 50001)
        return channel

    def _add_rest_routes(self, app: web.Application) -> None:
        p = API_PREFIX
        r = app.router
        r.add_get(p + "/gateway", self._get_gateway)
        r.add_get(p + "/gateway/bot", self._get_gateway_bot)
        r.add_get(p + "/users/@me", self._get_me)
        r.add_get(p + "/users/@me/guilds", self._get_my_guilds)
        r.add_get(p + "/oauth2/applications/@me", self._get_application)
        r.add_get(p + "/applications/@me", self._get_application)
        r.add_get(p + "/guilds/{guild_id}", self._get_guild)
        r.add_get(p + "/guilds/{guild_id}/channels", self._get_guild_channels)
        r.add_get(p + "/guilds/{guild_id}/members/{user_id}", self._get_member)
        r.add_patch(p + "/guilds/{guild_id}/members/{user_id}", self._patch_member)
        r.add_delete(p + "/users/@me/guilds/{guild_id}", self._leave_guild)
        r.add_get(p + "/channels/{channel_id}", self._get_channel)
        r.add_get(p + "/channels/{channel_id}/messages", self._get_messages)
        r.add_get(p + "/channels/{channel_id}/messages/{message_id}", self._get_message)
        r.add_post(p + "/channels/{channel_id}/messages", self._post_message)
        r.add_post(p + "/channels/{channel_id}/typing", self._post_typing)

    # ---------------------------------------------------------------- REST handlers

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        self._auth(request)
        return json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response(self._auth(request).me_payload())

    async def _get_application(self, request: web.Request) -> web.Response:
        return json_response(self._auth(request).application_payload())

    async def _get_my_guilds(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        limit = _int_param(request.query, "limit", 200, 1, 200)
        after = request.query.get("after")
        before = request.query.get("before")
        mine = sorted((g for g in self.guilds.values() if bot.id in g.members), key=lambda g: g.id)
        if after is not None:
            after_id = _snowflake(after, "after")
            mine = [g for g in mine if g.id > after_id][:limit]
        elif before is not None:
            before_id = _snowflake(before, "before")
            mine = [g for g in mine if g.id < before_id][-limit:]
        else:
            mine = mine[:limit]
        with_counts = request.query.get("with_counts", "").lower() == "true"
        result = []
        for g in mine:
            entry = g.partial_payload(bot.id)
            if with_counts:
                entry["approximate_member_count"] = len(g.members)
                entry["approximate_presence_count"] = 0
            result.append(entry)
        return json_response(result)

    async def _get_guild(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        data = guild.base_payload()
        if request.query.get("with_counts", "").lower() == "true":
            data["approximate_member_count"] = len(guild.members)
            data["approximate_presence_count"] = 0
        return json_response(data)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        return json_response([c.payload() for c in guild.channels])

    async def _get_member(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        user_id = _snowflake(request.match_info["user_id"], "user_id")
        member = guild.members.get(user_id)
        if member is None:
            raise DiscordHTTPError(404, "Unknown Member", 10007)
        return json_response(member.payload())

    async def _patch_member(self, request: web.Request) -> web.Response:
        """``PATCH /guilds/{id}/members/@me`` (or the bot's own id): change the nickname."""
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        target = request.match_info["user_id"]
        if target != "@me" and target != str(bot.id):
            raise DiscordHTTPError(403, "Missing Permissions", 50013)
        body = await _json_body(request)
        member = guild.members[bot.id]
        if "nick" in body:
            nick = body["nick"]
            if nick is not None and not isinstance(nick, str):
                raise _invalid_form("nick", "BASE_TYPE_STRING", "Must be a string.")
            if nick is not None and len(nick) > MAX_NICK_LENGTH:
                raise _invalid_form(
                    "nick", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
                )
            member.nick = nick or None
            self.nickname_changes.append(NicknameChange(bot.id, guild.id, member.nick))
            self._dispatch_member_update(guild, member)
        return json_response(member.payload())

    def _dispatch_member_update(self, guild: FakeGuild, member: FakeMember) -> None:
        """GUILD_MEMBER_UPDATE: to the member's own sessions, others only with GUILD_MEMBERS."""
        data = member.payload()
        data["guild_id"] = str(guild.id)
        for session in self._guild_sessions(guild):
            if session.bot.id == member.user.id or session.has_intent(Intent.GUILD_MEMBERS):
                session.dispatch("GUILD_MEMBER_UPDATE", dict(data))

    async def _leave_guild(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        await self.remove_bot_from_guild(guild.id, bot.token)
        return web.Response(status=204)

    async def _get_channel(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        if isinstance(channel, int):
            _, user_id = self._dm_channels[channel]
            return json_response(
                {
                    "id": str(channel),
                    "type": int(ChannelType.DM),
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": [self.users[user_id].payload()],
                }
            )
        return json_response(channel.payload())

    async def _get_messages(self, request: web.Request) -> web.Response:
        """Channel history, newest first, with ``limit`` (1–100, default 50) and one of
        ``before``/``after``/``around``."""
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        channel_id = channel if isinstance(channel, int) else channel.id
        limit = _int_param(request.query, "limit", 50, 1, 100)
        history = self._history.get(channel_id, [])  # oldest first
        q = request.query
        if "before" in q:
            before = _snowflake(q["before"], "before")
            picked = [m for m in history if m.id < before][-limit:]
        elif "after" in q:
            after = _snowflake(q["after"], "after")
            picked = [m for m in history if m.id > after][:limit]
        elif "around" in q:
            around = _snowflake(q["around"], "around")
            older = [m for m in history if m.id < around]
            newer = [m for m in history if m.id >= around]
            half = limit // 2
            picked = older[-half:] + newer[: limit - half] if half else newer[:limit]
        else:
            picked = history[-limit:]
        return json_response([self._rest_message(m, bot) for m in reversed(picked)])

    async def _get_message(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        channel_id = channel if isinstance(channel, int) else channel.id
        message_id = _snowflake(request.match_info["message_id"], "message_id")
        message = self._messages.get(message_id)
        if message is None or message.channel_id != channel_id:
            raise DiscordHTTPError(404, "Unknown Message", 10008)
        return json_response(self._rest_message(message, bot))

    async def _post_message(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        body = await _message_body(request)
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            content = str(content)
        embeds = body.get("embeds") or []
        has_files = bool(body.get("__files__"))
        if not content and not embeds and not body.get("sticker_ids") and not has_files:
            raise DiscordHTTPError(400, "Cannot send an empty message", 50006)
        if content is not None and len(content) > MAX_MESSAGE_LENGTH:
            raise _invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."
            )
        if isinstance(channel, int):
            guild_id = None
            channel_id = channel
        else:
            if channel.type not in MESSAGEABLE_CHANNEL_TYPES:
                raise DiscordHTTPError(400, "Cannot send messages in a non-text channel", 50008)
            guild_id = channel.guild_id
            channel_id = channel.id
        reference_id: int | None = None
        ref = body.get("message_reference")
        if isinstance(ref, dict) and ref.get("message_id") is not None:
            reference_id = int(ref["message_id"])
            if reference_id not in self._messages and ref.get("fail_if_not_exists", True):
                raise _invalid_form(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
        message = FakeMessage(
            id=self.new_id(),
            channel_id=channel_id,
            guild_id=guild_id,
            author=bot.user,
            content=content or "",
            type=19 if reference_id is not None else 0,
            embeds=list(embeds),
            mention_ids=self._mentions_in(content or ""),
            reference_id=reference_id,
            nonce=body.get("nonce"),
            tts=bool(body.get("tts", False)),
            attachments=[
                FakeAttachment(id=self.new_id(), filename=name)
                for name in body.get("__files__", [])
            ],
        )
        self.sent_messages.append(message)
        if guild_id is None:
            self._history[channel_id].append(message)
            self._messages[message.id] = message
            self._notify()
        else:
            self._store_and_dispatch(message)
        return json_response(self._rest_message(message, bot))

    async def _post_typing(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        channel_id = channel if isinstance(channel, int) else channel.id
        self.typing_calls.append(TypingCall(bot.id, channel_id, time.time()))
        if not isinstance(channel, int):
            guild = self.guilds[channel.guild_id]
            data: JSON = {
                "channel_id": str(channel.id),
                "guild_id": str(guild.id),
                "user_id": str(bot.id),
                "timestamp": int(time.time()),
                "member": guild.members[bot.id].payload(),
            }
            for session in self._guild_sessions(guild):
                if session.bot is not bot and session.has_intent(Intent.GUILD_MESSAGE_TYPING):
                    session.dispatch("TYPING_START", dict(data))
        return web.Response(status=204)

    # ---------------------------------------------------------------- control endpoints

    def _add_control_routes(self, app: web.Application) -> None:
        """Endpoints for a developer driving the standalone fake with curl (not Discord's)."""
        app.router.add_post("/_fake/messages", self._control_post_message)
        app.router.add_get("/_fake/sent-messages", self._control_sent)
        app.router.add_get("/_fake/state", self._control_state)

    async def _control_post_message(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            message = await self.post_user_message(
                int(body["guild_id"]),
                int(body["channel_id"]),
                str(body.get("author", "someone")),
                str(body["content"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return json_response({"error": f"bad request: {exc}"}, status=400)
        return json_response({"id": str(message.id)}, status=201)

    async def _control_sent(self, request: web.Request) -> web.Response:
        return json_response(
            [
                {
                    "id": str(m.id),
                    "channel_id": str(m.channel_id),
                    "guild_id": None if m.guild_id is None else str(m.guild_id),
                    "bot": m.author.username,
                    "content": m.content,
                }
                for m in self.sent_messages
            ]
        )

    async def _control_state(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "bots": [
                    {"id": str(b.id), "username": b.username, "online": self.is_online(b.token)}
                    for b in self.bots.values()
                ],
                "guilds": [
                    {
                        "id": str(g.id),
                        "name": g.name,
                        "channels": [
                            {"id": str(c.id), "name": c.name, "type": int(c.type)}
                            for c in g.channels
                        ],
                        "bots": [b.username for b in self.bots_in(g.id)],
                    }
                    for g in self.guilds.values()
                ],
            }
        )

    # ---------------------------------------------------------------- gateway

    async def _gateway_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024, autoping=True)
        await ws.prepare(request)
        # zlib-stream is what discord.py asks for unless zstandard is installed; for any other
        # value (zstd-stream) the fake sends plain text frames, which discord.py also accepts.
        compress = request.query.get("compress")
        conn = GatewayConnection(
            ws,
            request,
            zlib_stream=compress == "zlib-stream",
            zlib_chunk_size=self.zlib_chunk_size,
        )
        self._connections.add(conn)
        version = request.query.get("v")
        encoding = request.query.get("encoding", "json")
        try:
            if version is not None and version not in ("9", "10"):
                conn.close(CloseCode.INVALID_API_VERSION, "Invalid API version.")
            elif encoding != "json":
                conn.close(CloseCode.DECODE_ERROR, "Error while decoding payload.")
            else:
                conn.send(
                    {
                        "op": Op.HELLO,
                        "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                        "s": None,
                        "t": None,
                    }
                )
            async for msg in ws:
                if conn.closed:
                    break
                if msg.type == WSMsgType.TEXT:
                    self._on_gateway_payload(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.close(CloseCode.DECODE_ERROR, "Error while decoding payload.")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await self._on_connection_end(conn)
        return ws

    async def _on_connection_end(self, conn: GatewayConnection) -> None:
        with contextlib.suppress(Exception):
            await conn.flush(timeout=1.0)
        conn.finish()
        self._connections.discard(conn)
        client_code = conn.ws.close_code if conn.server_close_code is None else None
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            # A client that closes with 1000/1001 ends its session; anything else may RESUME.
            if client_code in (1000, 1001):
                session.invalidated = True
            if session.invalidated:
                self._sessions.pop(session.id, None)
        self.closed_connections.append(
            (session.bot.id if session else None, conn.server_close_code or client_code)
        )
        self._notify()

    def _on_gateway_payload(self, conn: GatewayConnection, raw: str) -> None:
        payload = parse_payload(raw)
        if payload is None:
            conn.close(CloseCode.DECODE_ERROR, "Error while decoding payload.")
            return
        op = payload.get("op")
        data = payload.get("d")
        if op == Op.HEARTBEAT:
            conn.heartbeats += 1
            if self.ack_heartbeats:
                conn.send({"op": Op.HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            self._notify()
        elif op == Op.IDENTIFY:
            if conn.session is not None:
                conn.close(CloseCode.ALREADY_AUTHENTICATED, "Already authenticated.")
            else:
                self._identify(conn, data if isinstance(data, dict) else {})
        elif op == Op.RESUME:
            if conn.session is not None:
                conn.close(CloseCode.ALREADY_AUTHENTICATED, "Already authenticated.")
            else:
                self._resume(conn, data if isinstance(data, dict) else {})
        elif op in (Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE, Op.REQUEST_GUILD_MEMBERS):
            if conn.session is None:
                conn.close(CloseCode.NOT_AUTHENTICATED, "Not authenticated.")
            elif op == Op.REQUEST_GUILD_MEMBERS and isinstance(data, dict):
                self._request_members(conn.session, data)
        else:
            conn.close(CloseCode.UNKNOWN_OPCODE, "Unknown opcode.")

    def _identify(self, conn: GatewayConnection, data: JSON) -> None:
        token = data.get("token")
        bot = self.bots.get(token) if isinstance(token, str) else None
        if bot is None or bot.revoked:
            conn.close(CloseCode.AUTHENTICATION_FAILED, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents & ~ALL_INTENTS:
            conn.close(CloseCode.INVALID_INTENTS, "Invalid intent(s).")
            return
        privileged = Intent.MESSAGE_CONTENT | Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES
        if intents & privileged & ~bot.allowed_privileged_intents():
            conn.close(CloseCode.DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        shard = data.get("shard", [0, 1])
        if (
            not isinstance(shard, list)
            or len(shard) != 2
            or not all(isinstance(x, int) for x in shard)
            or shard[1] < 1
            or not 0 <= shard[0] < shard[1]
        ):
            conn.close(CloseCode.INVALID_SHARD, "Invalid shard.")
            return
        session = GatewaySession(
            id=uuid.uuid4().hex, bot=bot, intents=intents, shard=(shard[0], shard[1])
        )
        self._sessions[session.id] = session
        self._forget_old_sessions(bot)
        session.connection = conn
        conn.session = session
        guilds = sorted(
            (g for g in self.guilds.values() if bot.id in g.members and session.covers_guild(g.id)),
            key=lambda g: g.id,
        )
        ready: JSON = {
            "v": 10,
            "user": bot.me_payload(),
            "user_settings": {},
            "session_type": "normal",
            "session_id": session.id,
            "resume_gateway_url": self.resume_gateway_url,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "application": {"id": str(bot.id), "flags": bot.application_flags()},
            "auth": {},
            "_trace": ['["fake-discord-gateway"]'],
        }
        if "shard" in data:
            ready["shard"] = [shard[0], shard[1]]
        session.dispatch("READY", ready)
        for g in guilds:
            session.dispatch("GUILD_CREATE", g.gateway_payload(bot.id, initial=True))
        self.logins.append(
            GatewayLogin(
                "identify", bot.id, session.id, intents, conn.zlib_stream, conn.request.path
            )
        )
        conn.call_when_flushed(lambda: self._mark_online(conn))

    def _resume(self, conn: GatewayConnection, data: JSON) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        token = data.get("token")
        seq = data.get("seq")
        if (
            session is None
            or session.invalidated
            or session.bot.token != token
            or session.bot.revoked
            or not isinstance(seq, int)
        ):
            conn.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        missed = session.replay_after(seq)
        if missed is None:
            session.invalidated = True
            conn.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        old = session.connection
        if old is not None and old is not conn:
            old.abort()
        session.connection = conn
        conn.session = session
        for payload in missed:
            conn.send(payload)
        session.dispatch("RESUMED", {"_trace": ['["fake-discord-gateway"]']})
        self.logins.append(
            GatewayLogin(
                "resume",
                session.bot.id,
                session.id,
                session.intents,
                conn.zlib_stream,
                conn.request.path,
            )
        )
        conn.call_when_flushed(lambda: self._mark_online(conn))

    def _mark_online(self, conn: GatewayConnection) -> None:
        conn.online = True
        self._notify()

    def _forget_old_sessions(self, bot: FakeBot, keep: int = 5) -> None:
        """Keep a few disconnected sessions per bot for RESUME; forget older ones."""
        idle = [s for s in self._sessions.values() if s.bot is bot and s.connection is None]
        for session in idle[:-keep] if len(idle) > keep else []:
            self._sessions.pop(session.id, None)

    def _request_members(self, session: GatewaySession, data: JSON) -> None:
        raw_ids = data.get("guild_id")
        guild_ids = raw_ids if isinstance(raw_ids, list) else [raw_ids]
        query = str(data.get("query") or "").lower()
        limit = data.get("limit") or 0
        wanted = data.get("user_ids")
        wanted_ids = {
            int(u) for u in (wanted if isinstance(wanted, list) else [wanted] if wanted else [])
        }
        for raw in guild_ids:
            guild = self.guilds.get(int(raw)) if raw is not None and str(raw).isdigit() else None
            if guild is None or session.bot.id not in guild.members:
                continue
            members = [
                m
                for m in guild.members.values()
                if (not wanted_ids or m.user.id in wanted_ids)
                and m.user.username.lower().startswith(query)
            ]
            if isinstance(limit, int) and limit > 0:
                members = members[:limit]
            chunk: JSON = {
                "guild_id": str(guild.id),
                "members": [m.payload() for m in members],
                "chunk_index": 0,
                "chunk_count": 1,
            }
            if wanted_ids:
                found = {m.user.id for m in members}
                chunk["not_found"] = [str(i) for i in wanted_ids - found]
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            session.dispatch("GUILD_MEMBERS_CHUNK", chunk)


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None or not header.startswith("Bot "):
        return None
    return header[4:]


async def _json_body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except ValueError:
        raise DiscordHTTPError(400, "400: Bad Request", 50109) from None
    if not isinstance(body, dict):
        raise DiscordHTTPError(400, "Invalid Form Body", 50035)
    return body


async def _message_body(request: web.Request) -> JSON:
    """The body of a message create: JSON, or multipart with ``payload_json`` and files."""
    if request.content_type.startswith("multipart/"):
        body: JSON = {}
        files: list[str] = []
        reader = await request.multipart()
        async for part in _parts(reader):
            name, filename, payload = part
            if name == "payload_json":
                with contextlib.suppress(ValueError):
                    loaded = json.loads(payload)
                    if isinstance(loaded, dict):
                        body.update(loaded)
            elif filename:
                files.append(filename)
        body["__files__"] = files
        return body
    return await _json_body(request)


async def _parts(reader: Any) -> AsyncIterator[tuple[str | None, str | None, str]]:
    while True:
        part = await reader.next()
        if part is None:
            return
        data = await part.read(decode=False)
        yield part.name, part.filename, data.decode(errors="replace")
