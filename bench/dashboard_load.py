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
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import (
    DASHBOARD_PATHS,
    DASHBOARD_SERVERS_PER_USER,
    DASHBOARD_SIGNED_IN,
    DASHBOARD_USERS,
    WRK_THREADS,
    CpuSample,
    LoadResult,
    bench_database,
    database_version,
    print_figure,
    print_header,
    report_workers_online,
    run_wrk,
    seed_dashboard,
    web_server,
)

USERS = DASHBOARD_USERS
SERVERS_PER_USER = DASHBOARD_SERVERS_PER_USER
SIGNED_IN = DASHBOARD_SIGNED_IN
WORKER_COUNTS = (1, 2)
CONNECTIONS = (16, 32, 64)
DURATION_S = 15
WARMUP_S = 3
PATHS = DASHBOARD_PATHS
TARGET_RPS = 1_000.0
TARGET_P99_MS = 50.0

# ------------------------------------------------------------------------------ data


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
        tokens = await seed_dashboard(url)
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
