"""What the running app shares between requests: settings, database, keys, limiters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from neonrain.accounts.clerk import ClerkVerifier
from neonrain.accounts.ratelimit import SlidingWindowLimiter
from neonrain.config import Settings
from neonrain.crypto import TokenCipher
from neonrain.db.changes import ConfigChangeNotifier


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cipher: TokenCipher
    notifier: ConfigChangeNotifier
    internal_api_key: str
    clerk: ClerkVerifier | None = None
    login_failures_by_email: SlidingWindowLimiter = field(
        default_factory=lambda: SlidingWindowLimiter(limit=10, window_seconds=15 * 60)
    )
    login_failures_by_ip: SlidingWindowLimiter = field(
        default_factory=lambda: SlidingWindowLimiter(limit=10, window_seconds=15 * 60)
    )
    # Room for domain services started by the lifespan (worker, scraper, chat hub, …).
    services: dict[str, Any] = field(default_factory=dict)
    # The ASGI app itself, for in-process clients of its own API (the embedded worker).
    asgi_app: Any = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.neonrain
    return state


def get_ws_state(websocket: WebSocket) -> AppState:
    state: AppState = websocket.app.state.neonrain
    return state


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_state(request).sessionmaker() as session:
        yield session


State = Annotated[AppState, Depends(get_state)]
Db = Annotated[AsyncSession, Depends(get_db)]
