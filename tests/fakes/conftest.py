"""Fixtures of the fakes' own tests: a started fake Discord with discord.py pointed at it, and
the discord.py clients a test starts (closed afterwards)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest_asyncio

from tests.fakes.discord_clients import RunningClient
from tests.fakes.fake_discord import FakeDiscord


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        with server.patch_discord_py():
            yield server


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[list[RunningClient]]:
    """Clients started by a test; closed (and their tasks awaited) afterwards."""
    started: list[RunningClient] = []
    yield started
    for running in started:
        await running.client.close()
        with contextlib.suppress(discord.DiscordException, aiohttp.ClientError, OSError, KeyError):
            await asyncio.wait_for(running.task, 5)
