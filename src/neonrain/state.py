"""What the running app shares between requests: settings, database, keys, limiters, and the
long-lived clients the lifespan creates and closes (chat hub, Discord and HUMA REST clients, the
HTTP client of model calls, scraper)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, WebSocket
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from neonrain.accounts.clerk import ClerkVerifier
from neonrain.accounts.ratelimit import SlidingWindowLimiter
from neonrain.config import Settings
from neonrain.crypto import TokenCipher
from neonrain.db.changes import ConfigChangeNotifier
from neonrain.discord_link.channels import ChannelCache

if TYPE_CHECKING:
    import httpx2

    from neonrain.chat.hub import ChatHub
    from neonrain.discord_link.client import DiscordRestClient
    from neonrain.engines.service import InstallEngines
    from neonrain.huma import HumaRestClient
    from neonrain.websites.scraper import Scraper


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    read_slots: asyncio.Semaphore | None
    #: ``engine`` for reads without the ORM (``db.engine.read_only_engine``).
    read_engine: AsyncEngine
    cipher: TokenCipher
    notifier: ConfigChangeNotifier
    internal_api_key: str
    #: The engines the install offers every account (HUMA key, the operator's OpenAI endpoint).
    install_engines: InstallEngines
    clerk: ClerkVerifier | None = None
    login_failures_by_email: SlidingWindowLimiter = field(
        default_factory=lambda: SlidingWindowLimiter(limit=10, window_seconds=15 * 60)
    )
    login_failures_by_ip: SlidingWindowLimiter = field(
        default_factory=lambda: SlidingWindowLimiter(limit=10, window_seconds=15 * 60)
    )
    registrations_by_ip: SlidingWindowLimiter = field(
        default_factory=lambda: SlidingWindowLimiter(limit=10, window_seconds=60 * 60)
    )
    #: Guild channel lists as the bot sees them, per (token, guild), for up to a minute.
    channel_cache: ChannelCache = field(default_factory=ChannelCache)
    # The ASGI app itself, for in-process clients of its own API (the embedded worker).
    asgi_app: Any = None
    # Created by the app's lifespan (``app.create_app``), closed when it ends.
    chat_hub: ChatHub = field(init=False)
    discord_rest: DiscordRestClient = field(init=False)
    #: One HTTP client for every web-chat agent (``None`` without ``HUMA_API_KEY``).
    huma_rest: HumaRestClient | None = field(init=False, default=None)
    #: One connection pool for the app's calls to OpenAI-compatible models (web chat, tests).
    model_http: httpx2.AsyncClient = field(init=False)
    #: The website scraper, when this process runs it.
    scraper: Scraper | None = field(init=False, default=None)


async def get_state(request: Request) -> AppState:
    # ``async``: FastAPI runs plain-function dependencies in a thread, a hop per request.
    state: AppState = request.app.state.neonrain
    return state


def get_ws_state(websocket: WebSocket) -> AppState:
    state: AppState = websocket.app.state.neonrain
    return state


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    state: AppState = request.app.state.neonrain
    async with state.sessionmaker() as session:
        yield session


async def get_read_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a request that only reads (see ``create_read_sessionmaker``), taken in
    turn with the other readers (``AppState.read_slots``)."""
    state: AppState = request.app.state.neonrain
    async with read_slot(state), state.read_sessionmaker() as session:
        yield session


@contextlib.asynccontextmanager
async def reading_connection(state: AppState) -> AsyncIterator[AsyncConnection]:
    """A Core connection for a request that only reads, taken in turn with the other readers:
    the hot dashboard reads run their prebuilt statements on it, without an ORM session."""
    async with read_slot(state), state.read_engine.connect() as connection:
        yield connection


def read_slot(state: AppState) -> contextlib.AbstractAsyncContextManager[object]:
    """A turn among the readers (``AppState.read_slots``), if they take turns."""
    return state.read_slots if state.read_slots is not None else contextlib.nullcontext()


State = Annotated[AppState, Depends(get_state)]
Db = Annotated[AsyncSession, Depends(get_db)]
ReadDb = Annotated[AsyncSession, Depends(get_read_db)]
