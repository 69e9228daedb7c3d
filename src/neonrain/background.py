"""The background services a web process runs inside its lifespan (``create_app(background=...)``).

Each is started with the app's state once the database is ready and returns the coroutine function
that stops it. They live here, on the app's side, so that the domains (the scraper) and the worker
never need to know about ``AppState``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType

import httpx

from neonrain.state import AppState

log = logging.getLogger(__name__)

Stop = Callable[[], Awaitable[None]]
BackgroundService = Callable[[AppState], Awaitable[Stop]]


async def _nothing_to_stop() -> None:
    return None


async def scraper(state: AppState) -> Stop:
    """The website scraper of this process (``state.scraper``)."""
    from neonrain.websites.fetch import Fetcher
    from neonrain.websites.scraper import Scraper

    started = Scraper(
        state.sessionmaker,
        Fetcher(allow_private=state.settings.allow_private_urls),
        notifier=state.notifier,
    )
    state.scraper = started
    started.start()
    log.info(
        "website scraper started (%d at once, %d per host, private addresses %s)",
        started.options.concurrency,
        started.options.per_host,
        "allowed" if state.settings.allow_private_urls else "refused",
    )

    async def stop() -> None:
        await started.stop()
        state.scraper = None

    return stop


async def embedded_worker(state: AppState) -> Stop:
    """The Discord worker inside ``neonrain serve``.

    It uses the same internal HTTP API as a separate worker, with this process's key, but calls
    the app in-process (ASGI) instead of through a socket: no start-up race with the listener,
    and on shutdown its last statistics still reach the database after the listener closed.
    """
    from neonrain.worker.manager import Worker

    worker = Worker.from_settings(
        state.settings,
        backend_url="http://neonrain.internal",
        api_key=state.internal_api_key,
        backend_transport=httpx.ASGITransport(app=state.asgi_app),
    )
    await worker.start()
    return worker.stop


async def wake_long_polls_on_exit(state: AppState) -> Stop:
    """On SIGINT/SIGTERM, long-polling workers get their answer at once instead of holding up
    the graceful shutdown (the server's own handler still runs)."""
    if threading.current_thread() is not threading.main_thread():
        return _nothing_to_stop
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(state.notifier.close)
        chained = previous[signal.Signals(sig)]
        if callable(chained):
            chained(sig, frame)

    for sig in previous:
        signal.signal(sig, handle)

    async def stop() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return stop


async def freeze_startup_objects(_state: AppState) -> Stop:
    """The last background service (see :func:`neonrain.process.freeze_startup_objects`)."""
    from neonrain.process import freeze_startup_objects as freeze

    freeze()
    return _nothing_to_stop
