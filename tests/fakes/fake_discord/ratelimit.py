"""Discord's per-route rate limits: buckets, ``X-RateLimit-*`` headers and 429 answers.

https://discord.com/developers/docs/topics/rate-limits

Each bot token has a bucket per route and *major parameter* (channel, guild or webhook id): POST
messages in one channel does not use up another channel's allowance. A bucket allows ``limit``
requests in a window of ``window`` seconds that starts with its first request. Every answer of a
limited route carries the bucket's headers; the request over the limit gets a 429 with
``retry_after`` (seconds, a float) and ``Retry-After``, ``X-RateLimit-Scope`` and ``Via`` headers
(discord.py treats a 429 without ``Via`` as a Cloudflare ban).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .models import JSON

#: Route keys: the method and the route template after ``/api/v10``.
POST_MESSAGE = "POST /channels/{channel_id}/messages"
TYPING = "POST /channels/{channel_id}/typing"

MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id")


@dataclass(frozen=True)
class Limit:
    """``limit`` requests per ``window`` seconds."""

    limit: int
    window: float


@dataclass
class RateLimits:
    """The fake's rate limit configuration: a limit per route key, ``default`` for the others.

    The default (:meth:`generous`) is on but high, so that tests that do not care never wait;
    :meth:`discord` has Discord's own numbers for sending messages (5 per 5 s per channel).
    """

    enabled: bool = True
    routes: dict[str, Limit] = field(default_factory=dict)
    default: Limit | None = None

    @classmethod
    def generous(cls) -> RateLimits:
        return cls(
            routes={POST_MESSAGE: Limit(50, 5.0), TYPING: Limit(50, 5.0)},
            default=Limit(1000, 1.0),
        )

    @classmethod
    def discord(cls) -> RateLimits:
        return cls(
            routes={POST_MESSAGE: Limit(5, 5.0), TYPING: Limit(5, 5.0)},
            default=Limit(50, 1.0),
        )

    @classmethod
    def off(cls) -> RateLimits:
        return cls(enabled=False)

    def for_route(self, route: str) -> Limit | None:
        if not self.enabled:
            return None
        return self.routes.get(route, self.default)


@dataclass
class _Window:
    reset_at: float
    count: int = 0


@dataclass(frozen=True)
class Decision:
    """The limiter's verdict on one request."""

    allowed: bool
    bucket: str
    retry_after: float
    headers: dict[str, str]

    def too_many_requests_body(self) -> JSON:
        return {
            "message": "You are being rate limited.",
            "retry_after": self.retry_after,
            "global": False,
            "code": 0,
        }


def bucket_hash(route: str) -> str:
    """A stable, opaque bucket id per route, in the shape of Discord's."""
    return hashlib.sha256(route.encode()).hexdigest()[:32]


def too_many_requests_headers(retry_after: float, scope: str = "user") -> dict[str, str]:
    """The headers of a 429 besides the bucket's (discord.py requires ``Via``)."""
    return {
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Scope": scope,
        "Via": "1.1 google",
    }


class RateLimiter:
    """Counts requests per (token, route, major parameter) and decides who gets a 429."""

    def __init__(self, limits: RateLimits, *, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self._clock = clock
        self._windows: dict[tuple[str | None, str, str], _Window] = {}

    def reset(self) -> None:
        """Forget every bucket (a test that changes the limits starts afresh)."""
        self._windows.clear()

    def check(self, token: str | None, route: str, params: Mapping[str, str]) -> Decision | None:
        """Count one request; None when the route is not limited."""
        limit = self.limits.for_route(route)
        if limit is None:
            return None
        major = next((params[p] for p in MAJOR_PARAMETERS if p in params), "")
        now = self._clock()
        key = (token, route, major)
        window = self._windows.get(key)
        if window is None or now >= window.reset_at:
            window = _Window(reset_at=now + limit.window)
            self._windows[key] = window
        window.count += 1
        reset_after = max(window.reset_at - now, 0.0)
        allowed = window.count <= limit.limit
        bucket = bucket_hash(route)
        headers = {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(max(limit.limit - window.count, 0)),
            "X-RateLimit-Reset": f"{window.reset_at:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        retry_after = 0.0 if allowed else max(round(reset_after, 3), 0.001)
        if not allowed:
            headers.update(too_many_requests_headers(retry_after))
        return Decision(allowed=allowed, bucket=bucket, retry_after=retry_after, headers=headers)
