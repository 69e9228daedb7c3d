"""The real worker against fake Discord, fake HUMA and the real web app (the seed's checklist)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.conftest import TEST_INTERNAL_KEY
from tests.fakes.fake_discord import FakeGuild
from tests.webapp import free_port
from tests.worker.conftest import HUMA_KEY, Harness

BOT_TOKEN = "bot-token-alpha.1234567890.abcdefghij"
OTHER_TOKEN = "bot-token-bravo.1234567890.abcdefghij"


def general(guild: FakeGuild) -> int:
    return int(guild.channel_named("general").id)


async def context_updates_for(harness: Harness, guild: FakeGuild) -> list[Any]:
    return [
        e
        for e in harness.huma.events
        if e.is_context_update and e.content["context"]["guild"]["id"] == str(guild.id)
    ]


async def setup_one(harness: Harness, **config: Any) -> tuple[Any, FakeGuild]:
    harness.discord.add_bot(BOT_TOKEN, "Neon")
    guild = harness.discord.add_guild("Gaming Hub", bots=[BOT_TOKEN])
    account = await harness.account("ada@example.com")
    await account.connect(BOT_TOKEN)
    await account.add_server(guild, **config)
    return account, guild


async def test_worker_monitors_only_active_servers(harness: Harness) -> None:
    account, guild = await setup_one(harness)  # added, switched off
    worker = await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "anyone here?")
    await asyncio.sleep(0.5)
    assert await context_updates_for(harness, guild) == []
    assert harness.huma.agents == {} or len(harness.huma.agents) == 0

    # Switching it on makes the next message reach an agent.
    await account.configure(guild, botActive=True)
    await harness.wait_until(
        lambda: worker.manager.clients[BOT_TOKEN].accounts[account.user_id].active_guilds,
        what="the worker to see the server switched on",
    )
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "hello bot")
    update = await harness.huma.wait_for_event(lambda e: e.is_context_update, timeout=10)
    assert "hello bot" in update.content["description"]

    # Switching it off stops the flow within one sync.
    await account.configure(guild, botActive=False)
    await harness.wait_until(
        lambda: not worker.manager.clients[BOT_TOKEN].accounts[account.user_id].active_guilds,
        what="the worker to see the server switched off",
    )
    before = len(await context_updates_for(harness, guild))
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "still there?")
    await asyncio.sleep(0.5)
    assert len(await context_updates_for(harness, guild)) == before


async def test_huma_agents_receive_the_correct_per_server_configuration(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="neonrain")
    harness.discord.add_bot(BOT_TOKEN, "Neon")
    gaming = harness.discord.add_guild("Gaming Hub", bots=[BOT_TOKEN])
    support = harness.discord.add_guild("Support Desk", bots=[BOT_TOKEN])
    account = await harness.account("ada@example.com")
    await account.connect(BOT_TOKEN)
    await account.add_server(
        gaming,
        botName="Pixel",
        personality="Playful and loud",
        rules="No spoilers",
        information="Game night is Friday",
        botActive=True,
    )
    await account.add_server(
        support,
        botName="Helper",
        personality="Calm and precise",
        rules="Be polite",
        information="Support hours 9-17",
        botActive=True,
    )
    await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    await harness.discord.post_user_message(
        gaming.id, general(gaming), "alice", "when is game night"
    )
    await harness.discord.post_user_message(support.id, general(support), "bob", "is support open")
    await harness.huma.wait_for_agent(count=2, timeout=10)
    await harness.huma.wait_until(lambda: len(harness.huma.context_updates()) >= 2, timeout=10)

    agents = {a.metadata["className"]: a for a in harness.huma.agents.values()}
    assert set(agents) == {"Pixel", "Helper"}
    assert agents["Pixel"].name == "Discord-Gaming Hub"
    assert "Playful and loud" in agents["Pixel"].metadata["personality"]
    assert "No spoilers" in agents["Pixel"].metadata["instructions"]
    assert "Calm and precise" in agents["Helper"].metadata["personality"]
    by_guild = {
        e.content["context"]["guild"]["id"]: e.content["context"]
        for e in harness.huma.context_updates()
    }
    gaming_context = by_guild[str(gaming.id)]
    assert gaming_context["customPersonality"] == "Playful and loud"
    assert gaming_context["customRules"] == "No spoilers"
    assert gaming_context["userInformation"] == "Game night is Friday"
    assert gaming_context["you"] == {"name": "Pixel"}
    assert "when is game night" in gaming_context["currentChannel"]["conversationHistory"]
    support_context = by_guild[str(support.id)]
    assert support_context["customRules"] == "Be polite"
    assert support_context["userInformation"] == "Support hours 9-17"
    assert "when is game night" not in support_context["currentChannel"]["conversationHistory"]
    # Each agent only connects as itself: two agents, two sockets, none shared.
    assert len({e.agent_id for e in harness.huma.context_updates()}) == 2
    # The bot's nickname in each server is that server's bot name.
    await harness.discord.wait_for(
        lambda: (
            harness.discord.nickname(gaming.id, BOT_TOKEN) == "Pixel"
            and harness.discord.nickname(support.id, BOT_TOKEN) == "Helper"
        ),
        timeout=10,
    )
    # The log tells what happened, with ids, and never a secret.
    assert f"guild={gaming.id}" in caplog.text and "message handed to agent" in caplog.text
    assert BOT_TOKEN not in caplog.text and HUMA_KEY not in caplog.text


async def test_stats_are_tracked_per_server(harness: Harness) -> None:
    harness.discord.add_bot(BOT_TOKEN, "Neon")
    gaming = harness.discord.add_guild("Gaming Hub", bots=[BOT_TOKEN])
    support = harness.discord.add_guild("Support Desk", bots=[BOT_TOKEN])
    account = await harness.account("ada@example.com")
    await account.connect(BOT_TOKEN)
    await account.add_server(gaming, botActive=True)
    await account.add_server(support, botActive=True)
    harness.huma.script("ping", reply="pong")
    await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    # One reply at a time: a newer send_message would supersede one still being typed.
    await harness.discord.post_user_message(gaming.id, general(gaming), "alice", "ping one")
    await harness.discord.wait_for_bot_message(general(gaming), timeout=10)
    await harness.discord.post_user_message(gaming.id, general(gaming), "alice", "just chatting")
    await harness.discord.post_user_message(gaming.id, general(gaming), "alice", "ping two")
    await harness.discord.wait_for_bot_message(general(gaming), timeout=10)
    await harness.discord.post_user_message(support.id, general(support), "bob", "hello")

    async def counts() -> tuple[tuple[int, int], tuple[int, int]]:
        g, s = await account.server(gaming), await account.server(support)
        return (
            (g["messagesReceivedCount"], g["messagesSentCount"]),
            (s["messagesReceivedCount"], s["messagesSentCount"]),
        )

    async def settled() -> bool:
        return await counts() == ((3, 2), (1, 0))

    await harness.wait_until(settled, what="per-server counts")
    stats = (
        await account.call("GET", f"/api/servers/{account.servers[str(gaming.id)]}/stats?days=1")
    ).json()
    assert stats["days"][-1]["messagesReceived"] == 3
    assert stats["days"][-1]["messagesSent"] == 2


async def test_send_message_arrives_after_typing_and_is_recorded_as_an_action(
    harness: Harness,
) -> None:
    account, guild = await setup_one(harness, botActive=True, botName="Pixel")
    harness.huma.script("help", reply="Sure, the rules are pinned in #general.")
    await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    await harness.discord.post_user_message(guild.id, general(guild), "carol", "earlier chatter")
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "can you help me?")
    reply = await harness.discord.wait_for_bot_message(general(guild), timeout=10)
    assert reply.content == "Sure, the rules are pinned in #general."
    # The typing indicator came first, then the message (after the typing delay).
    paths = [f"{r.method} {r.path}" for r in harness.discord.requests]
    typing_at = next(i for i, p in enumerate(paths) if p.endswith(f"{general(guild)}/typing"))
    sent_at = next(
        i for i, p in enumerate(paths) if p.startswith("POST") and p.endswith("/messages")
    )
    assert typing_at < sent_at
    result = await harness.huma.wait_for_event(lambda e: e.is_tool_result, timeout=10)
    assert result.content["success"] is True
    assert result.content["skipImmediateProcessing"] is True
    assert "Sure, the rules" in result.content["context"]["currentChannel"]["conversationHistory"]

    async def action() -> Any:
        body = (
            await account.call(
                "GET", f"/api/servers/{account.servers[str(guild.id)]}/actions?limit=5"
            )
        ).json()
        return body["actions"]

    await harness.wait_until(action, what="the agent action")
    recorded = (await action())[0]
    assert recorded["agentMessage"] == "Sure, the rules are pinned in #general."
    assert recorded["channelName"] == "general"
    assert recorded["triggerDescription"] == "User alice in #general: can you help me?"
    preceding = recorded["messageHistory"]["preceding"]
    assert [m["content"] for m in preceding][-2:] == ["earlier chatter", "can you help me?"]
    assert recorded["messageHistory"]["agentResponse"]["content"] == reply.content


async def test_a_tool_call_for_a_channel_in_another_guild_is_refused(harness: Harness) -> None:
    _account, guild = await setup_one(harness, botActive=True)
    elsewhere = harness.discord.add_guild("Elsewhere", bots=[BOT_TOKEN])
    await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "hi")
    agent = await harness.huma.wait_for_agent(timeout=10)
    await harness.huma.wait_for_event(lambda e: e.is_context_update, timeout=10)
    call_id = await harness.huma.send_message(agent.id, str(general(elsewhere)), "sneaky")
    result = await harness.huma.wait_for_tool_result(call_id, timeout=10)
    assert result.content["success"] is False
    assert "not a text channel of this server" in result.content["error"]
    fetch_id = await harness.huma.call_tool(
        agent.id, "fetch_channel_messages", {"channel_id": str(general(elsewhere))}
    )
    fetched = await harness.huma.wait_for_tool_result(fetch_id, timeout=10)
    assert fetched.content["success"] is False
    await asyncio.sleep(0.3)
    assert harness.discord.messages_sent_to(general(elsewhere)) == []


async def test_two_users_in_the_same_guild_get_separate_agents(harness: Harness) -> None:
    harness.discord.add_bot(BOT_TOKEN, "Neon")
    harness.discord.add_bot(OTHER_TOKEN, "Volt")
    guild = harness.discord.add_guild("Shared Guild", bots=[BOT_TOKEN, OTHER_TOKEN])
    ada = await harness.account("ada@example.com")
    grace = await harness.account("grace@example.com")
    await ada.connect(BOT_TOKEN)
    await grace.connect(OTHER_TOKEN)
    await ada.add_server(guild, botName="AdaBot", personality="Ada's voice", botActive=True)
    await grace.add_server(guild, botName="GraceBot", personality="Grace's voice", botActive=True)
    worker = await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    await harness.discord.wait_for_online(OTHER_TOKEN, timeout=10)
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "hello both")
    await harness.huma.wait_for_agent(count=2, timeout=10)
    await harness.huma.wait_until(lambda: len(harness.huma.context_updates()) >= 2, timeout=10)
    personalities = sorted(
        e.content["context"]["customPersonality"] for e in harness.huma.context_updates()
    )
    assert personalities == ["Ada's voice", "Grace's voice"]
    assert set(worker.manager.clients) == {BOT_TOKEN, OTHER_TOKEN}

    # Removing one token leaves the other user's agent running.
    await ada.call("POST", "/api/discord/disconnect")
    await harness.wait_until(lambda: BOT_TOKEN not in worker.manager.clients, what="token stop")
    await harness.discord.wait_for(lambda: not harness.discord.is_online(BOT_TOKEN), timeout=10)
    grace_agent = worker.manager.clients[OTHER_TOKEN].agents[(grace.user_id, str(guild.id))]
    assert grace_agent.session is not None and grace_agent.session.state == "connected"
    count = len(harness.huma.context_updates())
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "just grace now")
    await harness.huma.wait_until(lambda: len(harness.huma.context_updates()) == count + 1)
    assert harness.huma.context_updates()[-1].content["context"]["you"] == {"name": "GraceBot"}


async def test_an_invalid_token_is_reported_once_and_not_retried(harness: Harness) -> None:
    account, _guild = await setup_one(harness, botActive=True)
    harness.discord.revoke_token(BOT_TOKEN)
    await harness.start_worker()

    async def state() -> Any:
        status = (await account.call("GET", "/api/discord/status")).json()
        return status["worker"]["state"]

    await harness.wait_until(lambda: _eq(state(), "token_invalid"), what="token_invalid")
    logins = len([r for r in harness.discord.requests if r.path.endswith("/users/@me")])
    await asyncio.sleep(1.5)
    assert len([r for r in harness.discord.requests if r.path.endswith("/users/@me")]) == logins
    assert harness.discord.connection_count(BOT_TOKEN) == 0


async def _eq(awaitable: Any, value: Any) -> bool:
    return bool(await awaitable == value)


async def test_a_huma_disconnect_reconnects_without_losing_the_next_message(
    harness: Harness,
) -> None:
    account, guild = await setup_one(harness, botActive=True)
    worker = await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "first")
    agent = await harness.huma.wait_for_agent(timeout=10)
    await harness.huma.wait_until(lambda: len(harness.huma.context_updates()) == 1)
    session = worker.manager.clients[BOT_TOKEN].agents[(account.user_id, str(guild.id))].session
    await harness.huma.drop_connections(agent.id)
    await harness.wait_until(lambda: session.state != "connected", what="the drop to be noticed")
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "second")
    await harness.huma.wait_until(lambda: len(harness.huma.context_updates()) == 2, timeout=15)
    last = harness.huma.context_updates()[-1]
    assert last.agent_id == agent.id  # the same agent, reconnected
    assert "second" in last.content["description"]
    assert len(harness.huma.agents) == 1


async def test_the_web_app_going_away_leaves_the_worker_on_its_last_configuration(
    harness: Harness,
) -> None:
    _account, guild = await setup_one(harness, botActive=True)
    worker = await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    await harness.web.stop()
    await asyncio.sleep(1.0)
    assert BOT_TOKEN in worker.manager.clients
    await harness.discord.post_user_message(guild.id, general(guild), "alice", "are you there")
    update = await harness.huma.wait_for_event(lambda e: e.is_context_update, timeout=10)
    assert "are you there" in update.content["description"]
    await harness.web.start()
    # Stats counted while it was away are delivered once it is back.
    await harness.wait_until(
        lambda: worker.reporter.requests_sent > 0 and not worker.reporter._stats,
        timeout=15,
        what="stats delivered after the web app came back",
    )


def test_sigterm_stops_a_standalone_worker_within_10_seconds(tmp_path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NEONRAIN_", "HUMA_"))},
        "INTERNAL_API_KEY": TEST_INTERNAL_KEY,
        "NEONRAIN_BACKEND_URL": f"http://127.0.0.1:{free_port()}",  # nobody there
        "HUMA_API_KEY": HUMA_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "neonrain", "worker", "--shard", "0/2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(2.5)
        assert process.poll() is None
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read() if process.stdout else ""
    assert process.returncode == 0, output
    assert "shard 0/2" in output
    assert "worker stopped" in output
    assert TEST_INTERNAL_KEY not in output and HUMA_KEY not in output


@pytest.mark.parametrize("shard", ["2/2", "x", "1/0"])
def test_worker_refuses_a_bad_shard(shard: str, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "neonrain", "worker", "--shard", shard],
        env={**os.environ, "INTERNAL_API_KEY": "k"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--shard takes I/N" in result.stderr
