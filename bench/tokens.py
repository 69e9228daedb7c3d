"""``GET /api/discord/tokens``: full build, 304, and ``since`` delta, with SQL query counts.

Run from the repository root::

    .venv/bin/python -m bench.tokens            # 1,000 users x 3 servers, then + websites
    .venv/bin/python -m bench.tokens --users 200 --no-websites   # a quicker look

The web app is served by uvicorn on a loopback port in this process and called over HTTP, as the
worker calls it. Query counts come from the app's own engine. The memory figure is the peak of
Python allocations (``tracemalloc``) while the server builds and sends one answer, measured in a
separate pass because tracing slows everything down.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text

from bench.common import (
    INTERNAL_KEY,
    Latencies,
    QueryCounter,
    SeededAccount,
    bench_database,
    bench_settings,
    counter_for,
    database_version,
    print_figure,
    print_header,
    seed_accounts,
)
from neonrain.app import app_state
from neonrain.db.changes import mark_config_changed
from neonrain.process import freeze_startup_objects
from neonrain.servers.models import UserServerConfig
from neonrain.state import AppState
from tests.webapp import WebApp

HEADERS = {"X-API-Key": INTERNAL_KEY}
_SELECT_1 = text("SELECT 1")


@dataclass
class Scenario:
    users: int
    servers: int
    websites: int
    markdown_bytes: int
    full_runs: int


async def _timed_get(
    http: httpx.AsyncClient, counter: QueryCounter, params: dict[str, Any], **headers: str
) -> tuple[float, httpx.Response, int]:
    with counter.counting() as statements:
        started = time.perf_counter()
        response = await http.get("/api/discord/tokens", params=params, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, response, len(statements)


async def _timed_select_1(state: AppState) -> float:
    """Milliseconds of one ``SELECT 1`` round trip through the app's engine and pool."""
    started = time.perf_counter()
    async with state.engine.connect() as connection:
        await connection.execute(_SELECT_1)
    return (time.perf_counter() - started) * 1000


async def _edit_one_server(state: AppState, account: SeededAccount, n: int) -> None:
    """What a dashboard edit does to the data the worker sees: one configuration, one marker."""
    async with state.sessionmaker() as session, session.begin():
        config = await session.get(UserServerConfig, account.config_ids[0])
        assert config is not None
        config.personality = f"edited personality #{n}"
        await mark_config_changed(session, [account.user_id])


async def _memory_of_one_build(http: httpx.AsyncClient) -> tuple[int, int]:
    """Peak traced allocation (bytes) while one full answer is built and received, and the
    answer's size."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        async with http.stream("GET", "/api/discord/tokens") as response:
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)  # counted, not kept: the client's copy is not the server's
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, size


async def run(scenario: Scenario) -> None:
    async with bench_database() as url:
        started = time.perf_counter()
        accounts = await seed_accounts(
            url,
            users=scenario.users,
            servers_per_user=scenario.servers,
            websites_per_server=scenario.websites,
            markdown_bytes=scenario.markdown_bytes,
            scrapes_per_website=3 if scenario.websites else 1,
        )
        seeded = time.perf_counter() - started
        markdown_total = (
            scenario.users * scenario.servers * scenario.websites * scenario.markdown_bytes
        )
        print_header(
            "GET /api/discord/tokens",
            await database_version(url),
            {
                "data": f"{scenario.users} users x {scenario.servers} servers"
                + (
                    f", {scenario.websites} websites x {scenario.markdown_bytes // 1000} KB per "
                    f"server (3 scrapes kept per website), {markdown_total / 1e6:.0f} MB of "
                    "Markdown in the answer"
                    if scenario.websites
                    else ", no websites"
                )
                + f" (seeded in {seeded:.1f} s)",
                "server": "uvicorn, 1 process, in this process; client httpx over loopback",
            },
        )
        web = WebApp(bench_settings(url))
        state = app_state(web.app)
        counter = counter_for(state.engine)
        await web.start()
        try:
            async with httpx.AsyncClient(base_url=web.url, headers=HEADERS, timeout=120) as http:
                await _measure(http, state, counter, accounts, scenario)
        finally:
            await web.stop()
        print()


async def _measure(
    http: httpx.AsyncClient,
    state: AppState,
    counter: QueryCounter,
    accounts: list[SeededAccount],
    scenario: Scenario,
) -> None:
    heavy = scenario.websites > 0
    # Warm-up: connections, statement caches; then what `neonrain web` does after start-up.
    for _ in range(2):
        await http.get("/api/discord/tokens")
    freeze_startup_objects()

    # Full build.
    times: list[float] = []
    queries: set[int] = set()
    size = 0
    for _ in range(scenario.full_runs):
        elapsed, response, count = await _timed_get(http, counter, {})
        assert response.status_code == 200, response.text
        times.append(elapsed)
        queries.add(count)
        size = len(response.content)
        etag = response.headers["ETag"]
        generation = int(response.json()["generation"])
    full = Latencies(times)
    print_figure(
        "full build",
        f"p50 {full.p50:.1f} ms, p95 {full.p95:.1f} ms",
        "<= 2 s" if heavy else "<= 100 ms",
    )
    print_figure("  SQL queries per full build", ", ".join(map(str, sorted(queries))), "constant")
    print_figure("  answer size", f"{size / 1e6:.2f} MB")

    if heavy:
        peak, streamed = await _memory_of_one_build(http)
        print_figure(
            "  peak Python memory while answering",
            f"{peak / 1e6:.1f} MB = {peak / streamed:.2f}x",
            "<= 2x payload",
        )
        return

    # Unchanged: 304, each followed by a bare SELECT 1 through the app's own engine (same pool):
    # the floor a one-query answer cannot go below, measured alongside.
    times = []
    floor: list[float] = []
    queries = set()
    for _ in range(300):
        elapsed, response, count = await _timed_get(http, counter, {}, **{"If-None-Match": etag})
        assert response.status_code == 304
        times.append(elapsed)
        queries.add(count)
        floor.append(await _timed_select_1(state))
    not_modified = Latencies(times)
    select_1 = Latencies(floor)
    print_figure(
        "unchanged (If-None-Match) -> 304",
        f"p50 {not_modified.p50:.2f} ms, p95 {not_modified.p95:.2f} ms",
        "<= 5 ms",
    )
    print_figure("  SQL queries per 304", ", ".join(map(str, sorted(queries))), "no rebuild")
    print_figure(
        "  bare SELECT 1 through the same engine",
        f"p50 {select_1.p50:.2f} ms, p95 {select_1.p95:.2f} ms",
    )
    print_figure("  304 / SELECT 1 (p50, same run)", f"{not_modified.p50 / select_1.p50:.1f}x")

    # One server edited, then the delta.
    times = []
    sizes: list[int] = []
    queries = set()
    for n in range(50):
        account = accounts[(n * 37) % len(accounts)]
        await _edit_one_server(state, account, n)
        elapsed, response, count = await _timed_get(http, counter, {"since": generation})
        assert response.status_code == 200, response.text
        body = response.json()
        assert [t["userId"] for t in body["tokens"]] == [account.user_id], body["tokens"]
        generation = int(body["generation"])
        times.append(elapsed)
        sizes.append(len(response.content))
        queries.add(count)
    delta = Latencies(times)
    print_figure(
        "one server edited -> since delta",
        f"p50 {delta.p50:.2f} ms, p95 {delta.p95:.2f} ms",
        "<= 20 ms",
    )
    print_figure("  delta answer size", f"{max(sizes) / 1000:.1f} KB", "<= 100 KB")
    print_figure("  SQL queries per delta", ", ".join(map(str, sorted(queries))), "constant")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30, help="full builds to time")
    parser.add_argument("--no-websites", action="store_true", help="skip the 60 MB scenario")
    args = parser.parse_args()
    scenarios = [Scenario(args.users, args.servers, 0, 0, args.runs)]
    if not args.no_websites:
        scenarios.append(Scenario(args.users, args.servers, 2, 10_000, max(3, args.runs // 6)))
    for scenario in scenarios:
        asyncio.run(run(scenario))


if __name__ == "__main__":
    main()
