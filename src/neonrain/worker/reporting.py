"""What the worker tells the web app: batched stats, agent actions, connection states, cursors.

Nothing here blocks message handling: events are collected in memory and sent by one background
task, so a slow or absent web app costs nothing but delay. The four kinds travel independently: a
failing one backs off on its own and never holds up the others (the status report above all, which
the dashboard reads). A report the web app refuses for good (a 4xx other than 408/429: a body it
cannot take, a server deleted meanwhile) is dropped with a log line; one that failed for a while
(network, 5xx, 408, 429) is retried with backoff and, after ``MAX_ATTEMPTS``, dropped too — so no
single item can stop the queue. What is still unsent at shutdown is written to a spool file that
the next worker process replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from neonrain.contract import (
    STATUS_DETAIL_MAX,
    AgentActionBody,
    ChannelCursor,
    StatEvent,
    StatEventName,
    WorkerTokenState,
)
from neonrain.worker.backend import BackendClient, BackendError

log = logging.getLogger(__name__)

STATS_FLUSH_SECONDS = 2.0
STATUS_HEARTBEAT_SECONDS = 30.0
MAX_QUEUED_ACTIONS = 1000
#: Attempts before an item that keeps failing transiently is given up (about ten minutes).
MAX_ATTEMPTS = 20
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class _Counter:
    count: int
    at: datetime


@dataclass
class _Channel:
    """The retry state of one kind of report."""

    name: str
    failures: int = 0
    not_before: float = 0.0

    def due(self, now: float) -> bool:
        return now >= self.not_before

    def succeeded(self) -> None:
        if self.failures:
            log.info("reporting %s to the web app works again", self.name)
        self.failures = 0
        self.not_before = 0.0

    def failed(self, now: float, error: BackendError) -> None:
        self.failures += 1
        delay = min(MAX_BACKOFF_SECONDS, 2 ** min(self.failures - 1, 5)) * random.uniform(  # noqa: S311 - jitter, not secrecy
            0.8, 1.2
        )
        self.not_before = now + delay
        if self.failures <= 3 or self.failures % 10 == 0:
            log.warning(
                "reporting %s to the web app failed (%s); retry in %.1fs", self.name, error, delay
            )


@dataclass
class _QueuedAction:
    body: AgentActionBody
    attempts: int = 0


class Reporter:
    """Collects stats, agent actions, per-account states and channel cursors, and sends them."""

    def __init__(
        self,
        backend: BackendClient,
        *,
        flush_seconds: float = STATS_FLUSH_SECONDS,
        spool_file: Path | None = None,
    ) -> None:
        self._backend = backend
        self._flush_seconds = flush_seconds
        self._spool_file = spool_file
        self._stats: dict[tuple[str, str, StatEventName], _Counter] = {}
        self._actions: deque[_QueuedAction] = deque()
        self._states: dict[str, WorkerTokenState] = {}
        self._cursors: dict[tuple[str, str], ChannelCursor] = {}
        self._states_dirty = False
        self._last_status_sent = 0.0
        self._last_stats_sent = 0.0
        self._channels = {
            kind: _Channel(kind) for kind in ("stats", "agent actions", "status", "cursors")
        }
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.requests_sent = 0
        self.dropped_actions = 0

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
        if len(self._actions) >= MAX_QUEUED_ACTIONS:
            dropped = self._actions.popleft()
            self.dropped_actions += 1
            log.warning(
                "agent action dropped: %d actions queued while the web app was away "
                "user=%s guild=%s channel=%s",
                MAX_QUEUED_ACTIONS,
                dropped.body.user_id,
                dropped.body.guild_id,
                dropped.body.channel_id,
            )
        self._actions.append(_QueuedAction(action))
        self._wake.set()

    def state(self, report: WorkerTokenState) -> None:
        """The newest state of an account's connection; sent at once when it changed."""
        if len(report.detail) > STATUS_DETAIL_MAX:
            report = report.model_copy(update={"detail": report.detail[:STATUS_DETAIL_MAX]})
        if self._states.get(report.user_id) == report:
            return
        self._states[report.user_id] = report
        self._states_dirty = True
        self._wake.set()

    def current_state(self, user_id: str) -> WorkerTokenState | None:
        return self._states.get(user_id)

    def forget(self, user_id: str) -> None:
        self._states.pop(user_id, None)

    def cursor(self, user_id: str, guild_id: str, channel_id: str, message_id: str) -> None:
        """The newest message seen in a watched channel (kept only if newer)."""
        key = (user_id, channel_id)
        known = self._cursors.get(key)
        if known is not None and int(known.message_id) >= int(message_id):
            return
        self._cursors[key] = ChannelCursor(
            user_id=user_id, guild_id=guild_id, channel_id=channel_id, message_id=message_id
        )

    def pending_cursors(self, user_ids: set[str]) -> list[ChannelCursor]:
        """Cursors not delivered yet (a previous process's spool included) of these accounts."""
        return [c for (user_id, _), c in self._cursors.items() if user_id in user_ids]

    # -- sending

    def start(self) -> None:
        self._replay_spool()
        self._task = asyncio.create_task(self._run(), name="worker-reporter")

    async def stop(self) -> None:
        """Stop the loop, make one last attempt to deliver everything, spool what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for channel in self._channels.values():
            channel.not_before = 0.0
        try:
            await self.flush(force_status=True)
        finally:
            self._write_spool()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            now = asyncio.get_running_loop().time()
            heartbeat = now - self._last_status_sent >= STATUS_HEARTBEAT_SECONDS
            # At most one stats request per flush interval, whatever the message rate.
            stats_due = now - self._last_stats_sent >= self._flush_seconds
            try:
                await self.flush(force_status=heartbeat, stats=stats_due)
            except Exception:  # never let the reporter die: the next round tries again
                log.exception("reporting to the web app failed unexpectedly")

    async def flush(self, *, force_status: bool = False, stats: bool = True) -> None:
        """One round: each kind of report that is due is sent, independently of the others."""
        await self._attempt("status", lambda: self._send_status(force_status))
        if stats:
            await self._attempt("stats", self._send_stats)
        await self._attempt("agent actions", self._send_actions)
        await self._attempt("cursors", self._send_cursors)

    async def _attempt(self, kind: str, send: Callable[[], Awaitable[None]]) -> None:
        channel = self._channels[kind]
        now = asyncio.get_running_loop().time()
        if not channel.due(now):
            return
        try:
            await send()
        except BackendError as exc:
            channel.failed(asyncio.get_running_loop().time(), exc)
        else:
            channel.succeeded()

    async def _send_status(self, force: bool) -> None:
        if not self._states or not (self._states_dirty or force):
            return
        self._states_dirty = False
        try:
            await self._backend.post_worker_status(list(self._states.values()))
        except BackendError as exc:
            if not exc.permanent:
                self._states_dirty = True
            else:
                log.error("the web app refused the worker status report: %s", exc)
            raise
        self.requests_sent += 1
        self._last_status_sent = asyncio.get_running_loop().time()

    async def _send_stats(self) -> None:
        if not self._stats:
            return
        self._last_stats_sent = asyncio.get_running_loop().time()
        batch, self._stats = self._stats, {}
        events: list[StatEvent] = []
        for (user_id, guild_id, event), counter in batch.items():
            try:
                events.append(
                    StatEvent(
                        user_id=user_id,
                        guild_id=guild_id,
                        event=event,
                        count=counter.count,
                        at=counter.at.astimezone(UTC),
                    )
                )
            except ValidationError as exc:
                log.error(
                    "stats event dropped, not valid for the web app user=%s guild=%s: %s",
                    user_id,
                    guild_id,
                    exc.errors()[0].get("msg"),
                )
        if not events:
            return
        try:
            await self._backend.post_stats(events)
        except BackendError as exc:
            if exc.permanent:
                log.error(
                    "stats dropped: the web app refused them (%s); %d counts lost",
                    exc,
                    sum(e.count for e in events),
                )
            else:
                self._restore_stats(batch)
            raise
        self.requests_sent += 1

    def _restore_stats(self, batch: dict[tuple[str, str, StatEventName], _Counter]) -> None:
        for key, counter in batch.items():  # keep them for the next attempt
            kept = self._stats.setdefault(key, _Counter(0, counter.at))
            kept.count += counter.count
            kept.at = max(kept.at, counter.at)

    async def _send_actions(self) -> None:
        """Every queued action, oldest first; one that fails transiently goes to the back of the
        queue (so it cannot hold up the others) until it has failed ``MAX_ATTEMPTS`` times."""
        for _ in range(len(self._actions)):
            if not self._actions:
                return
            queued = self._actions.popleft()
            try:
                await self._backend.post_agent_action(queued.body)
            except BackendError as exc:
                if exc.permanent:
                    self._drop(queued, f"the web app refused it ({exc})")
                    continue
                queued.attempts += 1
                if queued.attempts >= MAX_ATTEMPTS:
                    self._drop(queued, f"it failed {queued.attempts} times ({exc})")
                else:
                    self._actions.append(queued)
                raise
            self.requests_sent += 1

    def _drop(self, queued: _QueuedAction, why: str) -> None:
        self.dropped_actions += 1
        body = queued.body
        log.warning(
            "agent action dropped: %s user=%s guild=%s channel=%s",
            why,
            body.user_id,
            body.guild_id,
            body.channel_id,
        )

    async def _send_cursors(self) -> None:
        if not self._cursors:
            return
        batch, self._cursors = self._cursors, {}
        try:
            await self._backend.post_cursors(list(batch.values()))
        except BackendError as exc:
            if not exc.permanent:
                for key, cursor in batch.items():
                    self._cursors.setdefault(key, cursor)
            raise

    # -- the spool: what a stopping worker could not deliver, for the next process

    def _write_spool(self) -> None:
        if self._spool_file is None:
            return
        stats = [
            {"userId": u, "guildId": g, "event": e, "count": c.count, "at": c.at.isoformat()}
            for (u, g, e), c in self._stats.items()
        ]
        actions = [queued.body.wire() for queued in self._actions]
        cursors = [cursor.wire() for cursor in self._cursors.values()]
        if not (stats or actions or cursors):
            return
        try:
            self._spool_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._spool_file.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"stats": stats, "actions": actions, "cursors": cursors}, handle)
            temporary.replace(self._spool_file)
        except OSError as exc:
            log.error("could not keep undelivered reports in %s: %s", self._spool_file, exc)
            return
        log.warning(
            "the web app did not take every report before shutdown: %d counts, %d agent actions "
            "kept in %s for the next start",
            sum(c.count for c in self._stats.values()),
            len(actions),
            self._spool_file,
        )

    def _replay_spool(self) -> None:
        path = self._spool_file
        if path is None or not path.exists():
            return
        try:
            spooled: dict[str, Any] = json.loads(path.read_text())
            for item in spooled.get("stats", []):
                event = StatEvent.model_validate(item)
                counter = self._stats.setdefault(
                    (event.user_id, event.guild_id, event.event), _Counter(0, event.at)
                )
                counter.count += event.count
                counter.at = max(counter.at, event.at)
            for item in spooled.get("actions", []):
                self._actions.append(_QueuedAction(AgentActionBody.model_validate(item)))
            for item in spooled.get("cursors", []):
                cursor = ChannelCursor.model_validate(item)
                self.cursor(cursor.user_id, cursor.guild_id, cursor.channel_id, cursor.message_id)
        except (OSError, ValueError) as exc:
            log.error("the report spool %s cannot be read (%s); moved aside", path, exc)
            with contextlib.suppress(OSError):
                path.replace(path.with_suffix(".unreadable"))
            return
        path.unlink(missing_ok=True)
        log.info(
            "replaying reports a previous worker could not deliver: %d counts, %d agent actions",
            sum(c.count for c in self._stats.values()),
            len(self._actions),
        )
