"""Keeping the worker's connections in line with the configuration, and the sync loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from neonrain.contract import TokenEntry
from neonrain.huma import HumaRestClient
from neonrain.worker.agent import HumaSettings
from neonrain.worker.backend import BackendClient, BackendError
from neonrain.worker.bot import CursorSource, TokenClient
from neonrain.worker.config import ConfigSnapshot
from neonrain.worker.discord_compat import (
    point_discord_py_at,
    quiet_reconnect_tracebacks,
    quiet_voice_warning,
)
from neonrain.worker.reporting import Reporter

if TYPE_CHECKING:
    import httpx2

    from neonrain.config import Settings

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 25.0
FALLBACK_POLL_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 30.0


class WorkerManager:
    """Diffs each configuration against the running clients: a token that appeared starts a
    client, one that disappeared stops that client only, the rest are updated in place."""

    def __init__(
        self,
        reporter: Reporter,
        huma: HumaSettings | None,
        *,
        typing_wpm: float = 90.0,
        openai_http: Callable[[], httpx2.AsyncClient] | None = None,
        cursors: CursorSource | None = None,
    ) -> None:
        self.reporter = reporter
        self.huma = huma
        self.typing_wpm = typing_wpm
        self._openai_http = openai_http
        self._cursors = cursors
        self.clients: dict[str, TokenClient] = {}

    async def apply(self, snapshot: ConfigSnapshot) -> None:
        wanted = snapshot.tokens()
        for token in [t for t in self.clients if t not in wanted]:
            client = self.clients.pop(token)
            log.info("token removed; stopping its connection %s", client._ids())
            await client.stop()
            for user_id in client.accounts:
                if user_id not in snapshot.by_user:
                    self.reporter.forget(user_id)
        for token, accounts in wanted.items():
            running = self.clients.get(token)
            if running is None:
                self._start(token, accounts)
            else:
                await running.update(accounts)

    def _start(self, token: str, accounts: list[TokenEntry]) -> None:
        client = TokenClient(
            token,
            accounts,
            reporter=self.reporter,
            huma=self.huma,
            typing_wpm=self.typing_wpm,
            openai_http=self._openai_http,
            cursors=self._cursors,
        )
        self.clients[token] = client
        log.info(
            "token added; connecting users=%s active_guilds=%d",
            ",".join(sorted(a.user_id for a in accounts)),
            sum(len(a.active_guilds) for a in accounts),
        )
        client.start()

    async def stop(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)


class ConfigSync:
    """Follows ``GET /api/discord/tokens``: a full read, then ``since`` deltas with ``ETag`` and
    long-polling, so an unchanged configuration costs a 304 and a change arrives at once. On
    failure it keeps the last good configuration and retries with backoff."""

    def __init__(
        self,
        backend: BackendClient,
        manager: WorkerManager,
        *,
        shard: tuple[int, int] | None = None,
        long_poll: float = LONG_POLL_SECONDS,
    ) -> None:
        self.backend = backend
        self.manager = manager
        self.shard = shard
        self.long_poll = long_poll
        self.snapshot = ConfigSnapshot()
        self.etag: str | None = None
        self.synced = asyncio.Event()
        self._failures = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            full = self.snapshot.generation is None
            started = loop.time()
            try:
                answer = await self.backend.fetch_tokens(
                    etag=None if full else self.etag,
                    since=None if full else self.snapshot.generation,
                    wait=0 if full else self.long_poll,
                    shard=self.shard,
                )
            except BackendError as exc:
                await self._back_off(exc)
                continue
            if self._failures:
                log.info("web app reachable again after %d failed reads", self._failures)
            self._failures = 0
            if answer.not_modified or answer.answer is None:
                if loop.time() - started < 0.5:  # the server does not hold requests: poll
                    await asyncio.sleep(FALLBACK_POLL_SECONDS)
                continue
            self.snapshot.apply(answer.answer, delta=not full)
            self.etag = answer.etag
            log.info(
                "configuration %s generation=%s accounts=%d",
                "loaded" if full else "changed",
                self.snapshot.generation,
                len(self.snapshot.by_user),
            )
            await self.manager.apply(self.snapshot)
            self.synced.set()

    async def _back_off(self, exc: Exception) -> None:
        self._failures += 1
        delay = min(MAX_BACKOFF_SECONDS, 2 ** min(self._failures - 1, 5)) * random.uniform(  # noqa: S311 - jitter, not secrecy
            0.8, 1.2
        )
        level = logging.INFO if self._failures == 1 else logging.WARNING
        if self._failures <= 3 or self._failures % 10 == 0:
            log.log(
                level,
                "configuration read failed (%s); keeping the last configuration, retry in %.1fs",
                exc,
                delay,
            )
        await asyncio.sleep(delay)


class Worker:
    """The whole worker: sync loop, connections, reporter; started and stopped as one."""

    def __init__(
        self,
        *,
        backend_url: str,
        api_key: str,
        huma_api_url: str,
        huma_api_key: str | None,
        typing_wpm: float,
        discord_api_url: str,
        discord_gateway_url: str | None,
        shard: tuple[int, int] | None = None,
        long_poll: float = LONG_POLL_SECONDS,
        flush_seconds: float = 2.0,
        backend_transport: httpx.AsyncBaseTransport | None = None,
        spool_file: Path | None = None,
    ) -> None:
        point_discord_py_at(discord_api_url, discord_gateway_url)
        quiet_voice_warning()
        quiet_reconnect_tracebacks()
        self.backend = BackendClient(backend_url, api_key, transport=backend_transport)
        self.reporter = Reporter(self.backend, flush_seconds=flush_seconds, spool_file=spool_file)
        self._huma_rest = HumaRestClient(huma_api_url, huma_api_key) if huma_api_key else None
        huma = (
            HumaSettings(huma_api_url, huma_api_key, typing_wpm, self._huma_rest)
            if huma_api_key and self._huma_rest is not None
            else None
        )
        if huma is None:
            log.warning(
                "HUMA_API_KEY is not set: servers using HUMA count messages but do not answer"
            )
        self._openai_http: httpx2.AsyncClient | None = None
        self.manager = WorkerManager(
            self.reporter,
            huma,
            typing_wpm=typing_wpm,
            openai_http=self._model_http,
            cursors=self.backend.fetch_cursors,
        )
        self.sync = ConfigSync(self.backend, self.manager, shard=shard, long_poll=long_poll)
        self._task: asyncio.Task[None] | None = None

    def _model_http(self) -> httpx2.AsyncClient:
        """One connection pool for every OpenAI-compatible agent, made on first use."""
        if self._openai_http is None:
            from neonrain.openai_engine.client import new_http_client

            self._openai_http = new_http_client()
        return self._openai_http

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        backend_url: str,
        api_key: str,
        shard: tuple[int, int] | None = None,
        backend_transport: httpx.AsyncBaseTransport | None = None,
    ) -> Worker:
        """A worker configured from the process settings (HUMA, Discord, typing speed, where
        undelivered reports are kept over a restart)."""
        return cls(
            backend_url=backend_url,
            api_key=api_key,
            huma_api_url=settings.huma_api_url,
            huma_api_key=settings.huma_api_key,
            typing_wpm=settings.typing_wpm,
            discord_api_url=settings.discord_api_url,
            discord_gateway_url=settings.discord_gateway_url,
            shard=shard,
            backend_transport=backend_transport,
            spool_file=settings.worker_spool_file(shard),
        )

    async def start(self) -> None:
        self.reporter.start()
        self._task = asyncio.create_task(self.sync.run(), name="worker-config-sync")

    async def stop(self) -> None:
        """Stop taking events, cancel pending typed messages, flush stats, close connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            async with asyncio.timeout(7):
                await self.manager.stop()
        except TimeoutError:
            log.warning("connections did not close within 7 s; leaving them")
        try:
            async with asyncio.timeout(2):
                await self.reporter.stop()
        except TimeoutError:
            log.warning("final report to the web app timed out")
        if self._huma_rest is not None:
            await self._huma_rest.aclose()
        if self._openai_http is not None:
            await self._openai_http.aclose()
        await self.backend.aclose()
        log.info("worker stopped")


async def run_standalone(
    settings: Settings,
    shard: tuple[int, int] | None,
    *,
    stop_requested: threading.Event | None = None,
) -> None:
    """``neonrain worker``: run until SIGINT/SIGTERM, then shut down within 10 s.

    ``stop_requested`` is set by a signal that arrived while the process was still starting (the
    command installs its handlers first thing); the worker then stops at once, cleanly."""
    import signal

    from neonrain.process import freeze_startup_objects

    assert settings.internal_api_key is not None
    worker = Worker.from_settings(
        settings, backend_url=settings.backend_url, api_key=settings.internal_api_key, shard=shard
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if stop_requested is not None and stop_requested.is_set():
        stop.set()
    await worker.start()
    freeze_startup_objects()
    await stop.wait()
    log.info("stopping the worker")
    await worker.stop()
