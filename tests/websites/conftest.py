"""Fixtures for the website tests: a local site on 127.0.0.1, a connection guard, seeded rows.

No test here sends traffic anywhere but 127.0.0.1: other addresses are faked through the
fetcher's injected resolver, and the ``connections`` guard makes any connection attempt to a
non-loopback address fail loudly (and records every attempt, so tests can assert "no connection").
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from neonrain.accounts.models import User
from neonrain.app import build_state
from neonrain.config import Settings
from neonrain.db.base import utcnow
from neonrain.servers.models import Server, UserServerConfig
from neonrain.state import AppState
from neonrain.websites.fetch import AddressPolicy, Fetcher, FetchLimits, IPAddress
from neonrain.websites.models import ServerWebsite, WebsiteScrape
from neonrain.websites.scraper import Scraper, ScraperOptions
from tests.conftest import make_settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- a local web site -----------------------------------------------------------------------------


@dataclass
class Site:
    """An aiohttp server on 127.0.0.1 that records requests and how many ran at once."""

    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path)
    active: int = 0
    max_active: int = 0
    active_by_host: Counter[str] = field(default_factory=Counter)
    max_by_host: Counter[str] = field(default_factory=Counter)
    routes: dict[str, Handler] = field(default_factory=dict)
    delay: float = 0.0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for _host, path in self.requests]

    async def first_request(self, timeout: float = 30.0) -> None:
        """Wait until the site has been asked for something (a scraper is fetching)."""
        async with asyncio.timeout(timeout):
            while not self.requests:
                await asyncio.sleep(0.01)

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def html(self, path: str, body: str, *, content_type: str = "text/html") -> None:
        async def handler(_request: web.Request) -> web.StreamResponse:
            return web.Response(text=body, content_type=content_type)

        self.route(path, handler)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.headers.get("Host", "").split(":")[0]
        self.requests.append((request.headers.get("Host", ""), request.path_qs))
        self.active += 1
        self.active_by_host[host] += 1
        self.max_active = max(self.max_active, self.active)
        self.max_by_host[host] = max(self.max_by_host[host], self.active_by_host[host])
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            handler = self.routes.get(request.path)
            if handler is None:
                for prefix, candidate in self.routes.items():
                    if prefix.endswith("*") and request.path.startswith(prefix[:-1]):
                        handler = candidate
                        break
            if handler is None:
                return web.Response(status=404, text="no such page")
            return await handler(request)
        finally:
            self.active -= 1
            self.active_by_host[host] -= 1


async def start_site(ssl_context: Any = None) -> tuple[Site, web.AppRunner]:
    site = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site._dispatch)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await tcp.start()
    site.port = runner.addresses[0][1]
    return site, runner


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    server, runner = await start_site()
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


@dataclass
class Listener:
    """A bare TCP listener on 127.0.0.1 that only counts the connections it accepts."""

    port: int
    accepted: int = 0


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    counter = Listener(port=0)

    async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter.accepted += 1
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    counter.port = server.sockets[0].getsockname()[1]
    try:
        yield counter
    finally:
        server.close()
        await server.wait_closed()


# -- the connection guard -------------------------------------------------------------------------


@dataclass
class Connections:
    attempts: list[tuple[str, int]] = field(default_factory=list)

    def to_port(self, port: int) -> list[tuple[str, int]]:
        return [attempt for attempt in self.attempts if attempt[1] == port]

    def non_loopback(self) -> list[tuple[str, int]]:
        return [a for a in self.attempts if a[0] not in ("127.0.0.1", "localhost")]


@pytest.fixture
async def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    """Records every outgoing TCP connection of the test's event loop; refuses non-loopback."""
    loop = asyncio.get_running_loop()
    original = loop.create_connection
    record = Connections()

    async def guarded(protocol_factory: Any, host: Any = None, port: Any = None, **kw: Any) -> Any:
        record.attempts.append((str(host), int(port or 0)))
        if str(host) not in ("127.0.0.1", "localhost"):
            raise OSError(f"test guard: connection to {host}:{port} is not allowed")
        return await original(protocol_factory, host, port, **kw)

    monkeypatch.setattr(loop, "create_connection", guarded)
    return record


# -- resolvers, policies, clocks ------------------------------------------------------------------


class FakeResolver:
    """Answers from a table; unknown names fail like DNS does. Counts lookups."""

    def __init__(self, table: Mapping[str, Sequence[str]] | None = None) -> None:
        self.table = dict(table or {})
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


class AllowHosts(AddressPolicy):
    """The production policy, plus an allow rule for named hosts (to pose as public sites)."""

    def __init__(self, *hosts: str) -> None:
        super().__init__(allow_private=False)
        self.hosts = set(hosts)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        if host in self.hosts:
            return None
        return super().refusal(host, address)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


# -- database -------------------------------------------------------------------------------------


@pytest.fixture
def scraper_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, NEONRAIN_ALLOW_PRIVATE_URLS=True)


@pytest.fixture
async def state(scraper_settings: Settings) -> AsyncIterator[AppState]:
    app_state = build_state(scraper_settings)
    try:
        yield app_state
    finally:
        await app_state.engine.dispose()


@dataclass
class Seed:
    state: AppState
    user_id: str = ""
    config_id: str = ""

    async def setup(self) -> None:
        async with self.state.sessionmaker() as session, session.begin():
            user = User(email="owner@example.com", password_hash="x")
            server = Server(guild_id="1234", guild_name="Guild")
            session.add_all([user, server])
            await session.flush()
            config = UserServerConfig(user_id=user.id, server_id=server.id)
            session.add(config)
            await session.flush()
            self.user_id, self.config_id = user.id, config.id

    async def website(self, url: str, **values: Any) -> str:
        async with self.state.sessionmaker() as session, session.begin():
            website = ServerWebsite(user_server_config_id=self.config_id, url=url, **values)
            session.add(website)
            await session.flush()
            return website.id

    async def get(self, website_id: str) -> ServerWebsite:
        async with self.state.sessionmaker() as session:
            website = await session.get(ServerWebsite, website_id)
            assert website is not None
            return website

    async def scrapes(self, website_id: str) -> list[WebsiteScrape]:
        """Newest first."""
        async with self.state.sessionmaker() as session:
            rows = await session.scalars(
                select(WebsiteScrape)
                .where(WebsiteScrape.website_id == website_id)
                .order_by(WebsiteScrape.scraped_at.desc())
            )
            return list(rows)

    async def queue(self, website_id: str) -> None:
        """What the API's manual rescrape does."""
        async with self.state.sessionmaker() as session, session.begin():
            website = await session.get(ServerWebsite, website_id)
            assert website is not None
            website.scrape_status = "queued"

    async def generation(self) -> int:
        async with self.state.sessionmaker() as session:
            value = await session.scalar(
                select(User.config_generation).where(User.id == self.user_id)
            )
            return int(value or 0)


@pytest.fixture
async def seed(state: AppState) -> Seed:
    seeded = Seed(state)
    await seeded.setup()
    return seeded


def make_scraper(
    state: AppState,
    *,
    fetcher: Fetcher | None = None,
    clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> Scraper:
    return Scraper(
        state.sessionmaker,
        fetcher or Fetcher(allow_private=True),
        options=ScraperOptions(**options),
        clock=clock or utcnow,
    )


@pytest.fixture
def fast_limits() -> Iterator[FetchLimits]:
    yield FetchLimits(timeout=3.0, dns_timeout=1.0)
