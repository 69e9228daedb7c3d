"""Fixtures for the HUMA client tests: a fake HUMA server and a recording tool host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from neonrain.huma import (
    AgentSession,
    ChannelRef,
    ConnectionState,
    FetchedMessages,
    ServerConfig,
    SessionListener,
    ToolError,
    build_agent_metadata,
    build_context,
    discord_agent_name,
)
from neonrain.huma.prompt import Platform
from tests.fakes.fake_huma import FakeHuma, ManualClock

API_KEY = "test-key-123"


class RecordingHost:
    """A ToolHost that records what the runtime asks of the chat surface."""

    def __init__(self, channels: Mapping[str, str] | None = None) -> None:
        self.channels = dict(channels or {"c1": "general", "c2": "random"})
        self.sent: list[tuple[str, str]] = []
        self.typing: list[tuple[str, float]] = []
        self.recorded: list[tuple[str, str]] = []
        self.history: list[str] = ["[2024-01-01T00:00:00Z] alice: hello bot\n"]
        self.fail_send: str | None = None
        self.crash_send = False
        #: When set, sending waits for it (``sending`` is set once a send has begun).
        self.hold_send: asyncio.Event | None = None
        self.sending = asyncio.Event()
        self.clock: ManualClock | None = None

    async def check_channel(self, channel_id: str) -> None:
        if channel_id not in self.channels:
            raise ToolError(f"Channel {channel_id} is not in this server")

    async def show_typing(self, channel_id: str) -> None:
        self.typing.append((channel_id, self.clock.now if self.clock else 0.0))

    async def send_text(self, channel_id: str, text: str) -> None:
        if self.crash_send:
            raise RuntimeError("boom")
        if self.fail_send:
            raise ToolError(self.fail_send)
        self.sending.set()
        if self.hold_send is not None:
            await self.hold_send.wait()
        self.sent.append((channel_id, text))

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        self.recorded.append((channel_id, text))
        self.history.append(f"[2024-01-01T00:00:05Z] Nova: {text}\n")
        return {
            "currentChannel": {
                "id": channel_id,
                "name": self.channels[channel_id],
                "conversationHistory": "".join(self.history),
            }
        }

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        lines = [f"[2024-01-01T00:00:0{i}Z] bob: line {i}\n" for i in range(3)]
        return FetchedMessages(self.channels[channel_id], lines[-limit:])


@pytest.fixture
async def fake_huma() -> AsyncIterator[FakeHuma]:
    async with FakeHuma(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def host() -> RecordingHost:
    return RecordingHost()


class RecordingListener(SessionListener):
    """A SessionListener that records every notification."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str | None]] = []
        self.states: list[str] = []
        self.errors: list[tuple[str | None, str]] = []
        self.canceled: list[tuple[str, str, str]] = []

    async def agent_created(self, agent_id: str, previous_id: str | None) -> None:
        self.created.append((agent_id, previous_id))

    async def state_changed(self, state: ConnectionState) -> None:
        self.states.append(state)

    async def agent_error(self, code: str | None, message: str) -> None:
        self.errors.append((code, message))

    async def pending_canceled(self, tool_call_id: str, channel_id: str, reason: str) -> None:
        self.canceled.append((tool_call_id, channel_id, reason))


CONFIG = ServerConfig(
    bot_name="Nova",
    server_name="Rust Lovers",
    personality="Speaks like a pirate.",
    rules="Be kind.",
    information="The crate is ferrisbox.",
)


def context_for(host: RecordingHost, channel_id: str = "c1") -> dict[str, Any]:
    return build_context(
        CONFIG,
        guild_id="g1",
        you="Nova",
        current_channel=ChannelRef(channel_id, host.channels[channel_id]),
        history=host.history,
        monitored_channels=[ChannelRef(k, v) for k, v in host.channels.items()],
        all_channels=[ChannelRef(k, v) for k, v in host.channels.items()],
    )


SessionFactory = Callable[..., Awaitable[AgentSession]]


@pytest.fixture
async def make_session(fake_huma: FakeHuma, host: RecordingHost) -> AsyncIterator[SessionFactory]:
    """Build (and start, unless start=False) sessions against the fake; all closed at the end."""
    sessions: list[AgentSession] = []

    async def factory(
        *,
        clock: ManualClock | None = None,
        start: bool = True,
        platform: Platform = "discord",
        api_key: str = API_KEY,
        listener: SessionListener | None = None,
        **kwargs: Any,
    ) -> AgentSession:
        clock = clock or ManualClock(auto=True)
        host.clock = clock
        session = AgentSession(
            api_url=fake_huma.url,
            api_key=api_key,
            name=discord_agent_name(CONFIG.server_name),
            metadata=build_agent_metadata(CONFIG, platform),
            host=host,
            listener=listener,
            clock=clock,
            **kwargs,
        )
        sessions.append(session)
        if start:
            await session.start()
        return session

    yield factory
    for session in sessions:
        await session.close()
