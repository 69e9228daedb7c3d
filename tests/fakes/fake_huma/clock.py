"""A manual clock for the HUMA runtime (``neonrain.huma.runtime.Clock``): no real sleeping.

Two modes:

* ``ManualClock()`` — every ``sleep`` blocks until the test calls :meth:`ManualClock.advance`.
  Use it to hold a message in its typing delay while something else happens.
* ``ManualClock(auto=True)`` — every ``sleep`` advances virtual time at once and returns. Use it
  where only the requested delays matter (reconnect backoff).

Either way :attr:`ManualClock.sleeps` lists every requested delay, in order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class ManualClock:
    def __init__(self, *, auto: bool = False, start: float = 1000.0) -> None:
        self.now = start
        self.auto = auto
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._changed = asyncio.Event()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._changed.set()
        if self.auto or seconds <= 0:
            self.now += max(0.0, seconds)
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._counter), future))
        await future

    @property
    def pending_sleepers(self) -> int:
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def wait_for_sleepers(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until at least ``count`` tasks are blocked in :meth:`sleep`."""
        async with asyncio.timeout(timeout):
            while self.pending_sleepers < count:
                self._changed.clear()
                await self._changed.wait()

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in deadline order.

        Woken tasks get to run (and to start new sleeps inside the window) before time moves on.
        """
        target = self.now + seconds
        while True:
            await _settle()
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # canceled sleepers
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            deadline, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            future.set_result(None)
        self.now = target
        await _settle()


async def _settle(rounds: int = 20) -> None:
    """Let ready tasks run for a few loop iterations."""
    for _ in range(rounds):
        await asyncio.sleep(0)
