"""The FastAPI application factory and its lifespan (database, keys, background services)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from fastapi import FastAPI

from neonrain.accounts.clerk import ClerkVerifier
from neonrain.config import Settings, get_settings
from neonrain.crypto import TokenCipher
from neonrain.db.changes import ConfigChangeNotifier, PostgresChangeListener, notifier_info
from neonrain.db.engine import create_engine, create_read_sessionmaker, create_sessionmaker
from neonrain.errors import install_error_handlers
from neonrain.middleware import BodySizeLimit, HeaderLimits, TrustedProxyHeaders
from neonrain.openapi import install_openapi
from neonrain.state import AppState

log = logging.getLogger(__name__)

# A background service is started with the app's state once the database is ready and returns
# the coroutine function that stops it.
BackgroundService = Callable[[AppState], Awaitable[Callable[[], Awaitable[None]]]]


def build_state(settings: Settings, internal_api_key: str | None = None) -> AppState:
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    notifier = ConfigChangeNotifier()
    return AppState(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine, info=notifier_info(notifier)),
        read_sessionmaker=create_read_sessionmaker(engine, info=notifier_info(notifier)),
        # Reads take turns for at most two thirds of the pool (the rest stays for writes): when
        # requests queue in the pool itself, newcomers can overtake a waiter again and again,
        # and under load a few requests waited seconds.
        read_slots=asyncio.Semaphore(max(1, settings.database_pool_size * 2 // 3))
        if engine.dialect.name == "postgresql"
        else None,
        cipher=TokenCipher(settings.resolved_secret_key()),
        notifier=notifier,
        internal_api_key=internal_api_key or settings.internal_api_key or secrets.token_urlsafe(32),
        clerk=ClerkVerifier(settings.clerk_jwks_url, settings.clerk_issuer)
        if settings.clerk_jwks_url
        else None,
    )


def create_app(
    settings: Settings | None = None,
    *,
    internal_api_key: str | None = None,
    background: Sequence[BackgroundService] = (),
) -> FastAPI:
    """The web app. ``background`` services (worker, scraper) run inside its lifespan."""
    settings = settings or get_settings()
    state = build_state(settings, internal_api_key)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        listener: PostgresChangeListener | None = None
        if state.engine.dialect.name == "postgresql":
            listener = PostgresChangeListener(_asyncpg_dsn(settings.database_url), state.notifier)
            listener.start()
        stops: list[Callable[[], Awaitable[None]]] = []
        try:
            for start in background:
                stops.append(await start(state))
            yield
        finally:
            for stop in reversed(stops):
                try:
                    await stop()
                except Exception:
                    log.exception("a background service failed to stop cleanly")
            if listener is not None:
                await listener.stop()
            await state.engine.dispose()

    app = FastAPI(
        title="Neonrain",
        version="0.1.0",
        summary="AI community members for Discord servers, one configuration per server.",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.neonrain = state
    state.asgi_app = app
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(TrustedProxyHeaders, trusted=settings.forwarded_allow_ips)
    app.add_middleware(HeaderLimits)
    _include_routers(app)
    install_openapi(app)
    return app


def _include_routers(app: FastAPI) -> None:
    from neonrain.accounts.routes import router as accounts_router
    from neonrain.chat.pages import router as chat_pages_router
    from neonrain.chat.routes import router as chat_router
    from neonrain.chat.ws import router as chat_ws_router
    from neonrain.discord_link.routes import router as discord_router
    from neonrain.health import router as health_router
    from neonrain.internal_api.routes import router as internal_router
    from neonrain.servers.routes import router as servers_router
    from neonrain.web.pages import router as pages_router
    from neonrain.websites.routes import router as websites_router

    app.include_router(health_router)
    app.include_router(accounts_router)
    app.include_router(discord_router)
    app.include_router(servers_router)
    app.include_router(websites_router)
    app.include_router(internal_router)
    app.include_router(pages_router)
    app.include_router(chat_router)
    app.include_router(chat_ws_router)
    app.include_router(chat_pages_router)
    from neonrain.web.static import mount_static

    mount_static(app)


def _asyncpg_dsn(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def app_state(app: FastAPI) -> AppState:
    state: AppState = app.state.neonrain
    return state
