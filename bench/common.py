"""What every benchmark shares: the machine it ran on, a throwaway PostgreSQL database, bulk
seeding of accounts, and figures (percentiles, SQL query counts) printed the same way.

Benchmarks run from the repository root, e.g. ``.venv/bin/python -m bench.tokens``; they need
the PostgreSQL server of the tests (``NEONRAIN_TEST_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres``) and create and drop their own database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, insert, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from neonrain.accounts.models import User
from neonrain.config import Settings
from neonrain.crypto import TokenCipher
from neonrain.db.base import new_id, utcnow
from neonrain.db.changes import ConfigState
from neonrain.db.migrate import upgrade_database
from neonrain.servers.models import Server, UserServerConfig
from neonrain.websites.models import ServerWebsite, WebsiteScrape
from tests import pg

if TYPE_CHECKING:
    from neonrain.worker.manager import Worker
    from tests.fakes.fake_discord import FakeDiscord
    from tests.fakes.fake_huma import FakeHuma
    from tests.webapp import WebApp

SECRET_KEY = "bench-secret-key-not-for-production"
INTERNAL_KEY = "bench-internal-api-key"
HUMA_KEY = "bench-huma-key"


# ------------------------------------------------------------------------------ the machine


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


async def database_version(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            version = (await connection.execute(text("SHOW server_version"))).scalar_one()
    finally:
        await engine.dispose()
    return f"PostgreSQL {version}"


def print_header(title: str, database: str, parameters: dict[str, Any]) -> None:
    """The benchmark's name, the machine and the parameters, before any figure."""
    print(f"# {title}")
    print(f"machine:    {os.cpu_count()} cores, {cpu_model()}, {platform.system()}")
    print(f"python:     {sys.version.split()[0]} ({platform.python_implementation()})")
    print(f"database:   {database}")
    for name, value in parameters.items():
        print(f"{name + ':':<11} {value}")
    print()


def print_figure(name: str, value: str, target: str = "") -> None:
    line = f"  {name:<44} {value:>22}"
    print(f"{line}   (target {target})" if target else line)


# ------------------------------------------------------------------------------ figures


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Latencies:
    """A sample of durations in milliseconds."""

    values: list[float]

    @property
    def p50(self) -> float:
        return percentile(self.values, 0.50)

    @property
    def p95(self) -> float:
        return percentile(self.values, 0.95)

    @property
    def p99(self) -> float:
        return percentile(self.values, 0.99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def describe(self) -> str:
        return (
            f"p50 {self.p50:.2f} ms, p95 {self.p95:.2f} ms, p99 {self.p99:.2f} ms, "
            f"max {self.max:.2f} ms (n={len(self.values)})"
        )


@dataclass
class QueryCounter:
    """Counts SQL statements sent through an engine while ``counting`` is open."""

    statements: list[str] = field(default_factory=list)
    _active: bool = False

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self._active:
            self.statements.append(statement)

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.statements = []
        self._active = True
        try:
            yield self.statements
        finally:
            self._active = False


def counter_for(engine: AsyncEngine | Engine) -> QueryCounter:
    counter = QueryCounter()
    if isinstance(engine, AsyncEngine):
        counter.attach(engine)
    else:
        event.listen(engine, "before_cursor_execute", counter._record)
    return counter


# ------------------------------------------------------------------------------ database


@contextlib.asynccontextmanager
async def bench_database(prefix: str = "neonrain_bench") -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    ok, reason = pg.postgres_available()
    if not ok:
        raise SystemExit(f"this benchmark needs PostgreSQL: {reason}")
    async with pg.throwaway_database(prefix) as name:
        url = pg.sqlalchemy_url(name)
        await upgrade_database(url, TokenCipher(SECRET_KEY))
        yield url


def bench_settings(database_url: str, **env: str) -> Settings:
    """Settings for a benchmark's web app: its database, fixed keys, quiet logs."""
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "NEONRAIN_SECRET_KEY": SECRET_KEY,
        "INTERNAL_API_KEY": INTERNAL_KEY,
        "NEONRAIN_LOG_LEVEL": "WARNING",
        **env,
    }
    return Settings(**values)


def settings_on_fakes(database_url: str, discord: FakeDiscord, huma: FakeHuma) -> Settings:
    """Settings for a web app whose Discord and HUMA are the local fakes."""
    return bench_settings(
        database_url,
        DISCORD_API_URL=discord.api_url,
        HUMA_API_URL=huma.url,
        HUMA_API_KEY=HUMA_KEY,
    )


def worker_on_fakes(web: WebApp, discord: FakeDiscord, huma: FakeHuma, **options: Any) -> Worker:
    """The real worker, reading its configuration from ``web`` and talking to the fakes."""
    from neonrain.worker.manager import Worker

    return Worker(
        **{
            "backend_url": web.url,
            "api_key": INTERNAL_KEY,
            "huma_api_url": huma.url,
            "huma_api_key": HUMA_KEY,
            "typing_wpm": web.settings.typing_wpm,
            "discord_api_url": discord.api_url,
            "discord_gateway_url": discord.gateway_url,
            **options,
        }
    )


async def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.05
) -> None:
    """Waits until ``condition()`` holds; a benchmark that cannot get there stops with ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class SeededAccount:
    user_id: str
    bot_token: str
    config_ids: list[str]
    guild_ids: list[str]


async def seed_accounts(
    database_url: str,
    *,
    users: int,
    servers_per_user: int,
    websites_per_server: int = 0,
    markdown_bytes: int = 0,
    scrapes_per_website: int = 1,
    text_bytes: int = 200,
    bot_token: str | None = None,
) -> list[SeededAccount]:
    """Accounts with a connected bot and active server configurations, inserted in bulk.

    Every website gets ``scrapes_per_website`` successful scrapes (the newest is the one the
    worker receives) of ``markdown_bytes`` of Markdown each. ``bot_token`` gives every account
    the same bot token (default: one token per account).
    """
    cipher = TokenCipher(SECRET_KEY)
    now = utcnow()
    filler = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 400)[:text_bytes]
    markdown = ("# Heading\n\nSome *Markdown* text of a scraped page. " * 5000)[:markdown_bytes]
    accounts: list[SeededAccount] = []
    user_rows: list[dict[str, Any]] = []
    server_rows: list[dict[str, Any]] = []
    config_rows: list[dict[str, Any]] = []
    website_rows: list[dict[str, Any]] = []
    scrape_rows: list[dict[str, Any]] = []
    for u in range(users):
        user_id = new_id()
        token = bot_token or f"bench-bot-token-{u:06d}"
        user_rows.append(
            {
                "id": user_id,
                "email": f"bench{u:06d}@example.com",
                "password_hash": "not-a-real-hash",
                "discord_token": cipher.encrypt(token),
                "discord_token_status": "valid",
                "discord_bot_id": str(900_000_000_000_000_000 + u),
                "discord_bot_username": f"BenchBot{u}",
                "config_generation": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        config_ids: list[str] = []
        guild_ids: list[str] = []
        for s in range(servers_per_user):
            server_id, config_id = new_id(), new_id()
            guild_id = str(800_000_000_000_000_000 + u * servers_per_user + s)
            server_rows.append(
                {
                    "id": server_id,
                    "guild_id": guild_id,
                    "guild_name": f"Bench guild {u}-{s}",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            config_rows.append(
                {
                    "id": config_id,
                    "user_id": user_id,
                    "server_id": server_id,
                    "bot_name": f"Bot {u}-{s}",
                    "personality": filler,
                    "rules": filler,
                    "information": filler,
                    "bot_active": True,
                    "created_at": now + timedelta(microseconds=s),
                    "updated_at": now,
                }
            )
            config_ids.append(config_id)
            guild_ids.append(guild_id)
            for w in range(websites_per_server):
                website_id = new_id()
                website_rows.append(
                    {
                        "id": website_id,
                        "user_server_config_id": config_id,
                        "url": f"https://example.com/{u}/{s}/{w}",
                        "name": f"Page {w}",
                        "scrape_status": "idle",
                        "next_scrape_at": now + timedelta(days=1),
                        "created_at": now + timedelta(microseconds=w),
                        "updated_at": now,
                    }
                )
                for k in range(scrapes_per_website):
                    scrape_rows.append(
                        {
                            "id": new_id(),
                            "website_id": website_id,
                            "markdown_content": markdown,
                            "content_length": len(markdown),
                            "status_code": 200,
                            "scraped_at": now - timedelta(hours=k),
                        }
                    )
        accounts.append(SeededAccount(user_id, token, config_ids, guild_ids))

    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            for table, rows in (
                (User, user_rows),
                (Server, server_rows),
                (UserServerConfig, config_rows),
                (ServerWebsite, website_rows),
                (WebsiteScrape, scrape_rows),
            ):
                for start in range(0, len(rows), 500):
                    await connection.execute(insert(table), rows[start : start + 500])
            await connection.execute(update(ConfigState).values(generation=1))
        async with engine.connect() as connection:
            await connection.execute(text("COMMIT"))
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return accounts
