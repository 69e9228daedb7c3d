"""The fake gateway's recovery paths: RESUME replay, payloads that crash discord.py's parser, the
message content intent switched off in the portal; and the standalone program's help."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakes.discord_clients import TOKEN, RunningClient, connect, start_client
from tests.fakes.fake_discord import ChannelType, CloseCode, FakeDiscord, FakeGuild, Intent, Op

REPO_ROOT = Path(__file__).resolve().parents[2]
INTENTS = int(Intent.GUILDS | Intent.GUILD_MESSAGES | Intent.MESSAGE_CONTENT)


@pytest.fixture
def guild(fake: FakeDiscord) -> FakeGuild:
    bot = fake.add_bot(TOKEN, "Helper")
    return fake.add_guild("Gateway", bots=[bot])


@contextlib.asynccontextmanager
async def socket(url: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["op"] == Op.HELLO
        yield ws


async def dispatches(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [await ws.receive_json(timeout=5) for _ in range(count)]


async def test_resume_replays_exactly_the_events_after_the_clients_sequence(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    general = guild.channel_named("general").id
    identify = {"token": TOKEN, "intents": INTENTS, "properties": {}}
    async with socket(fake.gateway_url + "?v=10&encoding=json") as ws:
        await ws.send_json({"op": Op.IDENTIFY, "d": identify})
        ready, guild_create = await dispatches(ws, 2)
        await fake.post_user_message(guild.id, general, "ana", "seen")
        (seen,) = await dispatches(ws, 1)
        await ws.close(code=4000)  # not 1000/1001: the session stays resumable
    assert [(p["t"], p["s"]) for p in (ready, guild_create, seen)] == [
        ("READY", 1),
        ("GUILD_CREATE", 2),
        ("MESSAGE_CREATE", 3),
    ]
    session_id = ready["d"]["session_id"]
    await fake.wait_for(lambda: fake.connection_count() == 0)
    for text in ("missed 1", "missed 2"):
        await fake.post_user_message(guild.id, general, "ana", text)

    resume = {"token": TOKEN, "session_id": session_id, "seq": 2}  # as if "seen" never arrived
    async with socket(ready["d"]["resume_gateway_url"]) as ws:
        await ws.send_json({"op": Op.RESUME, "d": resume})
        replayed = await dispatches(ws, 4)
    assert [(p["t"], p["s"]) for p in replayed] == [
        ("MESSAGE_CREATE", 3),
        ("MESSAGE_CREATE", 4),
        ("MESSAGE_CREATE", 5),
        ("RESUMED", 6),
    ]
    assert [p["d"]["content"] for p in replayed[:3]] == ["seen", "missed 1", "missed 2"]
    assert [login.kind for login in fake.logins] == ["identify", "resume"]

    # A sequence the session never reached cannot be resumed.
    async with socket(fake.resume_gateway_url) as ws:
        await ws.send_json({"op": Op.RESUME, "d": {**resume, "seq": 99}})
        assert await ws.receive_json(timeout=5) == {"op": 9, "d": False, "s": None, "t": None}


async def test_discord_py_resumes_and_gets_what_it_missed_in_order(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    general = guild.channel_named("general").id
    await fake.drop_connections(TOKEN)
    for i in range(5):
        await fake.post_user_message(guild.id, general, "ana", f"while away {i}")
    await asyncio.wait_for(running.resumed.wait(), 10)
    got = [(await running.next_message()).content for _ in range(5)]
    assert got == [f"while away {i}" for i in range(5)]
    assert running.ready_count == 1  # resumed, not identified again


async def test_a_payload_that_crashes_discord_pys_parser(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    assert await fake.send_parser_crash(TOKEN, guild.id) == 1
    with pytest.raises(KeyError, match="bitrate"):
        await asyncio.wait_for(running.task, 5)
    # The broken channel is not part of the guild: a new client starts cleanly.
    assert all(c.name != "broken-voice" for c in guild.channels)
    again = await connect(clients)
    assert again.client.get_guild(guild.id) is not None


async def test_a_malformed_channel_crashes_every_start_until_it_is_fixed(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    broken = fake.add_channel(guild.id, "Bad Voice", ChannelType.GUILD_VOICE, omit=["bitrate"])
    running = start_client(TOKEN)
    clients.append(running)
    with pytest.raises(KeyError, match="bitrate"):
        await asyncio.wait_for(running.task, 10)
    broken.omit = frozenset()
    fixed = await connect(clients)
    seen = fixed.client.get_channel(broken.id)
    assert isinstance(seen, discord.VoiceChannel) and seen.bitrate == 64000


async def test_message_content_intent_switched_off_in_the_portal_closes_4014(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    first = await connect(clients)
    fake.bots[TOKEN].message_content_intent = False
    await first.client.close()
    # The next IDENTIFY (a restarted worker) asks for an intent the bot no longer has.
    running = start_client(TOKEN)
    clients.append(running)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(running.task, 10)
    assert fake.closed_connections[-1] == (fake.bots[TOKEN].id, CloseCode.DISALLOWED_INTENTS)
    # Without the intent in IDENTIFY the bot connects, and content arrives blank.
    without = discord.Intents(guilds=True, guild_messages=True)
    blind = await connect(clients, TOKEN, without)
    await fake.post_user_message(guild.id, guild.channel_named("general").id, "ana", "hidden")
    assert (await blind.next_message()).content == ""


def test_the_standalone_fake_has_a_proper_program_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.fakes.fake_discord", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith("usage: python -m tests.fakes.fake_discord ")
    assert "--port" in result.stdout and "--token" in result.stdout
