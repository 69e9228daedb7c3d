"""Fixtures for the OpenAI-compatible engine: the fake model server, and a chat surface double
that is both the agent's ToolHost and its ConversationSource and records what it is asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from neonrain.huma import ChannelRef, FetchedMessages, ServerConfig, ToolError, Website
from neonrain.openai_engine import (
    ChatLine,
    EngineError,
    EngineListener,
    EngineState,
    OpenAIAgent,
    OpenAIEndpoint,
)
from tests.fakes.fake_huma import ManualClock
from tests.fakes.fake_openai import FakeOpenAI

API_KEY = "sk-test-Zq8uNVc1pXw3"
MODEL = "test-model"
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

CONFIG = ServerConfig(
    bot_name="Nova",
    server_name="Rust Lovers",
    personality="Speaks like a pirate.",
    rules="No spam in #general.",
    information="The crate is called ferrisbox.",
    websites=(Website("Docs", "https://ferrisbox.dev/docs", "# Docs\n\nInstall with cargo.", NOW),),
)


class Surface:
    """A chat surface: channels with their history, the configuration, and records of every
    ToolHost call (typing carries the clock's time)."""

    def __init__(self, clock: ManualClock, channels: Mapping[str, str] | None = None) -> None:
        self.clock = clock
        self.config = CONFIG
        self.names = dict(channels or {"c1": "general", "c2": "random"})
        self.history: dict[str, list[ChatLine]] = {c: [] for c in self.names}
        self.typing: list[tuple[str, float]] = []
        self.sent: list[tuple[str, str, float]] = []
        self.recorded: list[tuple[str, str]] = []
        self.fetched: list[tuple[str, int]] = []
        self.reads: list[tuple[str, int, float]] = []
        self.fail_send: str | None = None
        #: When set, sending waits for it (``sending`` is set once a send has begun).
        self.hold_send: asyncio.Event | None = None
        self.sending = asyncio.Event()
        self._minute = 0

    # -- what a test does

    def say(self, channel_id: str, author: str, content: str) -> None:
        """A person writes in the channel (the agent is told separately)."""
        self._minute += 1
        self.history[channel_id].append(
            ChatLine(author, content, NOW + timedelta(minutes=self._minute))
        )

    # -- ConversationSource

    def agent_config(self) -> ServerConfig:
        return self.config

    def channel_name(self, channel_id: str) -> str:
        return self.names[channel_id]

    def channels(self) -> Sequence[ChannelRef]:
        return [ChannelRef(i, n) for i, n in self.names.items()]

    async def recent_lines(self, channel_id: str, limit: int) -> Sequence[ChatLine]:
        self.reads.append((channel_id, limit, self.clock.now))
        return list(self.history[channel_id][-limit:])

    # -- ToolHost

    async def check_channel(self, channel_id: str) -> None:
        if channel_id not in self.names:
            raise ToolError(f"Channel {channel_id} is not a text channel of this server.")

    async def show_typing(self, channel_id: str) -> None:
        self.typing.append((channel_id, self.clock.now))

    async def send_text(self, channel_id: str, text: str) -> None:
        if self.fail_send:
            raise ToolError(self.fail_send)
        self.sending.set()
        if self.hold_send is not None:
            await self.hold_send.wait()
        self.sent.append((channel_id, text, self.clock.now))

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        self.recorded.append((channel_id, text))
        self._minute += 1
        self.history[channel_id].append(
            ChatLine("Nova", text, NOW + timedelta(minutes=self._minute), from_agent=True)
        )
        return None

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        self.fetched.append((channel_id, limit))
        lines = [
            f"[{line.timestamp.isoformat()}] {line.author}: {line.content}"
            for line in self.history[channel_id]
        ]
        return FetchedMessages(self.names[channel_id], lines[-limit:])


class RecordingListener(EngineListener):
    def __init__(self) -> None:
        self.states: list[tuple[EngineState, str | None]] = []
        self.canceled: list[tuple[str, str, str]] = []
        self.failures: list[tuple[str, EngineError]] = []

    async def state_changed(self, state: EngineState, detail: str | None) -> None:
        self.states.append((state, detail))

    async def pending_canceled(self, tool_call_id: str, channel_id: str, reason: str) -> None:
        self.canceled.append((tool_call_id, channel_id, reason))

    async def turn_failed(self, channel_id: str, error: EngineError) -> None:
        self.failures.append((channel_id, error))


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=API_KEY, model=MODEL) as server:
        yield server


AgentFactory = Callable[..., OpenAIAgent]


@pytest.fixture
async def make_agent(fake: FakeOpenAI) -> AsyncIterator[AgentFactory]:
    """Build agents against the fake (auto clock unless one is given); all closed at the end."""
    agents: list[OpenAIAgent] = []

    def factory(
        surface: Surface,
        *,
        api_key: str | None = API_KEY,
        listener: EngineListener | None = None,
        **kwargs: Any,
    ) -> OpenAIAgent:
        agent = OpenAIAgent(
            endpoint=OpenAIEndpoint(base_url=fake.base_url, model=MODEL, api_key=api_key),
            host=surface,
            source=surface,
            listener=listener,
            clock=surface.clock,
            wall_clock=lambda: NOW,
            **kwargs,
        )
        agents.append(agent)
        return agent

    yield factory
    for agent in agents:
        await agent.close()


def surface_with(clock: ManualClock | None = None, **changes: Any) -> Surface:
    surface = Surface(clock or ManualClock(auto=True))
    if changes:
        surface.config = replace(CONFIG, **changes)
    return surface
