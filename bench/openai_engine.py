"""The OpenAI-compatible engine's own cost per message, without the model's time.

The fake model server runs as its own process (``python -m tests.fakes.fake_openai``), so this
process's CPU time (``time.process_time``) is the client side only. Each message goes the whole
way: ``OpenAIAgent.message`` → burst wait (0 s here) → turn → system message and history → model
call → ``send_message`` tool call → typing (a clock that does not sleep) → ``send_text`` on a host
that does nothing → tool result → second model call → end of turn. Two model calls per message.

The engine's own cost is the CPU of a message minus the CPU spent inside the SDK's
``chat.completions.create`` (timed by a wrapper around that method; nothing else runs meanwhile,
messages being answered one after the other). The reference, measured in the same run and
interleaved with it (so both see the same machine load), is the bare round trip of a turn's first
request through the same SDK: one ``chat.completions.create`` with the same messages and tools.

Run from the repository root::

    .venv/bin/python -m bench.openai_engine [--messages 100] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
from openai.resources.chat.completions import AsyncCompletions

from bench.common import print_figure, print_header
from neonrain.huma import ChannelRef, FetchedMessages, ServerConfig, Website
from neonrain.openai_engine import ChatLine, OpenAIAgent, OpenAIEndpoint, build_messages
from neonrain.openai_engine.client import NO_API_KEY
from neonrain.openai_engine.prompt import function_tools
from tests.webapp import free_port

CHANNEL = "100000000000000001"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HISTORY = 20
WEBSITE_CHARS = 10_000


class SdkTimer:
    """CPU seconds spent inside ``AsyncCompletions.create``, whoever calls it."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.calls = 0

    def install(self) -> None:
        original = AsyncCompletions.create

        async def timed(completions: AsyncCompletions, *args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return await original(completions, *args, **kwargs)
            finally:
                self.cpu += time.process_time() - started
                self.calls += 1

        setattr(AsyncCompletions, "create", timed)  # noqa: B010 - a method replaced on purpose


class InstantClock:
    """Real monotonic time, but the delays (burst wait, typing) do not wait."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


class NoOpSurface:
    """A ToolHost and ConversationSource that does nothing and always has the same history."""

    def __init__(self) -> None:
        self.config = ServerConfig(
            bot_name="Nova",
            server_name="Bench Server",
            personality="Calm and precise.",
            rules="Be kind. No spam.",
            information="The product is a benchmark.",
            websites=(Website("Docs", "https://example.com/docs", "x" * WEBSITE_CHARS, NOW),),
        )
        self.lines = [
            ChatLine(f"user{i % 5}", f"message number {i} about the benchmark", NOW + timedelta(i))
            for i in range(HISTORY)
        ]
        self.sent = 0

    def agent_config(self) -> ServerConfig:
        return self.config

    def channel_name(self, channel_id: str) -> str:
        return "general"

    def channels(self) -> Sequence[ChannelRef]:
        return [ChannelRef(CHANNEL, "general")]

    async def recent_lines(self, channel_id: str, limit: int) -> Sequence[ChatLine]:
        return self.lines[-limit:]

    async def check_channel(self, channel_id: str) -> None:
        return None

    async def show_typing(self, channel_id: str) -> None:
        return None

    async def send_text(self, channel_id: str, text: str) -> None:
        self.sent += 1

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        return None

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        return FetchedMessages("general", [])


async def _engine_batch(
    agent: OpenAIAgent, surface: NoOpSurface, timer: SdkTimer, count: int
) -> tuple[float, float, float]:
    """CPU, CPU inside the SDK and wall seconds for ``count`` messages, one after the other."""
    before, sdk_before, calls_before = surface.sent, timer.cpu, timer.calls
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        agent.message(CHANNEL)
        await agent.wait_idle()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if surface.sent - before != count or timer.calls - calls_before != 2 * count:
        raise RuntimeError(f"expected {count} messages and {2 * count} model calls")
    return cpu, timer.cpu - sdk_before, wall


async def _reference_batch(
    sdk: openai.AsyncOpenAI, surface: NoOpSurface, count: int
) -> tuple[float, float]:
    """CPU and wall seconds for ``count`` bare SDK round trips of a turn's first request."""
    messages = build_messages(
        surface.config,
        platform="discord",
        channel=ChannelRef(CHANNEL, "general"),
        history=surface.lines,
        now=NOW,
    )
    tools = function_tools("discord")
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        completion = await sdk.chat.completions.create(
            model="fake-model", messages=messages, tools=tools, tool_choice="auto"
        )
        if not completion.choices[0].message.tool_calls:
            raise RuntimeError("the fake should answer with a tool call")
    return time.process_time() - cpu, time.perf_counter() - wall


async def _start_fake(port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.fake_openai",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    banner = await asyncio.wait_for(process.stdout.readline(), 30)
    if b"listening" not in banner:
        raise RuntimeError(f"the fake did not start: {banner!r}")
    return process


async def main(messages: int, rounds: int) -> None:
    print_header(
        "OpenAI-compatible engine: CPU per message, model time excluded",
        "none (the fake model server in its own process)",
        {
            "messages": f"{messages} per batch, {rounds} rounds, engine and reference interleaved",
            "turn": "1 message → 2 model calls (send_message, then none) → 1 send_text",
            "prompt": f"{HISTORY} history lines, 1 website of {WEBSITE_CHARS:,} characters",
        },
    )
    port = free_port()
    fake = await _start_fake(port)
    surface = NoOpSurface()
    endpoint = OpenAIEndpoint(f"http://127.0.0.1:{port}/v1", "fake-model")
    agent = OpenAIAgent(
        endpoint=endpoint,
        host=surface,
        source=surface,
        clock=InstantClock(),
        quiet_seconds=0.0,
        max_wait_seconds=0.0,
        log_fields="bench=1",
    )
    # The SDK client as ModelClient configures it, without the engine around it.
    reference = openai.AsyncOpenAI(base_url=endpoint.base_url, api_key=NO_API_KEY, max_retries=0)
    timer = SdkTimer()
    timer.install()
    engine_cpu: list[float] = []
    engine_own: list[float] = []
    reference_cpu: list[float] = []
    engine_wall: list[float] = []
    reference_wall: list[float] = []
    try:
        await _engine_batch(agent, surface, timer, 20)  # warm up: imports, connections
        await _reference_batch(reference, surface, 20)
        for _ in range(rounds):
            cpu, inside_sdk, wall = await _engine_batch(agent, surface, timer, messages)
            engine_cpu.append(cpu / messages)
            engine_own.append((cpu - inside_sdk) / messages)
            engine_wall.append(wall / messages)
            cpu, wall = await _reference_batch(reference, surface, messages)
            reference_cpu.append(cpu / messages)
            reference_wall.append(wall / messages)
    finally:
        await agent.close()
        await reference.close()
        fake.terminate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(fake.communicate(), 10)

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000.0

    engine, own, bare = ms(engine_cpu), ms(engine_own), ms(reference_cpu)
    print("medians over the rounds, CPU time of this process:")
    print_figure("engine, whole message (2 model calls)", f"{engine:.3f} ms CPU")
    print_figure("  of which the engine's own (outside the SDK)", f"{own:.3f} ms CPU")
    print_figure("  of which in the SDK, per model call", f"{(engine - own) / 2:.3f} ms CPU")
    print_figure("reference: bare SDK round trip", f"{bare:.3f} ms CPU")
    print_figure("engine's own cost / reference round trip", f"{own / bare:.2f}x")
    print("wall time per message (includes the fake's time):")
    print_figure("engine, per message", f"{ms(engine_wall):.3f} ms")
    print_figure("reference round trip", f"{ms(reference_wall):.3f} ms")
    low, high = min(engine_own) * 1000.0, max(engine_own) * 1000.0
    print(f"rounds: the engine's own cost ranged from {low:.3f} to {high:.3f} ms CPU per message")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.openai_engine", description=__doc__)
    parser.add_argument("--messages", type=int, default=100, help="messages per batch")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse_args()
    asyncio.run(main(arguments.messages, arguments.rounds))
