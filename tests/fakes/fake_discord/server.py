"""The fake Discord's facade: one aiohttp app serving the REST API v10 and the gateway.

It runs in the test's event loop on an ephemeral port. The real discord.py client and the product's
own REST client talk to it exactly as they would talk to Discord; tests build the world (guilds,
channels, roles, overwrites, people, threads), drive it (post a message as a user, inject failures,
drop connections) and read what bots did (messages sent, typing, nickname changes, 429s) through
the attributes and coroutines of :class:`FakeDiscord`. The work is done by :mod:`.state` (the
world), :mod:`.rest`, :mod:`.gateway_server` and :mod:`.ratelimit`; the helpers that build and
drive the world are the mixins :mod:`.building` and :mod:`.driving`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterator

from aiohttp import web

from .building import WorldBuilder
from .control import add_control_routes
from .driving import Driver
from .gateway import GatewayConnection, GatewaySession
from .gateway_server import GatewayServer
from .models import JSON, FakeMessage
from .ratelimit import Limit, RateLimiter, RateLimits, too_many_requests_headers
from .records import (
    Changes,
    FailureRule,
    GatewayLogin,
    NicknameChange,
    RateLimitHit,
    RecordedRequest,
    Records,
    TypingCall,
)
from .rest import API_PREFIX, HistoryWithoutPermission, RestApi
from .state import FakeState

__all__ = [
    "FailureRule",
    "FakeDiscord",
    "GatewayLogin",
    "NicknameChange",
    "RateLimitHit",
    "RecordedRequest",
    "TypingCall",
]


class FakeDiscord(WorldBuilder, Driver):
    """A local Discord for tests. Use ``async with FakeDiscord() as fake:`` (or start/stop).

    Building the world is in :class:`~.building.WorldBuilder`, driving it in
    :class:`~.driving.Driver`; this class owns the server, the settings and the records.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_ms: int = 41250,
        zlib_chunk_size: int | None = None,
        history_limit: int | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = FakeState(history_limit=history_limit)
        self.records = Records()
        self.changes = Changes()
        self.gateway = GatewayServer(
            self.state,
            self.records,
            self.changes,
            heartbeat_interval_ms=heartbeat_interval_ms,
            zlib_chunk_size=zlib_chunk_size,
        )
        self.state.on_member_join = self.gateway.member_added
        self.limiter = RateLimiter(rate_limits or RateLimits.generous())
        self._stopping = asyncio.Event()
        self.rest = RestApi(
            self.state,
            self.gateway,
            self.records,
            self.changes,
            self.limiter,
            self._stopping,
            self._bot_left,
        )
        # The world and the records, shared with the REST API and the gateway.
        self.bots = self.state.bots
        self.users = self.state.users
        self.guilds = self.state.guilds
        self.failures = self.records.failures
        self.requests = self.records.requests
        self.sent_messages = self.records.sent_messages
        self.typing_calls = self.records.typing_calls
        self.nickname_changes = self.records.nickname_changes
        self.logins = self.records.logins
        self.closed_connections = self.records.closed_connections
        #: Every 429 the fake answered (rate limit buckets and injected ones).
        self.rate_limit_hits = self.records.rate_limit_hits
        self._consumed: set[int] = set()
        self._runner: web.AppRunner | None = None
        self._base_http = ""

    # ---------------------------------------------------------------- settings

    @property
    def history_limit(self) -> int | None:
        """When set, a channel's history is cut back to its newest ``history_limit`` messages
        whenever a message makes it twice as long (load tests post for minutes)."""
        return self.state.history_limit

    @history_limit.setter
    def history_limit(self, value: int | None) -> None:
        self.state.history_limit = value

    @property
    def heartbeat_interval_ms(self) -> int:
        """HELLO's heartbeat interval; tests that want to see heartbeats lower it."""
        return self.gateway.heartbeat_interval_ms

    @heartbeat_interval_ms.setter
    def heartbeat_interval_ms(self, value: int) -> None:
        self.gateway.heartbeat_interval_ms = value

    @property
    def zlib_chunk_size(self) -> int | None:
        """When set, each zlib-compressed gateway message is split over frames of this size."""
        return self.gateway.zlib_chunk_size

    @zlib_chunk_size.setter
    def zlib_chunk_size(self, value: int | None) -> None:
        self.gateway.zlib_chunk_size = value

    @property
    def ack_heartbeats(self) -> bool:
        """Answer heartbeats with HEARTBEAT_ACK (switch off to make a client think the link
        died)."""
        return self.gateway.ack_heartbeats

    @ack_heartbeats.setter
    def ack_heartbeats(self, value: bool) -> None:
        self.gateway.ack_heartbeats = value

    @property
    def rate_limits(self) -> RateLimits:
        """The REST rate limits (``RateLimits.generous()`` unless set); setting them resets
        every bucket."""
        return self.limiter.limits

    @rate_limits.setter
    def rate_limits(self, value: RateLimits) -> None:
        self.limiter.limits = value
        self.limiter.reset()

    def set_rate_limit(self, route: str, limit: int, window: float) -> None:
        """Limit one route, e.g. ``set_rate_limit("POST /channels/{channel_id}/messages", 1,
        0.5)``: one message per half second per channel."""
        self.limiter.limits.routes[route] = Limit(limit, window)
        self.limiter.reset()

    @property
    def history_without_permission(self) -> HistoryWithoutPermission:
        """``"forbidden"`` (403 50013, the default) or ``"empty"`` (an empty list): how history
        answers a bot without READ_MESSAGE_HISTORY."""
        return self.rest.history_without_permission

    @history_without_permission.setter
    def history_without_permission(self, value: HistoryWithoutPermission) -> None:
        self.rest.history_without_permission = value

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self.rest.middleware])
        self.gateway.add_routes(app)
        self.rest.add_routes(app)
        add_control_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._base_http = f"http://{self.host}:{self.port}"
        self.gateway.resume_url = self.resume_gateway_url
        self.rest.gateway_url = self.gateway_url
        return self

    async def stop(self) -> None:
        self._stopping.set()
        await self.gateway.close_all()
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
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway-resume"

    @contextlib.contextmanager
    def patch_discord_py(self) -> Iterator[None]:
        """Point discord.py's REST base and gateway at this fake for the ``with`` block."""
        from .discord_py import discord_py_pointed_at

        with discord_py_pointed_at(self.api_url, self.gateway_url):
            yield

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
        """Answer 429 as Discord does (``retry_after`` body, ``Retry-After`` and ``Via``), whatever
        the bucket says (for a real bucket, see :meth:`set_rate_limit`)."""
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
            headers=too_many_requests_headers(retry_after),
        )

    def clear_failures(self) -> None:
        self.failures.clear()

    # ---------------------------------------------------------------- reading what happened

    def connections(self, token: str | None = None) -> list[GatewayConnection]:
        """Open gateway connections (of one bot, or all); each counts its ``heartbeats``."""
        return self.gateway.live_connections(token)

    def connection_count(self, token: str | None = None) -> int:
        return len(self.gateway.live_connections(token))

    def is_online(self, token: str) -> bool:
        """A connection of this bot has been sent READY (or RESUMED) and its guilds."""
        bot = self.bots[token]
        return any(
            c.online and c.session and c.session.bot is bot for c in self.gateway.live_connections()
        )

    def sessions_of(self, token: str) -> list[GatewaySession]:
        return self.gateway.bot_sessions(self.bots[token])

    def history(self, channel_id: int) -> list[FakeMessage]:
        """The channel's messages, oldest first."""
        return list(self.state.history.get(channel_id, []))

    def messages_sent_to(self, channel_id: int) -> list[FakeMessage]:
        return [m for m in self.sent_messages if m.channel_id == channel_id]

    async def wait_for_online(self, token: str, timeout: float = 5.0) -> None:
        await self.changes.wait(lambda: self.is_online(token), timeout, f"bot {token[:4]}… online")

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

        await self.changes.wait(ready, timeout, f"a bot message in channel {channel_id}")
        self._consumed.add(found[0].id)
        return found[0]

    async def wait_for_typing(self, channel_id: int, timeout: float = 5.0) -> TypingCall:
        await self.changes.wait(
            lambda: any(t.channel_id == channel_id for t in self.typing_calls),
            timeout,
            f"typing in channel {channel_id}",
        )
        return next(t for t in self.typing_calls if t.channel_id == channel_id)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked whenever the fake records something)."""
        await self.changes.wait(predicate, timeout, "condition")
