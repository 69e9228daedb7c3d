"""The worker's message path, end to end: Discord MESSAGE_CREATE → HUMA context update, and the
stats it reports on the way.

The real worker (discord.py client, agents, reporter) runs against the fake Discord gateway and the
fake HUMA Socket.IO server, and reads its configuration from the real web app on a loopback port
with a throwaway PostgreSQL database: 100 guilds with active configurations, served by one bot
token. Everything shares one event loop, so one monotonic clock times each message from the moment
the fake gateway queues MESSAGE_CREATE to the moment the fake HUMA receives the context update.

Run from the repository root::

    .venv/bin/python -m bench.worker_pipeline
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import ASGIApp, Receive, Scope, Send

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
from neonrain.servers.models import UserServerConfig
from neonrain.worker.manager import Worker
from neonrain.worker.reporting import STATS_FLUSH_SECONDS
from tests.fakes.fake_discord import FakeDiscord, FakeGuild
from tests.fakes.fake_huma import FakeHuma, ReceivedEvent
from tests.webapp import WebApp

if TYPE_CHECKING:
    import discord

GUILDS = 100
AUTHORS_PER_GUILD = 5
BOT_TOKEN = "bench-pipeline-bot-token"
BOT_ID = 900_000_000_000_000_000  # the id seed_accounts gives the first account's bot
PACED_RATE = 500.0  # messages/s: the target rate, for the latency figures
PACED_SECONDS = 10.0
FLOOD_SECONDS = 10.0
FLOOD_WINDOW = 400  # messages posted but not yet at HUMA, while flooding
STATS_PATH = "/api/discord/stats"

_MARKER = re.compile(r"\bm(\d+)\b")


class StatsRequests:
    """An ASGI middleware of the web app recording when each stats POST arrived."""

    def __init__(self, app: ASGIApp, *, times: list[float]) -> None:
        self.app = app
        self.times = times

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == STATS_PATH:
            self.times.append(time.monotonic())
        await self.app(scope, receive, send)


@dataclass
class Traffic:
    """Messages posted into the fake gateway and their arrival at the fake HUMA."""

    discord: FakeDiscord
    huma: FakeHuma
    guilds: list[FakeGuild]
    authors: list[list[int]]
    posted_at: dict[int, float] = field(default_factory=dict)
    received_at: dict[int, float] = field(default_factory=dict)
    sequence: int = 0

    _drained: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.huma.event_listeners.append(self.received)

    def post(self) -> int:
        """Post the next message (round robin over guilds, channels and authors)."""
        n = self.sequence
        self.sequence += 1
        guild = self.guilds[n % len(self.guilds)]
        channels = guild.text_channels
        channel = channels[(n // len(self.guilds)) % len(channels)]
        author_id = self.authors[n % len(self.guilds)][n % AUTHORS_PER_GUILD]
        self.posted_at[n] = time.monotonic()
        self.discord.dispatch_user_message(
            guild.id,
            channel.id,
            f"member-{author_id}",
            f"m{n} has anyone tried the new release? It keeps crashing on start for me.",
            author_id=author_id,
        )
        return n

    def received(self, event: ReceivedEvent) -> None:
        if event.is_context_update:
            number = _message_number(event)
            if number is not None and number in self.posted_at:
                self.received_at.setdefault(number, event.at)
                if len(self.received_at) >= self.sequence:
                    self._drained.set()

    def outstanding(self) -> int:
        return self.sequence - len(self.received_at)

    async def drain(self, timeout: float) -> None:
        if self.outstanding():
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)

    def latencies(self, numbers: range) -> Latencies:
        return Latencies(
            [
                (self.received_at[n] - self.posted_at[n]) * 1000
                for n in numbers
                if n in self.received_at
            ]
        )


def _message_number(event: ReceivedEvent) -> int | None:
    match = _MARKER.search(str(event.content.get("description", "")))
    return int(match.group(1)) if match else None


async def paced(traffic: Traffic, rate: float, seconds: float) -> range:
    """Post at ``rate`` messages/s for ``seconds`` (open loop: late ticks post what is due)."""
    first = traffic.sequence
    start = time.monotonic()
    total = int(rate * seconds)
    while traffic.sequence - first < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while traffic.sequence - first < due:
            traffic.post()
        await asyncio.sleep(1 / rate)
    return range(first, traffic.sequence)


async def flood(traffic: Traffic, seconds: float, window: int) -> range:
    """Post as fast as the worker takes them, keeping ``window`` messages in flight."""
    first = traffic.sequence
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(max(0, window - traffic.outstanding())):
            traffic.post()
        await asyncio.sleep(0.002)
    return range(first, traffic.sequence)


def time_handler(worker: Worker) -> list[float]:
    """Time the worker's own message handler (history, context, emit to the HUMA socket):
    the part of the latency that is the worker's, not discord.py's parsing or the fakes'."""
    client = worker.manager.clients[BOT_TOKEN]
    inner = client.on_message
    durations: list[float] = []

    async def timed(message: discord.Message) -> None:
        started = time.perf_counter()
        try:
            await inner(message)
        finally:
            durations.append((time.perf_counter() - started) * 1000)

    setattr(client, "on_message", timed)  # noqa: B010 - an instance attribute over the method
    return durations


def delivered_rate(traffic: Traffic, numbers: range) -> tuple[int, float, float]:
    """(messages delivered, seconds from the first post to the last arrival, messages/s)."""
    arrivals = [traffic.received_at[n] for n in numbers if n in traffic.received_at]
    if not arrivals:
        return 0, 0.0, 0.0
    elapsed = max(arrivals) - traffic.posted_at[numbers.start]
    return len(arrivals), elapsed, len(arrivals) / elapsed


def max_in_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0
    )


def requests_between(times: list[float], start: float, end: float) -> int:
    return sum(1 for t in times if start <= t < end)


async def counted_messages(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            total = await connection.scalar(
                select(func.coalesce(func.sum(UserServerConfig.messages_received_count), 0))
            )
    finally:
        await engine.dispose()
    return int(total or 0)


async def run() -> None:
    async with bench_database("neonrain_bench_worker_pipeline") as url:
        version = await database_version(url)
        print_header(
            "worker pipeline: Discord MESSAGE_CREATE → HUMA context update",
            version,
            {
                "guilds": f"{GUILDS} (1 account, 1 bot token, 2 text channels each)",
                "paced": f"{PACED_RATE:.0f} messages/s for {PACED_SECONDS:.0f} s",
                "flood": f"{FLOOD_SECONDS:.0f} s, {FLOOD_WINDOW} messages in flight",
                "stats": f"worker flush interval {STATS_FLUSH_SECONDS} s (production)",
            },
        )
        accounts = await seed_accounts(url, users=1, servers_per_user=GUILDS, bot_token=BOT_TOKEN)
        async with (
            FakeDiscord(history_limit=25) as fake_discord,
            FakeHuma(api_key=HUMA_KEY, keep_events=False) as huma,
        ):
            bot = fake_discord.add_bot(BOT_TOKEN, "BenchBot", bot_id=BOT_ID)
            guilds = [
                fake_discord.add_guild(f"Bench guild 0-{i}", guild_id=int(guild_id), bots=[bot])
                for i, guild_id in enumerate(accounts[0].guild_ids)
            ]
            authors = [
                [fake_discord.add_user(f"member-{g}-{a}").id for a in range(AUTHORS_PER_GUILD)]
                for g in range(GUILDS)
            ]
            stats_posts: list[float] = []
            web = WebApp(settings_on_fakes(url, fake_discord, huma))
            web.app.add_middleware(StatsRequests, times=stats_posts)
            await web.start()
            worker = worker_on_fakes(web, fake_discord, huma, flush_seconds=STATS_FLUSH_SECONDS)
            try:
                traffic = Traffic(fake_discord, huma, guilds, authors)
                await measure(url, worker, traffic, stats_posts)
            finally:
                with contextlib.suppress(Exception):
                    await worker.stop()
                await web.stop()


async def measure(url: str, worker: Worker, traffic: Traffic, stats_posts: list[float]) -> None:
    started = time.monotonic()
    await worker.start()
    await asyncio.wait_for(worker.sync.synced.wait(), 30)
    await wait_for(
        lambda: (
            BOT_TOKEN in worker.manager.clients
            and worker.manager.clients[BOT_TOKEN].client.is_ready()
            and len(worker.manager.clients[BOT_TOKEN].client.guilds) == GUILDS
        ),
        30,
        "the worker to connect and see every guild",
    )
    connected = time.monotonic()
    handler_ms = time_handler(worker)

    # Warm-up: each guild's agent is created and connected, and each channel's history loaded.
    # One round per channel: while an agent connects only its newest update is kept.
    for _ in range(2):
        for _ in range(GUILDS):
            traffic.post()
        await traffic.drain(60)
    warmed = time.monotonic()
    print_figure("connect (100 guilds)", f"{connected - started:.2f} s")
    print_figure("warm-up (100 agents, 200 channel histories)", f"{warmed - connected:.2f} s")
    print()

    paced_start = time.monotonic()
    first_handled = len(handler_ms)
    paced_numbers = await paced(traffic, PACED_RATE, PACED_SECONDS)
    await traffic.drain(30)
    paced_end = time.monotonic()
    handler = Latencies(handler_ms[first_handled:])
    latencies = traffic.latencies(paced_numbers)
    count, elapsed, rate = delivered_rate(traffic, paced_numbers)
    print(f"paced at {PACED_RATE:.0f} messages/s ({len(paced_numbers)} messages)")
    print_figure("delivered", f"{count}/{len(paced_numbers)} in {elapsed:.2f} s")
    print_figure("delivered rate", f"{rate:.0f} messages/s")
    print_figure("latency p50", f"{latencies.p50:.2f} ms")
    print_figure("latency p95", f"{latencies.p95:.2f} ms", "≤ 5 ms")
    print_figure("latency p99 / max", f"{latencies.p99:.2f} / {latencies.max:.2f} ms")
    print_figure(
        "worker's handler alone, p50 / p95",
        f"{handler.p50 * 1000:.0f} / {handler.p95 * 1000:.0f} µs",
    )
    print()

    flood_start = time.monotonic()
    cpu_start = time.process_time()
    flood_numbers = await flood(traffic, FLOOD_SECONDS, FLOOD_WINDOW)
    await traffic.drain(60)
    flood_end = time.monotonic()
    cpu = time.process_time() - cpu_start
    count, elapsed, rate = delivered_rate(traffic, flood_numbers)
    print(f"flood ({len(flood_numbers)} messages, up to {FLOOD_WINDOW} in flight)")
    print_figure("delivered", f"{count}/{len(flood_numbers)} in {elapsed:.2f} s")
    print_figure("throughput", f"{rate:.0f} messages/s", "≥ 500 messages/s")
    per_message = cpu / max(count, 1) * 1e6
    print_figure("CPU per message (worker + fakes + web app)", f"{per_message:.0f} µs")
    print_figure("latency under saturation", f"p50 {traffic.latencies(flood_numbers).p50:.0f} ms")
    print()

    stopping = time.monotonic()
    await worker.stop()  # flushes the last stats batch, whenever the previous one went
    running = [t for t in stats_posts if t < stopping]
    posted = traffic.sequence
    counted = await counted_messages(url)
    print("stats reporting (POST /api/discord/stats)")
    for name, start, end, messages in (
        ("paced", paced_start, paced_end, len(paced_numbers)),
        ("flood", flood_start, flood_end, len(flood_numbers)),
    ):
        requests = requests_between(stats_posts, start, end)
        seconds = end - start
        print_figure(
            f"{name}: messages/s → requests per 2 s",
            f"{messages / seconds:.0f}/s → {requests / seconds * 2:.2f}",
            "≤ 1",
        )
    gaps = [b - a for a, b in itertools.pairwise(running)]
    print_figure(
        "whole run: requests / seconds",
        f"{len(running)} / {stopping - started:.1f} s (+{len(stats_posts) - len(running)} at stop)",
    )
    print_figure("most requests in any 2 s window", f"{max_in_window(running, 2.0)}", "≤ 1")
    if gaps:
        print_figure("shortest gap between requests", f"{min(gaps):.2f} s")
    print_figure("messages counted by the web app", f"{counted}/{posted}")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
