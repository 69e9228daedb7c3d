"""What the fake Discord records for assertions, its failure rules, and waiting for changes."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .models import JSON, FakeMessage


@dataclass(frozen=True)
class RecordedRequest:
    """A REST request the fake received (the token is never recorded, only the bot it named)."""

    method: str
    path: str
    query: dict[str, str]
    bot_id: int | None
    status: int
    body: Any = None
    #: When the request arrived (``time.time()``).
    at: float = 0.0


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


@dataclass(frozen=True)
class RateLimitHit:
    """A 429 the fake answered: from a rate limit bucket, or injected with ``rate_limit()``."""

    bot_id: int | None
    method: str
    path: str
    bucket: str | None
    retry_after: float
    scope: str
    injected: bool
    at: float


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


@dataclass
class Records:
    """Everything the fake records, shared by its REST API, its gateway and the facade."""

    requests: list[RecordedRequest] = field(default_factory=list)
    sent_messages: list[FakeMessage] = field(default_factory=list)
    typing_calls: list[TypingCall] = field(default_factory=list)
    nickname_changes: list[NicknameChange] = field(default_factory=list)
    logins: list[GatewayLogin] = field(default_factory=list)
    #: (bot id, close code) of every gateway connection that ended.
    closed_connections: list[tuple[int | None, int | None]] = field(default_factory=list)
    rate_limit_hits: list[RateLimitHit] = field(default_factory=list)
    failures: list[FailureRule] = field(default_factory=list)


class Changes:
    """Lets tests wait for a condition, re-checked whenever the fake records something."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Wake everyone waiting: set the current event and start a new one."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
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
