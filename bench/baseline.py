"""The dashboard's hot reads against a bare baseline: Starlette + asyncpg running the same SQL.

``GET /api/servers`` and ``GET /api/discord/status`` of ``neonrain web --workers 1`` are compared
with a minimal app kept here (:func:`baseline_app`): Starlette routes, an asyncpg pool, the
product's exact statements as SQL text, the same Bearer session lookup (``accounts.service``:
token hash → user and session, expiry, the sliding ``last_seen_at`` write at most every
``SESSION_TOUCH_INTERVAL``). No FastAPI, no dependency injection, no ORM, no middleware. The answers
are built by the product's own pure rules and response models (``readiness``, ``flows.status_out``,
``servers.service.config_out``), so the comparison measures the stack around them, and the bench
checks that both apps answer byte for byte the same before it measures anything.

Both run as separate uvicorn processes on the same seeded PostgreSQL data (1,000 accounts × 3
servers, 50 signed in); ``wrk`` alternates the two paths with the 50 Bearer sessions. Rounds are
interleaved (product, baseline, product, baseline …) at each concurrency, so a noisy machine
slows both alike; what is reported is the ratio product / baseline of requests/s and of the server
process's CPU per request (``/proc/<pid>/stat``), median and range over the rounds.

Run from the repository root::

    .venv/bin/python -m bench.baseline [--rounds N] [--seconds S] [--product-src DIR]

``--product-src`` runs the product from another checkout's ``src`` (an older commit, for a
"before" figure); the baseline stays the one of this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import (
    DASHBOARD_PATHS,
    DASHBOARD_SERVERS_PER_USER,
    DASHBOARD_SIGNED_IN,
    DASHBOARD_USERS,
    WRK_THREADS,
    WebServer,
    bench_database,
    database_version,
    print_header,
    report_workers_online,
    run_wrk,
    seed_dashboard,
    server_cpu,
    server_env,
    server_process,
    web_server,
)
from neonrain import flows, readiness
from neonrain.accounts.service import SESSION_IDLE_LIFETIME, SESSION_TOUCH_INTERVAL
from neonrain.config import get_settings
from neonrain.crypto import sha256_hex
from neonrain.db.base import utcnow
from neonrain.engines.service import InstallEngines
from neonrain.process import freeze_startup_objects
from neonrain.servers.schemas import ServerList
from neonrain.servers.service import ConfigSummary, config_out
from tests.webapp import free_port

CONNECTIONS = (16, 32)
ROUNDS = 5
DURATION_S = 8
WARMUP_S = 3
#: Connections of the baseline's pool: the product's reads share two thirds of its 30.
POOL_SIZE = 20

# ------------------------------------------------------------------------------ the baseline app

#: The product's statements as it sends them (``sqlalchemy`` compiles them to exactly this).
SERVER_LIST_SQL = (
    "SELECT users.id AS user_id, users.discord_token, users.discord_token_status, "
    "users.discord_bot_id, users.discord_bot_username, users.discord_bot_avatar, "
    "worker_reports.state AS report_state, worker_reports.detail AS report_detail, "
    "worker_reports.updated_at AS report_updated_at, worker_reports.reason AS "
    "report_reason, worker_reports.guilds AS report_guilds, worker_reports.engine_state AS "
    "report_engine_state, worker_reports.engine_detail AS report_engine_detail, "
    "engine_credentials.id AS credential_id, engine_credentials.state AS credential_state, "
    "engine_credentials.state_detail AS credential_detail, engine_credentials.updated_at AS"
    " credential_updated_at, sessions.id AS session_id, sessions.expires_at, "
    "sessions.last_seen_at, user_server_configs.id, user_server_configs.server_id, "
    "servers.guild_id, servers.guild_name, servers.guild_icon, "
    "user_server_configs.bot_name, user_server_configs.bot_active, "
    "user_server_configs.personality, user_server_configs.rules, "
    "user_server_configs.information, user_server_configs.channel_mode, "
    "user_server_configs.channel_ids, user_server_configs.reply_mode, "
    "user_server_configs.max_replies_per_hour, "
    "user_server_configs.min_seconds_between_replies, "
    "user_server_configs.messages_sent_count, user_server_configs.messages_received_count, "
    "user_server_configs.last_message_sent_at, "
    "user_server_configs.last_message_received_at, user_server_configs.engine, "
    "user_server_configs.created_at, user_server_configs.updated_at, (SELECT "
    "count(server_websites.id) AS count_1 \nFROM server_websites \nWHERE "
    "server_websites.user_server_config_id = user_server_configs.id) AS website_count \nFROM"
    " sessions JOIN users ON users.id = sessions.user_id LEFT OUTER JOIN engine_credentials"
    " ON engine_credentials.user_id = users.id LEFT OUTER JOIN worker_reports ON "
    "worker_reports.user_id = users.id LEFT OUTER JOIN user_server_configs ON "
    "user_server_configs.user_id = users.id LEFT OUTER JOIN servers ON servers.id = "
    "user_server_configs.server_id \nWHERE sessions.token_hash = $1::VARCHAR ORDER BY "
    "user_server_configs.updated_at DESC, user_server_configs.id"
)
STATUS_SQL = (
    "SELECT users.id AS user_id, users.discord_token, users.discord_token_status, "
    "users.discord_bot_id, users.discord_bot_username, users.discord_bot_avatar, "
    "worker_reports.state AS report_state, worker_reports.detail AS report_detail, "
    "worker_reports.updated_at AS report_updated_at, worker_reports.reason AS "
    "report_reason, worker_reports.guilds AS report_guilds, worker_reports.engine_state AS "
    "report_engine_state, worker_reports.engine_detail AS report_engine_detail, "
    "engine_credentials.id AS credential_id, engine_credentials.state AS credential_state, "
    "engine_credentials.state_detail AS credential_detail, engine_credentials.updated_at AS"
    " credential_updated_at, sessions.id AS session_id, sessions.expires_at, "
    "sessions.last_seen_at, servers.guild_id, servers.guild_name, "
    "user_server_configs.bot_active, user_server_configs.engine, "
    "user_server_configs.messages_sent_count, user_server_configs.messages_received_count "
    "\nFROM sessions JOIN users ON users.id = sessions.user_id LEFT OUTER JOIN "
    "engine_credentials ON engine_credentials.user_id = users.id LEFT OUTER JOIN "
    "worker_reports ON worker_reports.user_id = users.id LEFT OUTER JOIN "
    "user_server_configs ON user_server_configs.user_id = users.id LEFT OUTER JOIN servers "
    "ON servers.id = user_server_configs.server_id \nWHERE sessions.token_hash = $1::VARCHAR"
)
END_SESSION_SQL = "DELETE FROM sessions WHERE sessions.id = $1::VARCHAR"
TOUCH_SESSION_SQL = (
    "UPDATE sessions SET expires_at=$1::TIMESTAMP WITHOUT TIME ZONE, "
    "last_seen_at=$2::TIMESTAMP WITHOUT TIME ZONE, updated_at=$2::TIMESTAMP WITHOUT TIME ZONE "
    "WHERE sessions.id = $3::VARCHAR"
)
UNAUTHENTICATED = Response(
    b'{"error":"Sign in to continue.","code":"UNAUTHENTICATED"}',
    status_code=401,
    media_type="application/json",
)
#: The worker report's columns in both statements, as ``ReportFacts`` names them.
REPORT_COLUMNS = {
    "state": "report_state",
    "detail": "report_detail",
    "updated_at": "report_updated_at",
    "reason": "report_reason",
    "guilds": "report_guilds",
    "engine_state": "report_engine_state",
    "engine_detail": "report_engine_detail",
}


def _row(record: asyncpg.Record) -> Any:
    """A record as an object with attributes, which the product's pure rules read."""
    return SimpleNamespace(**record)


def _aware(value: datetime) -> datetime:
    """A naive UTC timestamp as the product reads it (aware, ``db.base.UTCDateTime``)."""
    return value.replace(tzinfo=UTC)


async def _json_codecs(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _signed_in(
    connection: asyncpg.Connection, request: Request, sql: str
) -> list[asyncpg.Record] | None:
    """The rows of ``sql`` for the request's Bearer session, None without a live session (the
    expiry and the sliding ``last_seen_at`` as the product handles them)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    records: list[asyncpg.Record] = await connection.fetch(sql, sha256_hex(token))
    if not records:
        return None
    first = records[0]
    now = utcnow().replace(tzinfo=None)  # the columns hold naive UTC (``db.base.UTCDateTime``)
    if first["expires_at"] <= now:
        await connection.execute(END_SESSION_SQL, first["session_id"])
        return None
    if now - first["last_seen_at"] >= SESSION_TOUCH_INTERVAL:
        await connection.execute(
            TOUCH_SESSION_SQL, now + SESSION_IDLE_LIFETIME, now, first["session_id"]
        )
    return records


def _user(record: asyncpg.Record) -> Any:
    """The account's columns, as ``discord_link.service.BotAccount`` names them."""
    return SimpleNamespace(**{**record, "id": record["user_id"]})


def _account(record: asyncpg.Record, install: InstallEngines, user: Any) -> readiness.Account:
    """The readiness facts in the columns of both statements."""
    report = credential = None
    if record["report_state"] is not None:
        report = SimpleNamespace(
            **{name: record[column] for name, column in REPORT_COLUMNS.items()}
        )
        report.updated_at = _aware(report.updated_at)
    if record["credential_id"] is not None:
        credential = SimpleNamespace(
            state=record["credential_state"],
            state_detail=record["credential_detail"],
            updated_at=_aware(record["credential_updated_at"]),
        )
    return readiness.account(user, report, credential=credential, install=install)


def baseline_app(dsn: str, install: InstallEngines) -> Starlette:
    """Starlette + asyncpg: the two hot reads and ``/healthz``, nothing else."""
    pool: asyncpg.Pool | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(
            dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, init=_json_codecs
        )
        freeze_startup_objects()
        try:
            yield
        finally:
            await pool.close()

    async def servers(request: Request) -> Response:
        assert pool is not None
        async with pool.acquire() as connection:
            records = await _signed_in(connection, request, SERVER_LIST_SQL)
        if records is None:
            return UNAUTHENTICATED
        account = _account(records[0], install, _user(records[0]))
        configs = [_row(r) for r in records if r["id"] is not None]
        answer = ServerList(
            servers=[
                flows.with_readiness(config_out(c, c, c.website_count), account) for c in configs
            ]
        )
        return Response(answer.model_dump_json(by_alias=True), media_type="application/json")

    async def status(request: Request) -> Response:
        assert pool is not None
        async with pool.acquire() as connection:
            records = await _signed_in(connection, request, STATUS_SQL)
        if records is None:
            return UNAUTHENTICATED
        user = _user(records[0])
        account = _account(records[0], install, user)
        summaries = [
            ConfigSummary(
                r["guild_id"],
                r["guild_name"],
                r["bot_active"],
                "openai" if r["engine"] == "openai" else "huma",
                r["messages_sent_count"],
                r["messages_received_count"],
            )
            for r in records
            if r["guild_id"] is not None
        ]
        ready = sum(readiness.server_readiness(account, s).ready for s in summaries)
        answer = flows.status_out(user, account, summaries, ready)
        return Response(answer.model_dump_json(by_alias=True), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/api/servers", servers),
            Route("/api/discord/status", status),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def serve(port: int) -> None:
    """The baseline app under uvicorn (httptools, no access log), configured from the same
    environment as the product (``DATABASE_URL``)."""
    import uvicorn

    settings = get_settings()
    dsn = make_url(settings.database_url).set(drivername="postgresql")
    app = baseline_app(
        dsn.render_as_string(hide_password=False), InstallEngines.from_settings(settings)
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def baseline_server(database_url: str, log_path: Path) -> Any:
    port = free_port()
    command = [sys.executable, "-m", "bench.baseline", "--serve", str(port)]
    with server_process(command, server_env(database_url), port, log_path, "the baseline") as s:
        yield s


# ------------------------------------------------------------------------------ the comparison


def check_same_sql() -> None:
    """The baseline's SQL is the product's, as SQLAlchemy compiles it for asyncpg; stops
    otherwise (only for the product of this checkout: an older one ran other statements)."""
    from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

    from neonrain.accounts import service as accounts_service
    from neonrain.dashboard_reads import SERVER_LIST, STATUS

    dialect = asyncpg_dialect.dialect()
    pairs = {
        "server list": (SERVER_LIST.signed_in, SERVER_LIST_SQL),
        "status": (STATUS.signed_in, STATUS_SQL),
        "session end": (accounts_service.END_SESSION, END_SESSION_SQL),
        "session touch": (accounts_service.TOUCH_SESSION, TOUCH_SESSION_SQL),
    }
    for name, (statement, sql) in pairs.items():
        if str(statement.compile(dialect=dialect)) != sql:
            raise SystemExit(f"THE {name.upper()} SQL DIFFERS from the product's; update it here.")
    print(f"SQL:        the product's statements, compiled: identical ({len(pairs)} statements)")


async def check_identical(product: str, baseline: str, tokens: Sequence[str]) -> None:
    """Both apps answer both paths with the same status and the same bytes; stops otherwise."""
    async with httpx.AsyncClient(timeout=10) as http:
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"}
            for path in DASHBOARD_PATHS:
                ours = await http.get(product + path, headers=headers)
                bare = await http.get(baseline + path, headers=headers)
                if ours.status_code != 200 or (ours.status_code, ours.content) != (
                    bare.status_code,
                    bare.content,
                ):
                    raise SystemExit(
                        f"THE ANSWERS DIFFER for {path}: the comparison would be meaningless.\n"
                        f"product  {ours.status_code}: {ours.content[:2000]!r}\n"
                        f"baseline {bare.status_code}: {bare.content[:2000]!r}"
                    )
    print(f"answers:    byte-identical ({len(tokens)} sessions × {len(DASHBOARD_PATHS)} paths)")


@dataclass(frozen=True)
class Run:
    rps: float
    cpu_ms: float  # server process CPU per request


def measure(server: WebServer, tokens: list[str], connections: int, seconds: int) -> Run:
    before = server_cpu(server.pid)
    result = run_wrk(server.base, tokens, connections, seconds)
    used = server_cpu(server.pid) - before
    if result.errors:
        raise SystemExit(f"{result.errors} errors of {result.requests} requests at {server.base}")
    return Run(result.rps, used * 1000 / result.requests)


def _spread(values: Sequence[float], fmt: str) -> str:
    median, low, high = (
        format(v, fmt) for v in (statistics.median(values), min(values), max(values))
    )
    return f"{median} ({low}–{high})"


def report(connections: int, runs: list[tuple[Run, Run]]) -> None:
    ours = [p for p, _ in runs]
    bare = [b for _, b in runs]
    rps_ratio = [p.rps / b.rps for p, b in runs]
    cpu_ratio = [p.cpu_ms / b.cpu_ms for p, b in runs]
    print(f"{connections} connections, {len(runs)} rounds — median (range):")
    print(f"  {'product requests/s':<36} {_spread([r.rps for r in ours], ',.0f')}")
    print(f"  {'baseline requests/s':<36} {_spread([r.rps for r in bare], ',.0f')}")
    print(f"  {'product CPU per request':<36} {_spread([r.cpu_ms for r in ours], '.3f')} ms")
    print(f"  {'baseline CPU per request':<36} {_spread([r.cpu_ms for r in bare], '.3f')} ms")
    print(f"  {'ratio requests/s product/baseline':<36} {_spread(rps_ratio, '.2f')}x")
    print(f"  {'ratio CPU/request product/baseline':<36} {_spread(cpu_ratio, '.2f')}x")
    print()


async def main(rounds: int, seconds: int, product_src: Path | None) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk (Debian package wrk)")
    async with bench_database("neonrain_bench_baseline") as url:
        print_header(
            "Dashboard reads: product vs bare Starlette + asyncpg baseline",
            await database_version(url),
            {
                "data": f"{DASHBOARD_USERS:,} accounts × {DASHBOARD_SERVERS_PER_USER} servers "
                f"(1 website each), {DASHBOARD_SIGNED_IN} signed in",
                "paths": " and ".join(DASHBOARD_PATHS) + " alternately, Bearer sessions",
                "load": f"wrk, {WRK_THREADS} threads, {seconds} s per run, {rounds} rounds "
                "interleaved (product, baseline) per concurrency",
                "product": "neonrain web --no-scraper --workers 1 (log level INFO)"
                + (f", from {product_src}" if product_src else ""),
                "baseline": f"Starlette + asyncpg (pool {POOL_SIZE}), uvicorn, no access log",
            },
        )
        tokens = await seed_dashboard(url)
        with tempfile.TemporaryDirectory() as directory:
            logs = Path(directory)
            with (
                web_server(url, 1, logs / "product.log", source=product_src) as product,
                baseline_server(url, logs / "baseline.log") as baseline,
            ):
                await report_workers_online(product.base, url)
                if product_src is None:
                    check_same_sql()
                try:
                    await check_identical(product.base, baseline.base, tokens[:5])
                except SystemExit:
                    print((logs / "baseline.log").read_text()[-3000:], file=sys.stderr)
                    raise
                print()
                for server in (product, baseline):
                    run_wrk(server.base, tokens, max(CONNECTIONS), WARMUP_S)
                runs: dict[int, list[tuple[Run, Run]]] = {c: [] for c in CONNECTIONS}
                for _round in range(rounds):
                    for connections in CONNECTIONS:
                        ours = measure(product, tokens, connections, seconds)
                        bare = measure(baseline, tokens, connections, seconds)
                        runs[connections].append((ours, bare))
                for connections in CONNECTIONS:
                    report(connections, runs[connections])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=int, default=DURATION_S)
    parser.add_argument("--product-src", type=Path, default=None)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve is not None:
        serve(arguments.serve)
    else:
        asyncio.run(main(arguments.rounds, arguments.seconds, arguments.product_src))
