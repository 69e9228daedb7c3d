"""Where and when the bot speaks, end to end: the real worker, fake Discord and fake HUMA, the
configuration set through the public API (behaviour.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fakes.fake_discord import FakeGuild
from tests.worker.conftest import Account, Harness

BOT_TOKEN = "bot-token-alpha.1234567890.abcdefghij"


def channel_id(guild: FakeGuild, name: str) -> int:
    return int(guild.channel_named(name).id)


async def server_with(harness: Harness, **config: Any) -> tuple[Account, FakeGuild]:
    harness.discord.add_bot(BOT_TOKEN, "Neon")
    guild = harness.discord.add_guild("Gaming Hub", bots=[BOT_TOKEN])
    account = await harness.account("ada@example.com")
    await account.connect(BOT_TOKEN)
    await account.add_server(guild, botActive=True, botName="Nova", **config)
    worker = await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=15)
    await harness.wait_until(
        lambda: worker.manager.clients[BOT_TOKEN].state == "online", what="online"
    )
    return account, guild


def descriptions(harness: Harness) -> list[str]:
    return [e.content["description"] for e in harness.huma.context_updates()]


async def tool_results(harness: Harness, count: int) -> None:
    """Wait until the fake HUMA has received ``count`` tool results."""
    await harness.huma.wait_until(
        lambda: len([e for e in harness.huma.events if e.is_tool_result]) >= count, timeout=10
    )


async def quiet_for_a_moment() -> None:
    await asyncio.sleep(0.8)


async def test_unwatched_channels_and_their_threads_are_ignored(harness: Harness) -> None:
    account, guild = await server_with(harness)
    general, other = channel_id(guild, "general"), channel_id(guild, "random")
    await account.configure(guild, channelMode="only", channelIds=[str(general)])
    await asyncio.sleep(0.5)  # the delta reaches the worker
    await harness.discord.post_user_message(guild.id, other, "ana", "outside the scope")
    said = await harness.discord.post_user_message(guild.id, general, "ana", "thread starter")
    thread = await harness.discord.create_thread(
        guild.id, other, "side", author="ana", from_message=None
    )
    await harness.discord.post_user_message(guild.id, thread.id, "ana", "in a thread outside")
    inside = await harness.discord.create_thread(
        guild.id, general, "inside", author="ana", from_message=said.id
    )
    await harness.discord.post_user_message(guild.id, inside.id, "ana", "in a watched thread")
    await harness.huma.wait_until(
        lambda: any("in a watched thread" in d for d in descriptions(harness)), timeout=10
    )
    await quiet_for_a_moment()
    assert not any("outside" in d for d in descriptions(harness))
    # Not counted, and no history loaded for the unwatched channel.
    server = await account.server(guild)
    assert server["messagesReceivedCount"] == 2
    assert not [
        r for r in harness.discord.requests if r.method == "GET" and f"/channels/{other}/" in r.path
    ]


async def test_mentioned_mode_asks_the_agent_only_when_addressed(harness: Harness) -> None:
    account, guild = await server_with(harness, replyMode="mentioned")
    general = channel_id(guild, "general")
    bot_id = harness.discord.bots[BOT_TOKEN].id
    harness.huma.script(match=lambda _content: True, reply="Here I am.", times=1)
    await harness.discord.post_user_message(guild.id, general, "ana", f"<@{bot_id}> answer me")
    reply = await harness.discord.wait_for_bot_message(general, timeout=10)
    for text in ("what does nova think", "supernova is a big word", "nobody talks to the bot"):
        await harness.discord.post_user_message(guild.id, general, "ana", text)
        await asyncio.sleep(0.3)
    await harness.discord.post_user_message(
        guild.id, general, "bo", "a reply to the bot", reply_to=reply.id
    )
    await harness.huma.wait_until(
        lambda: any("a reply to the bot" in d for d in descriptions(harness)), timeout=10
    )
    await quiet_for_a_moment()
    asked = descriptions(harness)
    assert any("answer me" in d for d in asked)
    assert any("what does nova think" in d for d in asked)
    assert not any("supernova" in d or "nobody talks" in d for d in asked)
    # Every message entered the history: the last update shows the unaddressed ones too.
    history = harness.huma.context_updates()[-1].content["context"]["currentChannel"][
        "conversationHistory"
    ]
    assert "supernova is a big word" in history and "nobody talks to the bot" in history
    server = await account.server(guild)
    assert server["messagesReceivedCount"] == 5


async def test_shadow_mode_posts_nothing_and_records_drafts(harness: Harness) -> None:
    account, guild = await server_with(harness, replyMode="silent")
    general = channel_id(guild, "general")
    harness.huma.script("hello", reply="A draft that stays unseen.")
    await harness.discord.post_user_message(guild.id, general, "ana", "hello bot")
    result = await harness.huma.wait_for_event(lambda e: e.is_tool_result, timeout=10)
    assert result.content["success"] is True
    await quiet_for_a_moment()
    assert harness.discord.messages_sent_to(general) == []
    assert not harness.discord.typing_calls
    server_id = account.servers[str(guild.id)]

    async def draft_recorded() -> bool:
        response = await account.call("GET", f"/api/servers/{server_id}/actions?delivered=false")
        return bool(response.json()["actions"])

    await harness.wait_until(draft_recorded, timeout=10, what="the draft")
    response = await account.call("GET", f"/api/servers/{server_id}/actions")
    (action,) = response.json()["actions"]
    assert (action["delivered"], action["heldBack"]) == (False, "silent")
    assert action["agentMessage"] == "A draft that stays unseen."
    stats = (await account.call("GET", f"/api/servers/{server_id}/stats?days=1")).json()
    assert stats["days"][-1]["messagesHeldBack"] == 1
    assert (await account.server(guild))["messagesSentCount"] == 0


async def test_reply_limits_hold_back_with_an_error_the_agent_understands(
    harness: Harness,
) -> None:
    account, guild = await server_with(harness, maxRepliesPerHour=2, minSecondsBetweenReplies=0)
    general, other = channel_id(guild, "general"), channel_id(guild, "random")
    harness.huma.script("question", reply="An answer.")
    for n, channel in enumerate((general, other, general)):
        await harness.discord.post_user_message(guild.id, channel, "ana", f"question {n}")
        await tool_results(harness, n + 1)
    results = [e.content for e in harness.huma.events if e.is_tool_result]
    assert [r["success"] for r in results] == [True, True, False]
    assert "reply limit is reached" in results[2]["error"]
    assert "next message is possible in" in results[2]["error"]
    server_id = account.servers[str(guild.id)]

    async def held_back() -> list[Any]:
        response = await account.call("GET", f"/api/servers/{server_id}/actions?delivered=false")
        actions: list[Any] = response.json()["actions"]
        return actions

    await harness.wait_until(held_back, timeout=10, what="the held-back draft")
    (draft,) = await held_back()
    assert draft["heldBack"] == "rate_limited"


async def test_a_send_inside_the_channel_gap_is_held_back(harness: Harness) -> None:
    _account, guild = await server_with(harness, minSecondsBetweenReplies=600)
    general, other = channel_id(guild, "general"), channel_id(guild, "random")
    harness.huma.script("question", reply="An answer.")
    for n, channel in enumerate((general, general, other)):
        await harness.discord.post_user_message(guild.id, channel, "ana", f"question {n}")
        await tool_results(harness, n + 1)
    results = [e.content for e in harness.huma.events if e.is_tool_result]
    assert [r["success"] for r in results] == [True, False, True]  # the gap is per channel
    assert len(harness.discord.messages_sent_to(general)) == 1


async def test_a_mode_change_applies_to_the_next_message_without_reconnecting(
    harness: Harness,
) -> None:
    account, guild = await server_with(harness)
    general = channel_id(guild, "general")
    harness.huma.script("hi", reply="Hi there.")
    await harness.discord.post_user_message(guild.id, general, "ana", "hi one")
    await harness.discord.wait_for_bot_message(general, timeout=10)
    logins = len(harness.discord.logins)
    await account.configure(guild, replyMode="silent")
    await asyncio.sleep(0.5)
    await harness.discord.post_user_message(guild.id, general, "ana", "hi two")
    await harness.huma.wait_until(
        lambda: len([e for e in harness.huma.events if e.is_tool_result]) >= 2, timeout=10
    )
    await quiet_for_a_moment()
    assert len(harness.discord.messages_sent_to(general)) == 1  # the second was a draft
    assert len(harness.discord.logins) == logins
