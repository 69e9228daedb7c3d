"""Threads and forum posts in the fake Discord, seen by a real discord.py client."""

from __future__ import annotations

import discord
import httpx
import pytest

from tests.fakes.discord_clients import TOKEN, RunningClient, connect
from tests.fakes.fake_discord import (
    ChannelType,
    FakeDiscord,
    FakeGuild,
    MessageType,
    Permission,
)

AUTH = {"Authorization": f"Bot {TOKEN}"}


@pytest.fixture
def guild(fake: FakeDiscord) -> FakeGuild:
    bot = fake.add_bot(TOKEN, "Helper")
    guild = fake.add_guild("Threads", bots=[bot])
    fake.add_channel(guild.id, "help", ChannelType.GUILD_FORUM)
    fake.add_channel(guild.id, "news", ChannelType.GUILD_ANNOUNCEMENT)
    return guild


async def test_a_thread_message_arrives_with_the_thread_as_channel(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    general = guild.channel_named("general").id
    started = await fake.post_user_message(guild.id, general, "ana", "shall we talk?")
    await running.next_message()

    thread = await fake.create_thread(
        guild.id, general, "side talk", author="ana", from_message=started.id
    )
    event, seen = await running.next_thread()
    assert (event, seen.id, seen.name, seen.parent_id) == (
        "create",
        started.id,
        "side talk",
        general,
    )
    assert seen.owner_id == started.author_id and seen.type is discord.ChannelType.public_thread

    posted = await fake.post_user_message(guild.id, thread.id, "bo", "in the thread")
    message = await running.next_message()
    assert message.id == posted.id and message.content == "in the thread"
    assert isinstance(message.channel, discord.Thread) and message.channel.id == thread.id
    assert message.channel.parent_id == general
    assert [m.content for m in fake.history(thread.id)] == ["in the thread"]
    assert thread.message_count == 1 and thread.last_message_id == posted.id
    # The starting message now carries its thread, and discord.py's cached copy learnt it.
    assert fake.history(general)[0].thread is thread
    (cached,) = [m for m in running.client.cached_messages if m.id == started.id]
    assert cached.flags.has_thread
    assert cached.thread is not None and cached.thread.id == thread.id


async def test_a_public_thread_without_a_message_leaves_a_notice_in_its_channel(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    general = guild.channel_named("general").id
    thread = await fake.create_thread(guild.id, general, "ideas", author="ana")

    notice = await running.next_message()
    assert notice.type is discord.MessageType.thread_created and notice.content == "ideas"
    assert notice.reference is not None and notice.reference.channel_id == thread.id
    assert fake.history(general)[-1].type == MessageType.THREAD_CREATED


async def test_a_forum_post_is_a_thread_whose_first_message_has_its_id(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    forum = guild.channel_named("help")
    post = await fake.create_thread(guild.id, forum.id, "How do I?", author="cy", content="Help!")

    event, seen = await running.next_thread()
    assert event == "create" and isinstance(seen.parent, discord.ForumChannel)
    opening = await running.next_message()
    assert opening.id == post.id == seen.id and opening.content == "Help!"
    assert isinstance(opening.channel, discord.Thread)
    assert forum.last_message_id == post.id
    assert post.message_count == 0  # Discord does not count a post's opening message
    # A forum channel itself holds no messages.
    with pytest.raises(discord.HTTPException) as refused:
        await running.client.http.send_message(forum.id, params=_content("no"))
    assert refused.value.code == 50008


async def test_announcement_threads_and_private_threads(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    news = await fake.create_thread(guild.id, guild.channel_named("news").id, "n", author="ana")
    assert news.type == ChannelType.ANNOUNCEMENT_THREAD
    assert (await running.next_thread())[1].type is discord.ChannelType.news_thread
    await running.next_message()  # its notice in #news

    general = guild.channel_named("general").id
    secret = await fake.create_thread(guild.id, general, "secret", author="ana", private=True)
    await fake.post_user_message(guild.id, secret.id, "ana", "only us")
    await fake.post_user_message(guild.id, general, "ana", "visible")
    # The bot is not a member of the private thread: neither the thread nor its messages came.
    assert (await running.next_message()).content == "visible"
    assert running.threads.empty()
    assert not fake.permissions_in(secret.id, TOKEN) & Permission.VIEW_CHANNEL

    await fake.add_thread_member(secret.id, fake.bots[TOKEN])
    event, seen = await running.next_thread()
    assert (event, seen.id) == ("join", secret.id) and seen.is_private()
    await fake.post_user_message(guild.id, secret.id, "ana", "welcome, bot")
    assert (await running.next_message()).content == "welcome, bot"
    guild_seen = running.client.get_guild(guild.id)
    assert guild_seen is not None and guild_seen.get_thread(secret.id) is not None


async def test_the_bot_replies_in_a_thread_and_joins_it(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    general = guild.channel_named("general").id
    thread = await fake.create_thread(guild.id, general, "t", author="ana")
    await fake.post_user_message(guild.id, thread.id, "ana", "bot, are you there?")
    await running.next_message()  # the notice in #general
    asked = await running.next_message()
    assert isinstance(asked.channel, discord.Thread)

    reply = await asked.reply("here")
    sent = await fake.wait_for_bot_message(thread.id)
    assert (sent.id, sent.channel_id, sent.reference_id) == (reply.id, thread.id, asked.id)
    assert fake.bots[TOKEN].id in thread.members
    history = [m.content async for m in asked.channel.history(limit=10)]
    assert history == ["here", "bot, are you there?"]
    fetched = await running.client.fetch_channel(thread.id)
    assert isinstance(fetched, discord.Thread) and fetched.parent_id == general


async def test_sending_in_a_thread_needs_send_messages_in_threads(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    general = guild.channel_named("general").id
    thread = await fake.create_thread(guild.id, general, "t", author="ana")
    everyone = Permission(fake.everyone_role(guild.id).permissions)
    fake.set_role_permissions(guild.id, guild.id, everyone & ~Permission.SEND_MESSAGES_IN_THREADS)
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        in_thread = await http.post(
            f"/channels/{thread.id}/messages", headers=AUTH, json={"content": "x"}
        )
        in_channel = await http.post(
            f"/channels/{general}/messages", headers=AUTH, json={"content": "x"}
        )
        typing = await http.post(f"/channels/{thread.id}/typing", headers=AUTH)
    assert (in_thread.status_code, in_thread.json()) == (
        403,
        {"message": "Missing Permissions", "code": 50013},
    )
    assert in_channel.status_code == 200
    assert typing.status_code == 403


async def test_threads_are_rejected_where_discord_has_none(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    voice = guild.channel_named("General").id
    with pytest.raises(ValueError):
        await fake.create_thread(guild.id, voice, "no", author="ana")
    with pytest.raises(ValueError):
        await fake.create_thread(guild.id, guild.channel_named("news").id, "x", private=True)


def _content(text: str) -> discord.http.MultipartParameters:
    return discord.http.handle_message_parameters(content=text)
