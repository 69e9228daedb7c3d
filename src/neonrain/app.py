"""The FastAPI application factory and its lifespan (database, keys, background services)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI
from starlette.routing import Route

from neonrain.accounts.clerk import ClerkVerifier
from neonrain.background import BackgroundService, Stop
from neonrain.chat.hub import ChatAgentSettings, ChatHub
from neonrain.config import Settings, get_settings
from neonrain.crypto import TokenCipher
from neonrain.db.changes import ConfigChangeNotifier, PostgresChangeListener, notifier_info
from neonrain.db.engine import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    read_only_engine,
)
from neonrain.discord_link.client import DiscordRestClient
from neonrain.engines.service import InstallEngines
from neonrain.errors import install_error_handlers
from neonrain.huma import HumaRestClient
from neonrain.middleware import BodySizeLimit, HeaderLimits, TrustedProxyHeaders
from neonrain.openai_engine import new_http_client
from neonrain.openapi import install_openapi
from neonrain.state import AppState
from neonrain.web.headers import SecurityHeaders

log = logging.getLogger(__name__)


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
        read_engine=read_only_engine(engine),
        cipher=TokenCipher(settings.resolved_secret_key()),
        notifier=notifier,
        internal_api_key=internal_api_key or settings.internal_api_key or secrets.token_urlsafe(32),
        install_engines=InstallEngines.from_settings(settings),
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
        open_clients(state)
        stops: list[Stop] = []
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
            await close_clients(state)
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
    from neonrain.web.pages import not_found_page

    install_error_handlers(app, not_found_page=not_found_page)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(TrustedProxyHeaders, trusted=settings.forwarded_allow_ips)
    app.add_middleware(HeaderLimits)
    app.add_middleware(SecurityHeaders)  # outermost: the 413 and 431 answers get the headers too
    _include_routers(app)
    _serve_polled_reads_first(app)
    install_openapi(app)
    return app


def open_clients(state: AppState) -> None:
    """The long-lived clients requests share, for the app's lifetime."""
    settings = state.settings
    state.discord_rest = DiscordRestClient(settings.discord_api_url)
    state.model_http = new_http_client()
    state.huma_rest = (
        HumaRestClient(settings.huma_api_url, settings.huma_api_key)
        if settings.huma_api_key
        else None
    )
    state.chat_hub = ChatHub(
        state.sessionmaker,
        ChatAgentSettings(
            huma_api_url=settings.huma_api_url,
            huma_api_key=settings.huma_api_key,
            typing_wpm=settings.typing_wpm,
            engines=state.install_engines,
        ),
        state.huma_rest,
        cipher=state.cipher,
        model_http=state.model_http,
    )


async def close_clients(state: AppState) -> None:
    """Open chats release their agents, then the clients close."""
    try:
        await state.chat_hub.close()
    except Exception:
        log.exception("the chat hub failed to close cleanly")
    await state.discord_rest.aclose()
    await state.model_http.aclose()
    if state.huma_rest is not None:
        await state.huma_rest.aclose()


def _include_routers(app: FastAPI) -> None:
    from neonrain.accounts.routes import router as accounts_router
    from neonrain.chat.routes import router as chat_router
    from neonrain.chat.ws import router as chat_ws_router
    from neonrain.discord_link.routes import router as discord_router
    from neonrain.engines.routes import router as engines_router
    from neonrain.health import router as health_router
    from neonrain.internal_api.routes import router as internal_router
    from neonrain.servers.routes import router as servers_router
    from neonrain.web.chat_page import router as chat_pages_router
    from neonrain.web.forms import router as forms_router
    from neonrain.web.pages import router as pages_router
    from neonrain.websites.routes import router as websites_router

    app.include_router(health_router)
    app.include_router(accounts_router)
    app.include_router(discord_router)
    app.include_router(servers_router)
    app.include_router(websites_router)
    app.include_router(engines_router)
    app.include_router(internal_router)
    app.include_router(pages_router)
    app.include_router(forms_router)
    app.include_router(chat_router)
    app.include_router(chat_ws_router)
    app.include_router(chat_pages_router)
    from neonrain.web.static import mount_static

    mount_static(app)


def _serve_polled_reads_first(app: FastAPI) -> None:
    """The dashboard's polled reads (``dashboard_reads``) as plain Starlette routes ahead of the
    routers. They need none of FastAPI's per-request machinery (dependency solving, response
    model handling, the nested routers of ``include_router`` tried one after the other), which cost
    about a sixth of their CPU. Their FastAPI routes stay, with the same endpoints, for the OpenAPI
    document; errors still go through the app's handlers and middleware. Only GET, as declared
    (HEAD still answers 405)."""
    from neonrain.discord_link.routes import discord_status
    from neonrain.servers.routes import list_servers

    fast = [Route("/api/servers", list_servers), Route("/api/discord/status", discord_status)]
    for route in fast:
        route.methods = {"GET"}
    app.router.routes[0:0] = fast


def _asyncpg_dsn(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def app_state(app: FastAPI) -> AppState:
    state: AppState = app.state.neonrain
    return state
