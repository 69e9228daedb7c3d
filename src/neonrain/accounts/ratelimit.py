"""Sliding-window counters for sign-in attempts and registrations (per email, per address).

Kept in process memory: with several web replicas each counts on its own, so the effective limit
is per replica; that still stops a brute force at a few hundred guesses an hour.

An attempt is *reserved* before the slow password check and kept when the check fails: counting
only after the check let 40 concurrent guesses all pass the limit, which each of them saw as
untouched while the others were still being verified.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def _prune(self, key: str) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        cutoff = self._clock() - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it is under the limit."""
        hits = self._prune(key)
        if len(hits) < self.limit:
            return None
        return max(1, math.ceil(hits[0] + self.window - self._clock()))

    def hit(self, key: str) -> None:
        self._prune(key)
        self._hits.setdefault(key, deque()).append(self._clock())
        if len(self._hits) > 100_000:  # bound memory under a spray of keys
            for stale in list(self._hits)[:10_000]:
                self._prune(stale)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def release(self, key: str) -> None:
        """Give back one reserved attempt (the newest) of ``key``."""
        hits = self._hits.get(key)
        if hits:
            hits.pop()
            if not hits:
                del self._hits[key]


def reserve(*counters: tuple[SlidingWindowLimiter, str]) -> int | None:
    """Count an attempt now against every ``(limiter, key)`` when all are under their limit and
    return None; otherwise count nothing and return the seconds to wait. No ``await`` happens in
    between, so concurrent requests cannot slip past the limit together."""
    wait = max((limiter.retry_after(key) or 0 for limiter, key in counters), default=0)
    if wait:
        return wait
    for limiter, key in counters:
        limiter.hit(key)
    return None
