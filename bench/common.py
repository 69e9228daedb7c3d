"""What every benchmark shares: the machine it ran on, a throwaway PostgreSQL database, bulk
seeding of accounts, and figures (percentiles, SQL query counts) printed the same way.

Benchmarks run from the repository root, e.g. ``.venv/bin/python -m bench.tokens``; they need
the PostgreSQL server of the tests (``NEONRAIN_TEST_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres``) and create and drop their own database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import event, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from neonrain.accounts import service as accounts_service
from neonrain.accounts.models import User
from neonrain.config import Settings
from neonrain.crypto import TokenCipher
from neonrain.db.base import new_id, utcnow
from neonrain.db.changes import ConfigState
from neonrain.db.engine import create_engine, create_sessionmaker
from neonrain.db.migrate import upgrade_database
from neonrain.servers.models import Server, UserServerConfig
from neonrain.websites.models import ServerWebsite, WebsiteScrape
from tests import pg
from tests.webapp import free_port

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


# ------------------------------------------------------------------------------ dashboard load

#: The data of the dashboard benchmarks (``bench.dashboard_load``, ``bench.baseline``).
DASHBOARD_USERS = 1_000
DASHBOARD_SERVERS_PER_USER = 3
DASHBOARD_SIGNED_IN = 50
DASHBOARD_PATHS = ("/api/servers", "/api/discord/status")
WRK_THREADS = 2

_WRK_SCRIPT = """
local tokens = {%(tokens)s}
local paths = {%(paths)s}
local counter = 0

function setup(thread)
  thread:set("offset", math.random(0, #tokens - 1))
end

request = function()
  counter = counter + 1
  local token = tokens[(counter + offset) %% #tokens + 1]
  local path = paths[counter %% 2 + 1]
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("WRK_RESULT"), "w")
  out:write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d, ' ..
    '"status": %%d}',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status))
  out:close()
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def seed_dashboard(database_url: str) -> list[str]:
    """The dashboard benchmarks' data: 1,000 accounts with a bot and 3 servers (one website
    each); returns the Bearer session tokens of the 50 signed in."""
    accounts = await seed_accounts(
        database_url,
        users=DASHBOARD_USERS,
        servers_per_user=DASHBOARD_SERVERS_PER_USER,
        websites_per_server=1,
        markdown_bytes=2_000,
    )
    engine = create_engine(database_url)
    tokens: list[str] = []
    try:
        async with create_sessionmaker(engine)() as db:
            for account in accounts[:DASHBOARD_SIGNED_IN]:
                user = await db.get(User, account.user_id)
                assert user is not None
                tokens.append(await accounts_service.create_session(db, user, "bench"))
    finally:
        await engine.dispose()
    return tokens


async def report_workers_online(base_url: str, database_url: str) -> None:
    """The worker's live state, through the internal API, so the status has a bot online."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            rows = (await db.execute(select(User.id).where(User.discord_token.is_not(None)))).all()
    finally:
        await engine.dispose()
    reports = [
        {"userId": user_id, "state": "online", "detail": "", "guildIds": []} for (user_id,) in rows
    ]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post(
            "/api/discord/worker-status",
            json={"tokens": reports},
            headers={"X-API-Key": INTERNAL_KEY},
        )
        response.raise_for_status()


# ------------------------------------------------------------------------------ the server


@dataclass(frozen=True)
class WebServer:
    base: str
    pid: int


def server_env(database_url: str) -> dict[str, str]:
    """The environment of a server process started by a benchmark."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "NEONRAIN_SECRET_KEY": SECRET_KEY,
        "INTERNAL_API_KEY": INTERNAL_KEY,
        "NEONRAIN_LOG_LEVEL": "INFO",
    }


@contextlib.contextmanager
def web_server(
    database_url: str, workers: int, log_path: Path, *, source: Path | None = None
) -> Iterator[WebServer]:
    """``neonrain web`` with ``workers`` processes, once it answers. ``source`` runs the product
    from another checkout's ``src`` directory (e.g. an older commit, to measure "before")."""
    port = free_port()
    env = server_env(database_url)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    command = [sys.executable, "-m", "neonrain", "web", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-scraper", "--workers", str(workers)]
    with server_process(command, env, port, log_path, "neonrain web") as server:
        yield server


@contextlib.contextmanager
def server_process(
    command: list[str], env: dict[str, str], port: int, log_path: Path, name: str
) -> Iterator[WebServer]:
    """``command`` (an HTTP server on ``port`` answering ``/healthz``) as a process, once it
    answers; stopped with SIGTERM afterwards."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited:\n{log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not come up within 60 s")
                time.sleep(0.2)
            yield WebServer(base, process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ------------------------------------------------------------------------------ CPU accounting


def _processes() -> dict[int, tuple[int, str, float]]:
    """Every process: parent pid, command name, CPU seconds used (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            raw = (entry / "stat").read_text()
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            found[int(entry.name)] = (
                int(fields[1]),
                name,
                (int(fields[11]) + int(fields[12])) / tick,
            )
    return found


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by the server's processes (each) and by PostgreSQL."""

    server: dict[int, float]
    postgres: float
    children: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        processes = _processes()
        server = {
            pid: cpu
            for pid, (parent, _name, cpu) in processes.items()
            if server_pid in (pid, parent)
        }
        postgres = sum(cpu for _parent, name, cpu in processes.values() if name == "postgres")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(server, postgres, usage.ru_utime + usage.ru_stime)


def server_cpu(server_pid: int) -> float:
    """CPU seconds used so far by a server process and its children (``/proc/<pid>/stat``)."""
    return sum(CpuSample.take(server_pid).server.values())


def run_wrk(
    base: str,
    tokens: list[str],
    connections: int,
    seconds: int,
    paths: Sequence[str] = DASHBOARD_PATHS,
) -> LoadResult:
    """``wrk`` against ``base``, each request on the next of ``paths`` with the next Bearer
    token."""
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "dashboard.lua"
        result = Path(directory) / "result.json"
        script.write_text(
            _WRK_SCRIPT
            % {
                "tokens": ", ".join(json.dumps(t) for t in tokens),
                "paths": ", ".join(json.dumps(p) for p in paths),
            }
        )
        completed = subprocess.run(
            [
                "wrk",
                f"-t{min(WRK_THREADS, connections)}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base + paths[0],
            ],
            env={**os.environ, "WRK_RESULT": str(result)},
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not result.exists():
            raise SystemExit(f"wrk failed:\n{completed.stdout}\n{completed.stderr}")
        data = json.loads(result.read_text())
    errors = sum(data[k] for k in ("connect", "read", "write", "timeout", "status"))
    return LoadResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p90_ms=data["p90_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        max_ms=data["max_us"] / 1e3,
        errors=errors,
    )
