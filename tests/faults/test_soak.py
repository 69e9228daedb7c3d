"""A short soak: people keep writing in three servers of two accounts while one fault of each
kind happens (HUMA restarted, the gateway dropped, the web app killed, the worker restarted,
database connections terminated). At the end every message was answered, or superseded by a
newer one (with its log line), or reached the agent before a newer message of its channel was
answered (the reply carries it in its history); the counters are exact and every reply is an
agent action."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import asyncpg
import pytest

from tests import pg
from tests.fakes.fake_huma import FakeHuma
from tests.fakes.fake_huma.server import last_message_text
from tests.worker.conftest import Harness

from .test_faults import BOT_TOKEN, actions, active_server, counts, general, online_worker

MESSAGE_INTERVAL = 1.0
SOAK_SECONDS = 150.0
SUPERSEDED = re.compile(r"reply superseded .*trigger_message=(\d+)")
HANDED = re.compile(r"message handed to agent .*message=(\d+)")


async def answer_with_an_echo(fake: FakeHuma, agent_id: str, content: dict[str, Any]) -> None:
    channel = content["context"]["currentChannel"]["id"]
    await fake.send_message(agent_id, channel, f"ack {last_message_text(content)}")


@pytest.mark.timeout(SOAK_SECONDS + 240)
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_soak_with_one_fault_of_each_kind(
    harness: Harness, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="neonrain")
    servers = [await active_server(harness, f"Server {n}") for n in range(3)]
    worker = await online_worker(harness)
    harness.huma.script(match=lambda _content: True, action=answer_with_an_echo)
    posted: dict[int, str] = {}  # message id -> text
    channel_of: dict[int, int] = {}  # message id -> channel id
    posted_in: dict[int, int] = {}  # guild id -> messages posted there
    stop = asyncio.Event()

    async def people() -> None:
        n = 0
        while not stop.is_set():
            _account, guild = servers[n % len(servers)]
            text = f"m{n}"
            message = await harness.discord.post_user_message(guild.id, general(guild), "ana", text)
            posted[message.id] = text
            channel_of[message.id] = general(guild)
            posted_in[guild.id] = posted_in.get(guild.id, 0) + 1
            n += 1
            await asyncio.sleep(MESSAGE_INTERVAL)

    async def faults() -> None:
        nonlocal worker
        await asyncio.sleep(15)
        await harness.huma.stop()  # HUMA down for ten seconds, back without its agents
        await asyncio.sleep(10)
        harness.huma.agents.clear()
        await harness.huma.start()
        await asyncio.sleep(20)
        await harness.discord.drop_connections(BOT_TOKEN)  # the gateway drops; RESUME
        await asyncio.sleep(20)
        await harness.web.stop()  # the web app killed for eight seconds
        await asyncio.sleep(8)
        await harness.web.start()
        await asyncio.sleep(20)
        await worker.stop()  # the worker restarted; people keep writing meanwhile
        harness.workers.remove(worker)
        await asyncio.sleep(5)
        worker = await online_worker(harness)
        await asyncio.sleep(15)
        database = database_url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(pg.ADMIN_DSN)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await admin.close()

    writer = asyncio.create_task(people())
    await asyncio.wait_for(faults(), timeout=SOAK_SECONDS)
    await asyncio.sleep(10)
    stop.set()
    await writer

    bot_messages: dict[int, list[str]] = {}

    def replies() -> list[str]:
        bot_messages.clear()
        for _account, guild in servers:
            channel = general(guild)
            bot_messages[channel] = [m.content for m in harness.discord.messages_sent_to(channel)]
        return [text for texts in bot_messages.values() for text in texts]

    def logged(pattern: re.Pattern[str]) -> set[int]:
        return {
            int(match.group(1))
            for record in caplog.records
            if (match := pattern.search(record.getMessage()))
        }

    def unaccounted() -> list[str]:
        answered_texts = {text.removeprefix("ack ") for text in replies()}
        answered = {message_id for message_id, text in posted.items() if text in answered_texts}
        gone = logged(SUPERSEDED)
        handed = logged(HANDED)

        def carried(message_id: int) -> bool:
            """It reached the agent and a newer message of its channel was answered."""
            return message_id in handed and any(
                later > message_id and channel_of[later] == channel_of[message_id]
                for later in answered
            )

        return sorted(
            text for message_id, text in posted.items()
            if message_id not in answered and message_id not in gone and not carried(message_id)
        )  # fmt: skip

    try:
        await harness.wait_until(lambda: not unaccounted(), timeout=60, what="every message")
    except AssertionError:
        missing = unaccounted()
        ids = {text: message_id for message_id, text in posted.items()}
        trail = [
            r.getMessage()
            for r in caplog.records
            if any(str(ids[text]) in r.getMessage() for text in missing)
        ]
        raise AssertionError(f"unaccounted: {missing}; their log lines: {trail}") from None
    sent = replies()

    async def exact() -> bool:
        for account, guild in servers:
            received, sent_count = await counts(account, guild)
            if (received, sent_count) != (
                posted_in.get(guild.id, 0),
                len(bot_messages[general(guild)]),
            ):
                return False
        return True

    try:
        await harness.wait_until(exact, timeout=60, what="exact counters")
    except AssertionError:
        found = [
            (guild.name, await counts(account, guild), posted_in.get(guild.id, 0),
             len(bot_messages[general(guild)]))
            for account, guild in servers
        ]  # fmt: skip
        trail = [
            r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING or "replaying" in r.getMessage()
        ]  # fmt: skip
        raise AssertionError(
            f"counters (server, (received, sent), posted, replies): {found}; warnings: {trail}"
        ) from None
    for account, guild in servers:
        recorded = await actions(account, guild)
        assert sorted(a["agentMessage"] for a in recorded) == sorted(bot_messages[general(guild)])
    assert len(sent) == len(set(sent)), "a message was answered twice"
    assert worker.reporter.dropped_actions == 0
