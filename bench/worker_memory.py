"""The worker's memory per connected bot token: 100 tokens × 10 guilds on the fake gateway.

The worker runs as its own process (``neonrain worker``'s code path, ``run_standalone``), so its
resident set holds nothing but the worker; the web app (throwaway PostgreSQL database), the fake
Discord and the fake HUMA run in this process. The worker starts with no account (baseline RSS),
then the 100 accounts are inserted and announced, and the worker connects every token; the figure
is (RSS with 100 tokens − baseline) / 100. A second step posts one message in every guild, so that
every guild also has a live HUMA agent and a full (50-message) channel history. A second run of
the same scenario under tracemalloc says which packages the memory belongs to.

Run from the repository root::

    .venv/bin/python -m bench.worker_memory
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the worker process imports only what ``neonrain worker`` imports
    from starlette.types import ASGIApp, Receive, Scope, Send

    from tests.fakes.fake_discord import FakeDiscord
    from tests.fakes.fake_huma import FakeHuma

TOKENS = 100
GUILDS_PER_TOKEN = 10
AGENTS = TOKENS * GUILDS_PER_TOKEN
TRACED_TOKENS = 10  # tracemalloc slows the worker several times over
BOT_ID_BASE = 900_000_000_000_000_000  # seed_accounts gives account u the bot id BASE + u
TOKENS_PATH = "/api/discord/tokens"
TARGET_BYTES_PER_TOKEN = 2 * 1024 * 1024
TRACE_ENV = "NEONRAIN_BENCH_TRACEMALLOC"
HISTORY = 50  # messages the worker keeps per channel
FILLER = "has anyone tried the new release? It keeps crashing on start for me."


class TokenReads:
    """An ASGI middleware of the web app counting the worker's configuration reads."""

    def __init__(self, app: ASGIApp, *, counter: list[int]) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == TOKENS_PATH:
            self.counter[0] += 1
        await self.app(scope, receive, send)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def mib(value: float) -> str:
    return f"{value / 1024 / 1024:.1f} MiB"


def kib(value: float) -> str:
    return f"{value / 1024:.0f} KiB"


async def settled_rss(pid: int, *, quiet_seconds: float = 2.0, timeout: float = 30.0) -> int:
    """The RSS once it has not grown for ``quiet_seconds`` (start-up work is over)."""
    deadline = time.monotonic() + timeout
    peak, since = rss_bytes(pid), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        current = rss_bytes(pid)
        if current > peak + 64 * 1024:
            peak, since = current, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return current
    return rss_bytes(pid)


def reached(counter: list[int], count: int) -> Callable[[], bool]:
    return lambda: counter[0] >= count


async def announce_change(url: str) -> None:
    """What a dashboard write does after committing: wake the long-polling worker."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from neonrain.db.changes import NOTIFY_CHANNEL

    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL}
            )
    finally:
        await engine.dispose()


def _modified(report: Path) -> int:
    return report.stat().st_mtime_ns if report.exists() else 0


def _read(report: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    return data


async def ask_child(pid: int, report: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Have the worker process describe its heap (SIGUSR1) and read what it wrote."""
    stamp = _modified(report)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if _modified(report) != stamp and (data := _read(report)) is not None:
            return data
    return {}


@dataclass
class Figures:
    """One run: the worker's RSS and its own heap report at each step."""

    baseline: int = 0
    connected: int = 0
    active: int = 0
    connect_seconds: float = 0.0
    agents_seconds: float = 0.0
    heaps: dict[str, dict[str, Any]] = field(default_factory=dict)


async def run() -> None:
    from bench.common import database_version, print_figure, print_header
    from tests import pg

    print_header(
        "worker memory per connected token",
        await database_version(pg.sqlalchemy_url("postgres")),
        {
            "tokens": f"{TOKENS} accounts, one bot token each",
            "guilds": f"{GUILDS_PER_TOKEN} per token ({AGENTS} in all)",
            "worker": "separate process (run_standalone), RSS from /proc/<pid>/status",
        },
    )
    plain = await scenario(tokens=TOKENS, traced=False)
    target = f"≤ {kib(TARGET_BYTES_PER_TOKEN)}"
    print_figure("100 tokens connected in", f"{plain.connect_seconds:.1f} s")
    print_figure("worker RSS, no token (baseline)", mib(plain.baseline))
    print_figure("worker RSS, 100 tokens connected", mib(plain.connected))
    print_figure(
        "per connected token (10 guilds)", kib((plain.connected - plain.baseline) / TOKENS), target
    )
    print_figure("1,000 agents started (histories loaded) in", f"{plain.agents_seconds:.1f} s")
    print_figure("worker RSS, + 1,000 agents and histories", mib(plain.active))
    print_figure(
        "per agent (HUMA connection, 50-message history)",
        kib((plain.active - plain.connected) / AGENTS),
    )
    print_figure(
        "per token with its 10 agents live", kib((plain.active - plain.baseline) / TOKENS), target
    )
    for step in ("baseline", "connected", "active"):
        print_figure(f"gc-tracked objects, {step}", f"{plain.heaps[step].get('objects', 0):,}")
    print()

    traced = await scenario(tokens=TRACED_TOKENS, traced=True)
    print(f"where it goes: a second run with {TRACED_TOKENS} tokens under tracemalloc, Python")
    print("allocations by the package they serve (thread stacks are not counted)")
    base, conn, live = (
        traced.heaps[step].get("by_package", {}) for step in ("baseline", "connected", "active")
    )
    traced_agents = TRACED_TOKENS * GUILDS_PER_TOKEN
    rows = []
    for package in set(conn) | set(live):
        per_token = (conn.get(package, 0) - base.get(package, 0)) / TRACED_TOKENS
        per_agent = (live.get(package, 0) - conn.get(package, 0)) / traced_agents
        if max(abs(per_token), abs(per_agent)) >= 512:
            rows.append((package, per_token, per_agent))
    print(f"  {'package':<28} {'per token':>12} {'per agent':>12}")
    for package, per_token, per_agent in sorted(rows, key=lambda r: -(r[1] + 10 * r[2])):
        print(f"  {package:<28} {kib(per_token):>12} {kib(per_agent):>12}")
    total_token = (sum(conn.values()) - sum(base.values())) / TRACED_TOKENS
    total_agent = (sum(live.values()) - sum(conn.values())) / traced_agents
    print(f"  {'all traced':<28} {kib(total_token):>12} {kib(total_agent):>12}")


async def scenario(*, tokens: int, traced: bool) -> Figures:
    """The web app, the fakes and the database here; the worker in a child process."""
    from bench.common import HUMA_KEY, bench_database, settings_on_fakes
    from tests.fakes.fake_discord import FakeDiscord
    from tests.fakes.fake_huma import FakeHuma
    from tests.webapp import WebApp

    figures = Figures()
    async with (
        bench_database("neonrain_bench_worker_memory") as url,
        FakeDiscord() as discord,
        FakeHuma(api_key=HUMA_KEY, keep_events=False) as huma,
    ):
        settings = settings_on_fakes(url, discord, huma)
        reads = [0]
        web = WebApp(settings)
        web.app.add_middleware(TokenReads, counter=reads)
        await web.start()
        try:
            await run_child(url, discord, huma, web.url, reads, tokens, traced, figures)
        finally:
            web.app.state.neonrain.notifier.close()  # held long polls answer now, not in 25 s
            await web.stop()
    return figures


async def run_child(
    url: str,
    discord: FakeDiscord,
    huma: FakeHuma,
    web_url: str,
    reads: list[int],
    tokens: int,
    traced: bool,
    figures: Figures,
) -> None:
    from bench.common import HUMA_KEY, INTERNAL_KEY

    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.worker_memory",
            "--child",
            str(report),
            env={
                **os.environ,
                "NEONRAIN_BACKEND_URL": web_url,
                "INTERNAL_API_KEY": INTERNAL_KEY,
                "HUMA_API_URL": huma.url,
                "HUMA_API_KEY": HUMA_KEY,
                "DISCORD_API_URL": discord.api_url,
                "DISCORD_GATEWAY_URL": discord.gateway_url,
                "NEONRAIN_LOG_LEVEL": "ERROR" if traced else "WARNING",
                TRACE_ENV: "1" if traced else "",
            },
        )
        try:
            await measure(url, discord, huma, child.pid, reads, report, tokens, traced, figures)
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), 15)
            except TimeoutError:
                child.kill()
                await child.wait()


async def measure(
    url: str,
    discord: FakeDiscord,
    huma: FakeHuma,
    pid: int,
    reads: list[int],
    report: Path,
    tokens: int,
    traced: bool,
    figures: Figures,
) -> None:
    from bench.common import seed_accounts, wait_for
    from tests.fakes.fake_discord import FakeGuild

    # Baseline: the worker has read an empty configuration and is long-polling for changes.
    await wait_for(lambda: reads[0] >= 2, 60, "the worker's first configuration reads")
    figures.baseline = await settled_rss(pid)
    figures.heaps["baseline"] = await ask_child(pid, report)

    accounts = await seed_accounts(url, users=tokens, servers_per_user=GUILDS_PER_TOKEN)
    guilds: list[FakeGuild] = []
    for u, account in enumerate(accounts):
        bot = discord.add_bot(account.bot_token, f"BenchBot{u}", bot_id=BOT_ID_BASE + u)
        for s, guild_id in enumerate(account.guild_ids):
            guilds.append(
                discord.add_guild(f"Bench guild {u}-{s}", guild_id=int(guild_id), bots=[bot])
            )
    # Each guild's #general already holds a full history, which its first message will load.
    for g, guild in enumerate(guilds):
        channel = guild.channel_named("general")
        for n in range(HISTORY - 1):
            discord.dispatch_user_message(
                guild.id, channel.id, f"member-{g}-{n % 5}", f"earlier message {n}: {FILLER}"
            )
    started = time.monotonic()
    await announce_change(url)
    await wait_for(
        lambda: all(discord.is_online(a.bot_token) for a in accounts), 60, "every token online"
    )
    # Settled: every guild's nickname is set, the last thing a connection does at start-up.
    await wait_for(
        lambda: len(discord.nickname_changes) >= len(guilds), 60, "the nicknames to be set"
    )
    figures.connect_seconds = time.monotonic() - started
    figures.connected = await settled_rss(pid)
    figures.heaps["connected"] = await ask_child(pid, report)

    # Then one message in every guild: an agent (HUMA connection) and a 50-message history each.
    received = [0]
    huma.event_listeners.append(lambda _event: received.__setitem__(0, received[0] + 1))
    # All at once, as after a restart in a busy hour; in waves under tracemalloc, which slows the
    # worker so much that a thousand starting agents would time out on their own backlog.
    wave = 20 if traced else len(guilds)
    started = time.monotonic()
    for n, guild in enumerate(guilds):
        channel = guild.channel_named("general")
        discord.dispatch_user_message(
            guild.id, channel.id, f"member-{n}", f"hello from member {n}, anyone around?"
        )
        if n % wave == wave - 1:
            await wait_for(reached(received, n + 1), 90, "the wave's context updates")
    await wait_for(lambda: received[0] >= len(guilds), 90, "a context update from every guild")
    figures.agents_seconds = time.monotonic() - started
    figures.active = await settled_rss(pid)
    figures.heaps["active"] = await ask_child(pid, report)


# ------------------------------------------------------------------------------ the worker


def heap_summary() -> dict[str, Any]:
    import gc
    import tracemalloc

    gc.collect()
    summary: dict[str, Any] = {"objects": len(gc.get_objects())}
    if tracemalloc.is_tracing():
        by_package: dict[str, int] = {}
        for stat in tracemalloc.take_snapshot().statistics("traceback"):
            package = _package(stat.traceback)
            by_package[package] = by_package.get(package, 0) + stat.size
        summary["by_package"] = by_package
    return summary


def _package(traceback: Any) -> str:
    """Whom an allocation serves: the innermost frame outside the standard library."""
    innermost_stdlib = ""
    for frame in reversed(list(traceback)):
        name = str(frame.filename)
        if "site-packages/" in name:
            return name.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        if "/neonrain/" in name:
            part = name.rsplit("/neonrain/", 1)[1].split("/", 1)[0].removesuffix(".py")
            return f"neonrain.{part}"
        if not innermost_stdlib:
            parts = name.split("/")
            in_package = len(parts) > 2 and not parts[-2].startswith("python3")
            module = parts[-2] if in_package else parts[-1]
            innermost_stdlib = f"(stdlib) {module.removesuffix('.py')}"
    return innermost_stdlib or "?"


async def child_main(report: Path) -> None:
    from neonrain.cli import setup_logging
    from neonrain.config import get_settings
    from neonrain.worker.manager import run_standalone

    settings = get_settings()
    setup_logging(settings)
    if os.environ.get(TRACE_ENV):
        import tracemalloc

        tracemalloc.start(25)

    def dump() -> None:
        report.write_text(json.dumps(heap_summary()))

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)
    await run_standalone(settings, None)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        asyncio.run(child_main(Path(sys.argv[2])))
        return
    asyncio.run(run())


if __name__ == "__main__":
    main()
