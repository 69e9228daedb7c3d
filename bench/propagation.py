"""How fast a configuration change made in the dashboard reaches the running Discord worker.

The real web app (on a loopback port, throwaway PostgreSQL database) and the real worker
(connected to the fake Discord gateway and the fake HUMA) run in one event loop. 100 times, an
account changes its server's personality with ``PUT /api/servers/{id}``; each change is timed from
the API's 200 answer (and from sending the request) to the moment the worker's connection for that
bot holds the new text, checked every millisecond. The worker follows
``GET /api/discord/tokens`` with ``since`` deltas and long-polling; the size of every answer it
receives is recorded at its HTTP transport.

It runs twice: with that one account alone, and with 1,000 other accounts × 3 servers in the
database (served by one other bot token), so that every delta is computed against a realistic
table and the worker's snapshot holds 1,001 accounts.

Run from the repository root::

    .venv/bin/python -m bench.propagation
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx

from bench.common import (
    HUMA_KEY,
    Latencies,
    bench_database,
    database_version,
    print_figure,
    print_header,
    seed_accounts,
    settings_on_fakes,
    wait_for,
    worker_on_fakes,
)
from neonrain.worker.manager import Worker
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_huma import FakeHuma
from tests.webapp import WebApp

CHANGES = 100
PAUSE_S = 0.05
POLL_S = 0.001
TIMEOUT_S = 10.0
BACKGROUND_USERS = 1_000
BACKGROUND_SERVERS = 3
BOT_TOKEN = "bench-propagation-bot.1234567890.abcdefghij"
BACKGROUND_TOKEN = "bench-background-bot.1234567890.abcdefghij"
PASSWORD = "correct horse battery staple"
TARGET = "p95 ≤ 1,000 ms; original ≤ 2,000 ms"


@dataclass
class TokensAnswer:
    status: int
    wire_bytes: int
    delta: bool
    wait: bool


@dataclass
class CountingTransport(httpx.AsyncBaseTransport):
    """The worker's HTTP transport, recording the size of each configuration answer."""

    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    answers: list[TokensAnswer] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == "/api/discord/tokens":
            body = await response.aread()
            self.answers.append(
                TokensAnswer(
                    status=response.status_code,
                    wire_bytes=int(response.headers.get("content-length", len(body))),
                    delta="since" in request.url.params,
                    wait="wait" in request.url.params,
                )
            )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Run:
    from_answer: Latencies
    from_request: Latencies
    api: Latencies
    answers: list[TokensAnswer]


@contextlib.asynccontextmanager
async def running_system(
    database_url: str, discord: FakeDiscord, huma: FakeHuma, transport: CountingTransport
) -> AsyncIterator[tuple[WebApp, Worker]]:
    web = WebApp(settings_on_fakes(database_url, discord, huma))
    await web.start()
    worker = worker_on_fakes(web, discord, huma, backend_transport=transport)
    try:
        yield web, worker
    finally:
        await worker.stop()
        # As on SIGTERM: a long-poll left behind by the stopped worker answers at once.
        web.app.state.neonrain.notifier.close()
        await web.stop()


def worker_personality(worker: Worker, user_id: str, server_id: str) -> str | None:
    """The personality the worker's running connection holds for that server, if any."""
    client = worker.manager.clients.get(BOT_TOKEN)
    account = client.accounts.get(user_id) if client is not None else None
    if account is None:
        return None
    for server in account.servers:
        if server.server_id == server_id:
            return server.personality
    return None


def holds(worker: Worker, user_id: str, server_id: str, text: str) -> Callable[[], bool]:
    return lambda: worker_personality(worker, user_id, server_id) == text


async def run(database_url: str, *, background: bool) -> Run:
    transport = CountingTransport()
    async with (
        FakeDiscord() as discord,
        FakeHuma(api_key=HUMA_KEY) as huma,
    ):
        discord.add_bot(BOT_TOKEN, "Neon")
        guild = discord.add_guild("Propagation Hub", bots=[BOT_TOKEN])
        if background:
            discord.add_bot(BACKGROUND_TOKEN, "Background")
        async with (
            running_system(database_url, discord, huma, transport) as (web, worker),
            httpx.AsyncClient(base_url=web.url, timeout=30) as http,
        ):
            registered = await http.post(
                "/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
            )
            registered.raise_for_status()
            user_id = registered.json()["user"]["id"]
            http.cookies.clear()
            http.headers["Authorization"] = f"Bearer {registered.json()['token']}"
            (await http.post("/api/discord/connect", json={"token": BOT_TOKEN})).raise_for_status()
            added = await http.post("/api/servers", json={"guildId": str(guild.id)})
            added.raise_for_status()
            server_id = added.json()["serverId"]
            update = await http.put(f"/api/servers/{server_id}", json={"botActive": True})
            update.raise_for_status()

            await worker.start()
            await asyncio.wait_for(worker.sync.synced.wait(), 60)
            await discord.wait_for_online(BOT_TOKEN, timeout=60)
            if background:
                await discord.wait_for_online(BACKGROUND_TOKEN, timeout=60)
            await wait_for(
                lambda: worker_personality(worker, user_id, server_id) == "",
                TIMEOUT_S,
                "the worker to load the configuration",
                interval=POLL_S,
            )
            await asyncio.sleep(0.5)
            transport.answers.clear()

            from_answer: list[float] = []
            from_request: list[float] = []
            api: list[float] = []
            for n in range(CHANGES):
                text = f"Personality number {n}: friendly, brief and curious."
                sent = time.perf_counter()
                response = await http.put(f"/api/servers/{server_id}", json={"personality": text})
                answered = time.perf_counter()
                response.raise_for_status()
                await wait_for(
                    holds(worker, user_id, server_id, text),
                    TIMEOUT_S,
                    f"change {n} to reach the worker",
                    interval=POLL_S,
                )
                seen = time.perf_counter()
                from_answer.append((seen - answered) * 1000)
                from_request.append((seen - sent) * 1000)
                api.append((answered - sent) * 1000)
                await asyncio.sleep(PAUSE_S)
            accounts = len(worker.sync.snapshot.by_user)
            expected = 1 + (BACKGROUND_USERS if background else 0)
            if accounts != expected:
                raise SystemExit(f"the worker holds {accounts} accounts, expected {expected}")
    return Run(Latencies(from_answer), Latencies(from_request), Latencies(api), transport.answers)


def print_run(title: str, result: Run) -> None:
    print(title)
    print_figure("API 200 → worker holds it", describe(result.from_answer), TARGET)
    print_figure("request sent → worker holds it", describe(result.from_request), TARGET)
    print_figure("PUT /api/servers/{id} answer time", describe(result.api))
    deltas = [a for a in result.answers if a.delta and a.status == 200]
    unchanged = [a for a in result.answers if a.status == 304]
    full = [a for a in result.answers if not a.delta and a.status == 200]
    print_figure(
        "configuration reads during the changes",
        f"{len(result.answers)} ({len(deltas)} deltas, {len(unchanged)} 304, {len(full)} full)",
        f"≈ {CHANGES}, one per change",
    )
    if deltas:
        sizes = [a.wire_bytes for a in deltas]
        print_figure(
            "bytes per delta answer (mean / max)",
            f"{statistics.fmean(sizes):,.0f} / {max(sizes):,} B",
            "≤ 100 KB",
        )
    print()


def describe(latencies: Latencies) -> str:
    return f"{latencies.p50:.1f} / {latencies.p95:.1f} / {latencies.max:.1f} ms"


async def main() -> None:
    async with bench_database("neonrain_bench_propagation") as alone_url:
        print_header(
            "Configuration change → worker",
            await database_version(alone_url),
            {
                "changes": f"{CHANGES} × PUT /api/servers/{{id}} (personality), "
                f"{PAUSE_S * 1000:.0f} ms apart, one at a time",
                "observed": "the worker's connection for the bot holds the new text "
                f"(checked every {POLL_S * 1000:.0f} ms, same event loop)",
                "worker": "real Worker: since deltas + ETag + long-polling (25 s)",
                "background": f"none, then {BACKGROUND_USERS:,} accounts × "
                f"{BACKGROUND_SERVERS} servers (one other bot token)",
                "figures": "p50 / p95 / max",
            },
        )
        print_run("one account:", await run(alone_url, background=False))
    async with bench_database("neonrain_bench_propagation") as seeded_url:
        await seed_accounts(
            seeded_url,
            users=BACKGROUND_USERS,
            servers_per_user=BACKGROUND_SERVERS,
            bot_token=BACKGROUND_TOKEN,
        )
        print_run(
            f"with {BACKGROUND_USERS:,} background accounts × {BACKGROUND_SERVERS} servers:",
            await run(seeded_url, background=True),
        )


if __name__ == "__main__":
    asyncio.run(main())
