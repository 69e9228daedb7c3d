"""Fixtures for tests that need the fake Discord.

Register with ``pytest_plugins = ["tests.fakes.fake_discord.pytest_plugin"]`` in the root
``conftest.py``, or import the fixtures into a test module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from .server import FakeDiscord


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started fake Discord on an ephemeral port, stopped after the test."""
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def discord_py_at_fake(fake_discord: FakeDiscord) -> Iterator[FakeDiscord]:
    """The fake, with discord.py's REST base and gateway pointed at it for the test."""
    with fake_discord.patch_discord_py():
        yield fake_discord
