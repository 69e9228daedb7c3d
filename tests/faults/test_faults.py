"""Faults, one at a time, each asserting that nothing is lost and the service comes back: HUMA
down and back, the gateway dropped and resumed, the web app killed under a separate worker,
database connections terminated during writes, a report the web app refuses, a worker
restarted while people kept writing, and one stopped while its reply was being posted."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import pytest

from tests import pg
from tests.fakes.fake_discord import FakeGuild
from tests.worker.conftest import Account, Harness

#: Each scenario is bounded, but waits out outages and backoffs on a busy machine.
pytestmark = pytest.mark.timeout(300)

BOT_TOKEN = "bot-token-alpha.1234567890.abcdefghij"
#: HUMA's return to the agents' answering again (the issue's target).
HUMA_RETURN_TARGET_SECONDS = 10.0


def general(guild: FakeGuild) -> int:
    return int(guild.channel_named("general").id)


async def active_server(harness: Harness, name: str = "Gaming Hub") -> tuple[Account, FakeGuild]:
    if BOT_TOKEN not in harness.discord.bots:
        harness.discord.add_bot(BOT_TOKEN, "Neon")
    guild = harness.discord.add_guild(name, bots=[BOT_TOKEN])
    account = await harness.account(f"owner-{guild.id}@example.com")
    await account.connect(BOT_TOKEN)
    await account.add_server(guild, botActive=True)
    return account, guild


async def online_worker(harness: Harness) -> Any:
    worker = await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=15)
    return worker


async def counts(account: Account, guild: FakeGuild) -> tuple[int, int]:
    server = await account.server(guild)
    return server["messagesReceivedCount"], server["messagesSentCount"]


async def actions(account: Account, guild: FakeGuild) -> list[dict[str, Any]]:
    response = await account.call(
        "GET", f"/api/servers/{account.servers[str(guild.id)]}/actions?limit=50"
    )
    found: list[dict[str, Any]] = response.json()["actions"]
    return found


async def wait_for_counts(
    harness: Harness, account: Account, guild: FakeGuild, received: int, sent: int
) -> None:
    async def reached() -> bool:
        return await counts(account, guild) == (received, sent)

    await harness.wait_until(reached, timeout=30, what=f"counts {received} received, {sent} sent")


async def wait_for_an_action(harness: Harness, account: Account, guild: FakeGuild) -> None:
    """The reporter takes an action off its queue when it sends it: the web app has it once that
    request is answered, not as soon as the queue is empty."""

    async def recorded() -> bool:
        return bool(await actions(account, guild))

    await harness.wait_until(recorded, timeout=30, what=f"an agent action in {guild.name}")


async def test_agents_answer_again_soon_after_a_huma_outage(harness: Harness) -> None:
    account, guild = await active_server(harness)
    await online_worker(harness)
    harness.huma.script("ping", reply="pong")
    await harness.discord.post_user_message(guild.id, general(guild), "ana", "ping one")
    await harness.discord.wait_for_bot_message(general(guild), timeout=15)

    await harness.huma.stop()
    await harness.discord.post_user_message(guild.id, general(guild), "ana", "ping two")
    await asyncio.sleep(12)  # long enough for the reconnect backoff to reach its cap
    harness.huma.agents.clear()  # and HUMA lost its agents in the restart
    await harness.huma.start()
    back = time.monotonic()
    reply = await harness.discord.wait_for_bot_message(
        general(guild), timeout=30, predicate=lambda m: m.content == "pong" and m.id > 0
    )
    assert reply.content == "pong"
    accepted = [c for c in harness.huma.connections if c.accepted and c.at >= back]
    assert accepted, "the agent reconnected"
    assert accepted[0].at - back <= HUMA_RETURN_TARGET_SECONDS
    # The message written during the outage was answered (its update was kept and delivered).
    await harness.wait_until(
        lambda: len(harness.discord.messages_sent_to(general(guild))) >= 2,
        timeout=15,
        what="the reply to the message written during the outage",
    )
    await wait_for_counts(harness, account, guild, received=2, sent=2)


async def test_messages_sent_while_the_gateway_was_down_arrive_on_resume(
    harness: Harness,
) -> None:
    account, guild = await active_server(harness)
    await online_worker(harness)
    await harness.discord.drop_connections(BOT_TOKEN)
    for n in range(3):
        await harness.discord.post_user_message(guild.id, general(guild), "ana", f"during {n}")
    await harness.wait_until(
        lambda: (
            sum("during" in e.content["description"] for e in harness.huma.context_updates()) >= 1
        ),
        timeout=20,
        what="the replayed messages",
    )
    await wait_for_counts(harness, account, guild, received=3, sent=0)


async def test_a_separate_worker_keeps_answering_while_the_web_app_is_killed(
    harness: Harness,
) -> None:
    account, guild = await active_server(harness)
    worker = await online_worker(harness)
    harness.huma.script("are you there", reply="Still here.")
    await harness.web.stop()
    await harness.discord.post_user_message(guild.id, general(guild), "ana", "are you there")
    reply = await harness.discord.wait_for_bot_message(general(guild), timeout=15)
    assert reply.content == "Still here."
    await harness.web.start()
    await wait_for_counts(harness, account, guild, received=1, sent=1)
    await wait_for_an_action(harness, account, guild)
    await harness.wait_until(lambda: not worker.reporter._actions, timeout=30)
    assert worker.reporter.dropped_actions == 0
    (action,) = await actions(account, guild)
    assert action["agentMessage"] == "Still here."


async def test_a_report_the_web_app_refuses_never_stops_the_others(harness: Harness) -> None:
    """A server deleted while its agent action waited in the worker's queue: that action is
    refused for good (404) and dropped; the other server's action and the status still arrive."""
    doomed_account, doomed = await active_server(harness, "Doomed")
    kept_account, kept = await active_server(harness, "Kept")
    worker = await online_worker(harness)
    harness.huma.script("hello", reply="Hello!")
    await harness.web.stop()
    for guild in (doomed, kept):
        await harness.discord.post_user_message(guild.id, general(guild), "ana", "hello")
        await harness.discord.wait_for_bot_message(general(guild), timeout=15)
    await harness.wait_until(lambda: len(worker.reporter._actions) == 2, timeout=10)
    await harness.web.start()
    await doomed_account.call("DELETE", f"/api/servers/{doomed_account.servers[str(doomed.id)]}")
    await harness.wait_until(lambda: not worker.reporter._actions, timeout=60)
    await wait_for_an_action(harness, kept_account, kept)
    await harness.wait_until(
        lambda: worker.reporter.dropped_actions >= 1, timeout=30, what="the refused action dropped"
    )
    assert worker.reporter.dropped_actions == 1
    (action,) = await actions(kept_account, kept)
    assert action["agentMessage"] == "Hello!"
    # The status report travels on its own (its own backoff): it arrives too.

    async def online() -> bool:
        status = (await kept_account.call("GET", "/api/discord/status")).json()
        return bool(status["worker"]["state"] == "online")

    await harness.wait_until(online, timeout=30, what="the worker's status delivered")


async def test_a_worker_restarted_while_people_wrote_catches_up(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="neonrain.worker")
    account, guild = await active_server(harness)
    worker = await online_worker(harness)
    harness.huma.script("first", reply="Got the first.")
    harness.huma.script("third", reply="Caught up with the third.")
    await harness.discord.post_user_message(guild.id, general(guild), "ana", "first")
    await harness.discord.wait_for_bot_message(general(guild), timeout=15)
    await wait_for_counts(harness, account, guild, received=1, sent=1)
    await worker.stop()
    harness.workers.remove(worker)
    second = await harness.discord.post_user_message(guild.id, general(guild), "ana", "second")
    await harness.discord.post_user_message(guild.id, general(guild), "ana", "third")
    await online_worker(harness)
    reply = await harness.discord.wait_for_bot_message(
        general(guild), timeout=20, predicate=lambda m: m.content.startswith("Caught up")
    )
    assert reply.content == "Caught up with the third."
    await wait_for_counts(harness, account, guild, received=3, sent=2)
    # The second is answered through the third, and the log says so.
    superseded = [r.getMessage() for r in caplog.records if "reply superseded" in r.getMessage()]
    assert len(superseded) == 1
    assert f"trigger_message={second.id}" in superseded[0]
    assert "while the worker was away" in superseded[0]


async def test_a_worker_stopped_while_a_reply_is_being_posted_counts_it(
    harness: Harness,
) -> None:
    account, guild = await active_server(harness)
    worker = await online_worker(harness)
    harness.huma.script("ping", reply="pong")
    slow_post = harness.discord.add_failure(
        f"/channels/{general(guild)}/messages", method="POST", status=None, delay=2.0, times=1
    )
    await harness.discord.post_user_message(guild.id, general(guild), "ana", "ping")
    await harness.wait_until(lambda: slow_post.hits == 1, timeout=20, what="the reply posting")
    await worker.stop()  # while Discord takes its time to answer the post
    harness.workers.remove(worker)
    assert [m.content for m in harness.discord.messages_sent_to(general(guild))] == ["pong"]
    await wait_for_counts(harness, account, guild, received=1, sent=1)
    assert [a["agentMessage"] for a in await actions(account, guild)] == ["pong"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_database_connections_terminated_during_writes_lose_nothing(
    harness: Harness, database_url: str
) -> None:
    account, guild = await active_server(harness)
    await online_worker(harness)
    database = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg.ADMIN_DSN)
    try:
        for n in range(6):
            await harness.discord.post_user_message(guild.id, general(guild), "ana", f"m{n}")
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            await asyncio.sleep(0.3)
    finally:
        await admin.close()
    await wait_for_counts(harness, account, guild, received=6, sent=0)
