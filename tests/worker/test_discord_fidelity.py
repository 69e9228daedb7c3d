"""The worker against a Discord with threads, permissions, nicknames, rate limits and crashes:
what real servers show on day one (the fake enforces Discord's rules)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from neonrain.contract import WorkerTokenState
from tests.fakes.fake_discord import ChannelType, FakeGuild, Permission
from tests.worker.conftest import Account, Harness

BOT_TOKEN = "bot-token-alpha.1234567890.abcdefghij"


def channel_id(guild: FakeGuild, name: str) -> int:
    return int(guild.channel_named(name).id)


async def active_server(harness: Harness, **config: Any) -> tuple[Account, FakeGuild]:
    harness.discord.add_bot(BOT_TOKEN, "Neon")
    guild = harness.discord.add_guild("Gaming Hub", bots=[BOT_TOKEN])
    account = await harness.account("ada@example.com")
    await account.connect(BOT_TOKEN)
    await account.add_server(guild, botActive=True, **config)
    return account, guild


async def online_worker(harness: Harness) -> Any:
    worker = await harness.start_worker()
    await harness.discord.wait_for_online(BOT_TOKEN, timeout=10)
    await harness.wait_until(
        lambda: (
            BOT_TOKEN in worker.manager.clients
            and worker.manager.clients[BOT_TOKEN].state == "online"
        ),
        what="the worker online",
    )
    return worker


def report_of(worker: Any, account: Account) -> WorkerTokenState:
    report = worker.reporter.current_state(account.user_id)
    assert report is not None
    return report  # type: ignore[no-any-return]


async def test_the_agent_replies_inside_a_thread_and_a_forum_post(harness: Harness) -> None:
    _account, guild = await active_server(harness)
    general = channel_id(guild, "general")
    forum = harness.discord.add_channel(guild.id, "help", ChannelType.GUILD_FORUM)
    await online_worker(harness)
    harness.huma.script("in the thread", reply="Answered in the thread.")
    harness.huma.script("how do I", reply="Answered in the post.")

    said = await harness.discord.post_user_message(guild.id, general, "ana", "starting a thread")
    thread = await harness.discord.create_thread(
        guild.id, general, "side talk", author="ana", from_message=said.id
    )
    await harness.discord.post_user_message(guild.id, thread.id, "ana", "question in the thread")
    reply = await harness.discord.wait_for_bot_message(thread.id, timeout=10)
    assert reply.content == "Answered in the thread."

    post = await harness.discord.create_thread(
        guild.id, forum.id, "Setup", author="bo", content="how do I install it?"
    )
    reply = await harness.discord.wait_for_bot_message(post.id, timeout=10)
    assert reply.content == "Answered in the post."
    # The thread's history is its own: the agent saw the thread's messages, not general's.
    update = next(
        e
        for e in harness.huma.context_updates()
        if e.content["context"]["currentChannel"]["id"] == str(thread.id)
    )
    history = update.content["context"]["currentChannel"]["conversationHistory"]
    assert "question in the thread" in history and "starting a thread" not in history


async def test_a_channel_the_bot_cannot_read_is_silent_and_never_offered(
    harness: Harness,
) -> None:
    _account, guild = await active_server(harness)
    secret = harness.discord.add_channel(guild.id, "secret")
    harness.discord.set_overwrite(secret.id, guild.id, deny=Permission.VIEW_CHANNEL)
    await online_worker(harness)

    await harness.discord.post_user_message(guild.id, secret.id, "ana", "psst, hidden")
    await harness.discord.post_user_message(
        guild.id, channel_id(guild, "general"), "ana", "hello everyone"
    )
    update = await harness.huma.wait_for_event(lambda e: e.is_context_update, timeout=10)
    context = update.content["context"]
    offered = {c["id"] for c in context["allChannels"]} | {
        c["id"] for c in context["monitoredChannels"]
    }
    assert str(secret.id) not in offered
    await asyncio.sleep(0.5)
    assert all("hidden" not in e.content["description"] for e in harness.huma.context_updates())


async def test_the_channels_offered_follow_the_bots_permissions_while_online(
    harness: Harness,
) -> None:
    """The readable channels are kept per guild between messages; a role given to the bot
    (GUILD_MEMBER_UPDATE) and a channel's overwrite (CHANNEL_UPDATE) change them for the very
    next message."""
    _account, guild = await active_server(harness)
    general = channel_id(guild, "general")
    secret = harness.discord.add_channel(guild.id, "secret")
    harness.discord.set_overwrite(secret.id, guild.id, deny=Permission.VIEW_CHANNEL)
    insiders = harness.discord.add_role(guild.id, "insiders")
    harness.discord.set_overwrite(secret.id, insiders, allow=Permission.VIEW_CHANNEL)
    await online_worker(harness)

    async def offered_after(text: str) -> set[str]:
        await harness.discord.post_user_message(guild.id, general, "ana", text)
        update = await harness.huma.wait_for_event(
            lambda e: e.is_context_update and text in e.content["description"], timeout=10
        )
        return {c["id"] for c in update.content["context"]["allChannels"]}

    assert str(secret.id) not in await offered_after("first question")
    assert str(secret.id) not in await offered_after("second question")  # kept, still hidden
    harness.discord.give_role(guild.id, harness.discord.bots[BOT_TOKEN], insiders)
    assert str(secret.id) in await offered_after("third question")
    harness.discord.set_overwrite(secret.id, insiders, deny=Permission.VIEW_CHANNEL)
    assert str(secret.id) not in await offered_after("fourth question")


async def test_a_refused_send_is_logged_once_and_reported(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="neonrain")
    account, guild = await active_server(harness)
    general = channel_id(guild, "general")
    worker = await online_worker(harness)
    harness.discord.add_failure(
        f"/channels/{general}/messages",
        method="POST",
        status=403,
        body={"message": "Missing Permissions", "code": 50013},
    )
    harness.huma.script("please answer", reply="I would like to.")

    def results() -> list[Any]:
        return [e for e in harness.huma.events if e.is_tool_result]

    async def answered(count: int) -> None:
        await harness.huma.wait_until(lambda: len(results()) >= count, timeout=10)

    for attempt in range(2):
        await harness.discord.post_user_message(
            guild.id, general, "ana", f"please answer {attempt}"
        )
        await answered(attempt + 1)
    answers = results()
    assert all(r.content["success"] is False for r in answers)
    assert "Missing Permissions" in answers[0].content["error"]
    refusals = [r for r in caplog.records if "discord refused the bot" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    await harness.wait_until(
        lambda: "Missing Permissions" in report_of(worker, account).guilds[0].problem,
        what="the refusal in the worker's report",
    )
    assert harness.discord.messages_sent_to(general) == []


async def test_the_bot_cannot_send_where_discord_would_refuse(harness: Harness) -> None:
    account, guild = await active_server(harness)
    general = channel_id(guild, "general")
    harness.discord.set_overwrite(
        general, harness.discord.bots[BOT_TOKEN].id, deny=Permission.SEND_MESSAGES
    )
    worker = await online_worker(harness)
    harness.huma.script("hello", reply="Hi!")
    await harness.discord.post_user_message(guild.id, general, "ana", "hello bot")
    result = await harness.huma.wait_for_event(lambda e: e.is_tool_result, timeout=10)
    assert result.content["success"] is False
    assert "not allowed to send" in result.content["error"]
    (guild_report,) = report_of(worker, account).guilds
    assert guild_report.channels_sendable == guild_report.channels_readable - 1
    assert guild_report.problem == "the bot may not send messages there in #general"
    assert not [r for r in harness.discord.requests if r.method == "POST" and "messages" in r.path]


async def test_one_person_has_one_name_in_history_and_live(harness: Harness) -> None:
    _account, guild = await active_server(harness)
    general = channel_id(guild, "general")
    harness.discord.add_member(guild.id, "ana", nick="Ana (moderator)", global_name="Ana Smith")
    # Said before the worker started: read back over REST, without the member.
    await harness.discord.post_user_message(guild.id, general, "ana", "earlier remark")
    await online_worker(harness)
    await harness.discord.post_user_message(guild.id, general, "ana", "live question")
    update = await harness.huma.wait_for_event(lambda e: e.is_context_update, timeout=10)
    history = update.content["context"]["currentChannel"]["conversationHistory"]
    assert "Ana (moderator): earlier remark" in history
    assert "Ana (moderator): live question" in history
    assert "Ana Smith" not in history


async def test_a_burst_of_long_replies_respects_the_rate_limits(harness: Harness) -> None:
    """Five 2,000-character chunks at once in a channel that allows three per two seconds:
    discord.py reads the rate-limit headers and waits; nothing is lost, no 429 is left over."""
    _account, guild = await active_server(harness)
    general = channel_id(guild, "general")
    harness.discord.set_rate_limit("POST /channels/{channel_id}/messages", 3, 2.0)
    await online_worker(harness)
    long_reply = "\n\n".join(f"Paragraph {n}: " + "word " * 350 for n in range(5))
    harness.huma.script("tell me everything", reply=long_reply)
    await harness.discord.post_user_message(guild.id, general, "ana", "tell me everything")
    result = await harness.huma.wait_for_event(lambda e: e.is_tool_result, timeout=30)
    assert result.content["success"] is True, result.content
    sent = harness.discord.messages_sent_to(general)
    assert len(sent) >= 5 and all(len(m.content) <= 2000 for m in sent)
    assert " ".join(m.content for m in sent).split() == long_reply.split()
    # discord.py waits ahead on the headers; a 429 that still happens is retried by it, and
    # never reaches the agent as a failure (the tool result above is a success).
    assert all(not hit.injected for hit in harness.discord.rate_limit_hits)


async def test_a_crashed_client_is_restarted_and_reported_truthfully(harness: Harness) -> None:
    account, guild = await active_server(harness)
    worker = await online_worker(harness)
    client = worker.manager.clients[BOT_TOKEN]
    states: list[tuple[str, str | None]] = []
    original = worker.reporter.state

    def spy(report: WorkerTokenState) -> None:
        if report.user_id == account.user_id:
            states.append((report.state, report.reason))
        original(report)

    worker.reporter.state = spy
    await harness.discord.send_parser_crash(BOT_TOKEN, guild.id)
    await harness.wait_until(
        lambda: ("connecting", "crashed") in states, timeout=10, what="the crash reported"
    )
    await harness.wait_until(
        lambda: client.state == "online" and states[-1] == ("online", None),
        timeout=15,
        what="the client back online",
    )
    crashed_at = states.index(("connecting", "crashed"))
    assert ("offline", None) not in states[crashed_at:]
    harness.huma.script("still there", reply="Yes!")
    await harness.discord.post_user_message(
        guild.id, channel_id(guild, "general"), "ana", "still there?"
    )
    reply = await harness.discord.wait_for_bot_message(channel_id(guild, "general"), timeout=10)
    assert reply.content == "Yes!"


async def test_a_missing_intent_is_reported_and_kept_through_retries(harness: Harness) -> None:
    harness.discord.add_bot(BOT_TOKEN, "Neon")
    harness.discord.bots[BOT_TOKEN].message_content_intent = False
    guild = harness.discord.add_guild("Gaming Hub", bots=[BOT_TOKEN])
    account = await harness.account("ada@example.com")
    await account.connect(BOT_TOKEN)
    await account.add_server(guild, botActive=True)
    worker = await harness.start_worker()
    await harness.wait_until(
        lambda: (
            (r := worker.reporter.current_state(account.user_id)) is not None
            and r.reason == "intent_missing"
        ),
        timeout=15,
        what="the missing intent reported",
    )
    report = report_of(worker, account)
    assert report.state == "offline" and "message content intent" in report.detail
    client = worker.manager.clients[BOT_TOKEN]
    client.set_state("connecting", "gateway connection lost; resuming")  # a reconnect attempt
    assert report_of(worker, account).reason == "intent_missing"
    assert "message content intent" in report_of(worker, account).detail
