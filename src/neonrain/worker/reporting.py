"""What the worker tells the web app: batched stats, agent actions, connection states.

Nothing here blocks message handling: events are collected in memory and sent by one background
task, so a slow or absent web app costs nothing but delay (failed batches are kept and retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from neonrain.contract import (
    STATUS_DETAIL_MAX,
    AgentActionBody,
    StatEvent,
    StatEventName,
    WorkerState,
    WorkerTokenState,
)
from neonrain.worker.backend import BackendClient, BackendError

log = logging.getLogger(__name__)

STATS_FLUSH_SECONDS = 2.0
STATUS_HEARTBEAT_SECONDS = 30.0
MAX_QUEUED_ACTIONS = 1000


@dataclass
class _Counter:
    count: int
    at: datetime


class Reporter:
    """Collects stats, agent actions and per-account states, and flushes them periodically."""

    def __init__(self, backend: BackendClient, *, flush_seconds: float = STATS_FLUSH_SECONDS):
        self._backend = backend
        self._flush_seconds = flush_seconds
        self._stats: dict[tuple[str, str, StatEventName], _Counter] = {}
        self._actions: deque[AgentActionBody] = deque(maxlen=MAX_QUEUED_ACTIONS)
        self._states: dict[str, WorkerTokenState] = {}
        self._states_dirty = False
        self._last_status_sent = 0.0
        self._last_stats_sent = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.requests_sent = 0

    # -- collecting (synchronous, cheap)

    def count(
        self, user_id: str, guild_id: str, event: StatEventName, at: datetime | None = None
    ) -> None:
        at = at or datetime.now(UTC)
        key = (user_id, guild_id, event)
        counter = self._stats.get(key)
        if counter is None:
            self._stats[key] = _Counter(1, at)
        else:
            counter.count += 1
            counter.at = max(counter.at, at)

    def agent_action(self, action: AgentActionBody) -> None:
        self._actions.append(action)
        self._wake.set()

    def state(
        self,
        user_id: str,
        state: WorkerState,
        detail: str = "",
        guild_ids: list[str] | None = None,
    ) -> None:
        current = self._states.get(user_id)
        entry = WorkerTokenState(
            user_id=user_id,
            state=state,
            detail=detail[:STATUS_DETAIL_MAX],
            guild_ids=tuple(sorted(guild_ids if guild_ids is not None else [])),
        )
        if current == entry:
            return
        self._states[user_id] = entry
        self._states_dirty = True
        self._wake.set()

    def forget(self, user_id: str) -> None:
        self._states.pop(user_id, None)

    # -- sending

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="worker-reporter")

    async def stop(self) -> None:
        """Stop the loop and make one last attempt to deliver everything."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(BackendError):
            await self.flush(force_status=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            now = loop.time()
            heartbeat = now - self._last_status_sent >= STATUS_HEARTBEAT_SECONDS
            # At most one stats request per flush interval, whatever the message rate.
            stats_due = now - self._last_stats_sent >= self._flush_seconds
            try:
                await self.flush(force_status=heartbeat, stats=stats_due)
            except BackendError as exc:
                log.warning("reporting to the web app failed (%s); will retry", exc)
                await asyncio.sleep(self._flush_seconds)

    async def flush(self, *, force_status: bool = False, stats: bool = True) -> None:
        if stats and self._stats:
            self._last_stats_sent = asyncio.get_running_loop().time()
            batch, self._stats = self._stats, {}
            events = [
                StatEvent(user_id=u, guild_id=g, event=e, count=c.count, at=c.at.astimezone(UTC))
                for (u, g, e), c in batch.items()
            ]
            try:
                await self._backend.post_stats(events)
                self.requests_sent += 1
            except BackendError:
                for key, counter in batch.items():  # keep them for the next attempt
                    kept = self._stats.setdefault(key, _Counter(0, counter.at))
                    kept.count += counter.count
                    kept.at = max(kept.at, counter.at)
                raise
        while self._actions:
            action = self._actions[0]
            await self._backend.post_agent_action(action)
            self._actions.popleft()
        if self._states and (self._states_dirty or force_status):
            self._states_dirty = False
            try:
                await self._backend.post_worker_status(list(self._states.values()))
            except BackendError:
                self._states_dirty = True
                raise
            self._last_status_sent = asyncio.get_running_loop().time()
