"""Dashboard API under concurrent load: ``GET /api/servers`` and ``GET /api/discord/status``.

The web app runs as ``neonrain web`` in its own process(es) on a throwaway PostgreSQL database
with 1,000 accounts × 3 servers; ``wrk`` (another process) alternates the two paths with the
Bearer sessions of 50 of those accounts, at fixed concurrency, for each server worker count.
Without ``wrk`` an httpx client in a separate process stands in for it.

Run from the repository root::

    .venv/bin/python -m bench.dashboard_load
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.common import (
    INTERNAL_KEY,
    SECRET_KEY,
    bench_database,
    database_version,
    print_figure,
    print_header,
    seed_accounts,
)
from neonrain.accounts import service as accounts_service
from neonrain.accounts.models import User
from neonrain.db.engine import create_engine, create_sessionmaker
from tests.webapp import free_port

USERS = 1_000
SERVERS_PER_USER = 3
SIGNED_IN = 50
WORKER_COUNTS = (1, 2)
CONNECTIONS = (16, 32, 64)
DURATION_S = 15
WARMUP_S = 3
WRK_THREADS = 2
PATHS = ("/api/servers", "/api/discord/status")
TARGET_RPS = 1_000.0
TARGET_P99_MS = 50.0

_WRK_SCRIPT = """
local tokens = {%(tokens)s}
local paths = {"/api/servers", "/api/discord/status"}
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


# ------------------------------------------------------------------------------ data


async def seed(database_url: str) -> list[str]:
    """1,000 accounts with a bot and 3 servers (one website each); sessions for 50 of them."""
    accounts = await seed_accounts(
        database_url,
        users=USERS,
        servers_per_user=SERVERS_PER_USER,
        websites_per_server=1,
        markdown_bytes=2_000,
    )
    engine = create_engine(database_url)
    tokens: list[str] = []
    try:
        async with create_sessionmaker(engine)() as db:
            for account in accounts[:SIGNED_IN]:
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


@contextlib.contextmanager
def web_server(database_url: str, workers: int, log_path: Path) -> Iterator[WebServer]:
    """``neonrain web`` with ``workers`` processes, once it answers."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NEONRAIN_SECRET_KEY": SECRET_KEY,
        "INTERNAL_API_KEY": INTERNAL_KEY,
        "NEONRAIN_LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "neonrain", "web", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-scraper", "--workers", str(workers)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"neonrain web exited:\n{log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("neonrain web did not come up within 60 s")
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


def describe_cpu(before: CpuSample, after: CpuSample, requests: int) -> tuple[str, str, str]:
    """CPU per request of the server, PostgreSQL and the load generator, and the server's
    processes' shares of the server's CPU."""
    per_process = {pid: cpu - before.server.get(pid, 0.0) for pid, cpu in after.server.items()}
    workers = sorted((v for v in per_process.values() if v > 0.05), reverse=True)
    server = sum(per_process.values()) * 1000 / requests
    postgres = max(0.0, after.postgres - before.postgres) * 1000 / requests
    load = (after.children - before.children) * 1000 / requests
    total = server + postgres + load
    shares = " / ".join(f"{100 * v / sum(workers):.0f}%" for v in workers) if workers else "-"
    return (
        f"{server:.2f} + {postgres:.2f} + {load:.2f} ms",
        f"{2000 / total if total else 0:,.0f} req/s" if total else "-",
        shares,
    )


# ------------------------------------------------------------------------------ the load


def run_wrk(base: str, tokens: list[str], connections: int, seconds: int) -> LoadResult:
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "dashboard.lua"
        result = Path(directory) / "result.json"
        script.write_text(_WRK_SCRIPT % {"tokens": ", ".join(json.dumps(t) for t in tokens)})
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
                base + PATHS[0],
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


def run_httpx(base: str, tokens: list[str], connections: int, seconds: int) -> LoadResult:
    """The fallback load generator: this module's ``--httpx-client`` in a separate process."""
    completed = subprocess.run(
        [
            sys.executable,
            *("-m", "bench.dashboard_load", "--httpx-client"),
            *(base, str(connections), str(seconds)),
        ],
        input="\n".join(tokens),
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(completed.stdout)
    return LoadResult(**data)


async def httpx_client(base: str, tokens: list[str], connections: int, seconds: int) -> None:
    from bench.common import percentile

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as http:
        deadline = time.perf_counter() + seconds

        async def loop(index: int) -> None:
            nonlocal errors
            counter = index
            while time.perf_counter() < deadline:
                counter += 1
                headers = {"Authorization": f"Bearer {tokens[counter % len(tokens)]}"}
                started = time.perf_counter()
                try:
                    response = await http.get(PATHS[counter % 2], headers=headers)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(connections)))
        elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "seconds": elapsed,
                "p50_ms": percentile(latencies, 0.50),
                "p90_ms": percentile(latencies, 0.90),
                "p99_ms": percentile(latencies, 0.99),
                "max_ms": max(latencies),
                "errors": errors,
            }
        )
    )


# ------------------------------------------------------------------------------ main


async def check_answers(base: str, token: str) -> None:
    """Both paths answer 200 with the expected data before any load is applied."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        servers = (await http.get(PATHS[0])).json()
        status = (await http.get(PATHS[1])).json()
    assert len(servers["servers"]) == SERVERS_PER_USER, servers
    assert status["connected"] and status["worker"]["state"] == "online", status


async def main() -> None:
    have_wrk = shutil.which("wrk") is not None
    load = run_wrk if have_wrk else run_httpx
    async with bench_database("neonrain_bench_dashboard") as url:
        print_header(
            "Dashboard API under concurrent load",
            await database_version(url),
            {
                "data": f"{USERS:,} accounts × {SERVERS_PER_USER} servers (1 website each), "
                f"{SIGNED_IN} signed in",
                "paths": " and ".join(PATHS) + " alternately, Bearer sessions",
                "load": f"{'wrk' if have_wrk else 'httpx (wrk not found)'}, "
                f"{WRK_THREADS} threads, {DURATION_S} s per run after {WARMUP_S} s warm-up",
                "server": "neonrain web --no-scraper --workers N (uvicorn, log level INFO)",
            },
        )
        tokens = await seed(url)
        with tempfile.TemporaryDirectory() as directory:
            for workers in WORKER_COUNTS:
                log_path = Path(directory) / f"web-{workers}.log"
                with web_server(url, workers, log_path) as server:
                    await report_workers_online(server.base, url)
                    await check_answers(server.base, tokens[0])
                    load(server.base, tokens, max(CONNECTIONS), WARMUP_S)
                    for connections in CONNECTIONS:
                        before = CpuSample.take(server.pid)
                        result = load(server.base, tokens, connections, DURATION_S)
                        after = CpuSample.take(server.pid)
                        print_run(workers, connections, result, before, after)


def print_run(
    workers: int, connections: int, result: LoadResult, before: CpuSample, after: CpuSample
) -> None:
    print(f"{workers} server worker(s), {connections} connections:")
    print_figure("throughput", f"{result.rps:,.0f} req/s", f"≥ {TARGET_RPS:,.0f}")
    print_figure("latency p50 / p90", f"{result.p50_ms:.1f} / {result.p90_ms:.1f} ms")
    print_figure("latency p99", f"{result.p99_ms:.1f} ms", f"≤ {TARGET_P99_MS:.0f} ms")
    print_figure("latency max", f"{result.max_ms:.1f} ms")
    print_figure("errors", f"{result.errors} of {result.requests:,}", "0")
    per_request, ceiling, shares = describe_cpu(before, after, result.requests)
    print_figure("CPU per request: server + PostgreSQL + load", per_request)
    print_figure("  → ceiling on 2 cores with nothing else", ceiling)
    if workers > 1:
        print_figure("  server CPU split between its workers", shares)
    print()


def _parse_client_args(argv: list[str]) -> tuple[str, int, int]:
    match = re.fullmatch(r"(\S+) (\d+) (\d+)", " ".join(argv))
    if match is None:
        raise SystemExit("usage: --httpx-client BASE_URL CONNECTIONS SECONDS")
    return match[1], int(match[2]), int(match[3])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--httpx-client"]:
        base_url, connection_count, duration = _parse_client_args(sys.argv[2:])
        session_tokens = [line for line in sys.stdin.read().splitlines() if line]
        asyncio.run(httpx_client(base_url, session_tokens, connection_count, duration))
    else:
        asyncio.run(main())
