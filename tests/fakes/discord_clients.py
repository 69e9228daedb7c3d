"""Real discord.py clients connected to the fake Discord, with the events they saw recorded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import discord

TOKEN = "bot-token-one"
OTHER_TOKEN = "bot-token-two"

#: What the worker asks for (guilds, guild messages, message content).
WORKER_INTENTS = discord.Intents.none()
WORKER_INTENTS.guilds = True
WORKER_INTENTS.guild_messages = True
WORKER_INTENTS.message_content = True


@dataclass
class RunningClient:
    """A real ``discord.Client`` running against the fake, with its events recorded."""

    client: discord.Client
    task: asyncio.Task[None]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)
    messages: asyncio.Queue[discord.Message] = field(default_factory=asyncio.Queue)
    joined: asyncio.Queue[discord.Guild] = field(default_factory=asyncio.Queue)
    removed: asyncio.Queue[discord.Guild] = field(default_factory=asyncio.Queue)
    threads: asyncio.Queue[tuple[str, discord.Thread]] = field(default_factory=asyncio.Queue)
    ready_count: int = 0

    async def wait_ready(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.ready.wait(), timeout)

    async def next_message(self, timeout: float = 5.0) -> discord.Message:
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def next_thread(self, timeout: float = 5.0) -> tuple[str, discord.Thread]:
        """(``"create"`` or ``"join"``, the thread) of the next thread event."""
        return await asyncio.wait_for(self.threads.get(), timeout)


def start_client(token: str, intents: discord.Intents = WORKER_INTENTS) -> RunningClient:
    client = discord.Client(intents=intents, guild_ready_timeout=0.1, max_messages=100)
    running = RunningClient(client=client, task=asyncio.create_task(client.start(token)))

    @client.event
    async def on_ready() -> None:
        running.ready_count += 1
        running.ready.set()

    @client.event
    async def on_resumed() -> None:
        running.resumed.set()

    @client.event
    async def on_message(message: discord.Message) -> None:
        await running.messages.put(message)

    @client.event
    async def on_guild_join(guild: discord.Guild) -> None:
        await running.joined.put(guild)

    @client.event
    async def on_guild_remove(guild: discord.Guild) -> None:
        await running.removed.put(guild)

    @client.event
    async def on_thread_create(thread: discord.Thread) -> None:
        await running.threads.put(("create", thread))

    @client.event
    async def on_thread_join(thread: discord.Thread) -> None:
        await running.threads.put(("join", thread))

    return running


async def connect(
    clients: list[RunningClient], token: str = TOKEN, intents: discord.Intents = WORKER_INTENTS
) -> RunningClient:
    """Start a client (closed by the ``clients`` fixture) and wait for READY."""
    running = start_client(token, intents)
    clients.append(running)
    await running.wait_ready()
    return running
