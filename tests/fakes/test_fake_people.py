"""People in the fake Discord: mentions, replies, nicknames and global names."""

from __future__ import annotations

import discord
import httpx
import pytest

from tests.fakes.discord_clients import (
    OTHER_TOKEN,
    TOKEN,
    WORKER_INTENTS,
    RunningClient,
    connect,
)
from tests.fakes.fake_discord import FakeDiscord, FakeGuild

AUTH = {"Authorization": f"Bot {TOKEN}"}


@pytest.fixture
def guild(fake: FakeDiscord) -> FakeGuild:
    bot = fake.add_bot(TOKEN, "Helper")
    return fake.add_guild("People", bots=[bot])


async def test_mentions_in_both_forms_and_replies_to_the_bot(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    bot_id = fake.bots[TOKEN].id
    general = guild.channel_named("general").id
    ana = fake.add_member(guild.id, "ana")

    await fake.post_user_message(guild.id, general, "bo", f"hey <@!{bot_id}> and <@{ana.user.id}>")
    both = await running.next_message()
    assert [m.id for m in both.mentions] == [bot_id, ana.user.id]
    assert running.client.user in both.mentions

    await fake.post_user_message(guild.id, general, "bo", "no mention here, <@123>")
    assert (await running.next_message()).mentions == []  # unknown ids are not users

    await both.channel.send("hello there")
    bot_said = await fake.wait_for_bot_message(general)
    await running.next_message()  # the echo of the bot's own message
    reply = await fake.post_user_message(guild.id, general, "bo", "thanks!", reply_to=bot_said.id)
    seen = await running.next_message()
    assert seen.type is discord.MessageType.reply
    assert seen.reference is not None and seen.reference.message_id == bot_said.id
    resolved = seen.reference.resolved
    assert isinstance(resolved, discord.Message) and resolved.author == running.client.user
    assert [m.id for m in seen.mentions] == [bot_id]  # a reply pings its author by default
    assert reply.mention_ids == [bot_id]

    await fake.post_user_message(
        guild.id, general, "bo", "quiet reply", reply_to=bot_said.id, mention_author=False
    )
    quiet = await running.next_message()
    assert quiet.mentions == [] and quiet.reference is not None


async def test_one_display_name_in_live_messages_and_the_names_in_history(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    general = guild.channel_named("general").id
    fake.add_member(guild.id, "ana", nick="Ana (mod)", global_name="Ana")
    fake.add_member(guild.id, "bo", global_name="Bo B.")
    fake.add_member(guild.id, "cy")
    for name in ("ana", "bo", "cy"):
        await fake.post_user_message(guild.id, general, name, f"I am {name}")

    live = [await running.next_message() for _ in range(3)]
    assert [m.author.display_name for m in live] == ["Ana (mod)", "Bo B.", "cy"]
    assert all(isinstance(m.author, discord.Member) for m in live)
    assert [fake.member(guild.id, n).display_name for n in ("ana", "bo", "cy")] == [
        "Ana (mod)",
        "Bo B.",
        "cy",
    ]

    # REST history carries the user (with its global name) but, as in Discord, no member:
    # the nickname comes from GET /guilds/{id}/members/{user_id}.
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        history = (await http.get(f"/channels/{general}/messages", headers=AUTH)).json()
        ana_id = history[-1]["author"]["id"]
        member = (await http.get(f"/guilds/{guild.id}/members/{ana_id}", headers=AUTH)).json()
    assert [(m["author"]["username"], m["author"]["global_name"]) for m in history] == [
        ("cy", None),
        ("bo", "Bo B."),
        ("ana", "Ana"),
    ]
    assert all("member" not in m for m in history)
    assert member["nick"] == "Ana (mod)" and member["user"]["global_name"] == "Ana"


async def test_member_updates_go_to_the_member_and_to_bots_with_the_members_intent(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    fake.add_bot(OTHER_TOKEN, "Watcher", members_intent=True)
    await fake.add_bot_to_guild(guild.id, OTHER_TOKEN)
    plain = await connect(clients)
    watcher = await connect(
        clients, OTHER_TOKEN, discord.Intents(WORKER_INTENTS.value, members=True)
    )
    ana = fake.add_member(guild.id, "ana", global_name="Ana")

    fake.set_nick(guild.id, "ana", "Nana")
    fake.set_global_name("ana", "Ana Maria")
    fake.set_nick(guild.id, fake.bots[TOKEN], "Neon")
    await fake.flush()

    watched = watcher.client.get_guild(guild.id)
    mine = plain.client.get_guild(guild.id)
    assert watched is not None and mine is not None
    await fake.wait_for(lambda: mine.me.nick == "Neon")
    await fake.wait_for(lambda: watched.get_member(ana.user.id) is not None)
    seen = watched.get_member(ana.user.id)
    assert seen is not None
    await fake.wait_for(lambda: (seen.nick, seen.global_name) == ("Nana", "Ana Maria"))

    def member_updates(token: str) -> list[str]:
        (session,) = fake.sessions_of(token)
        return [
            p["d"]["user"]["username"] for p in session.buffer if p["t"] == "GUILD_MEMBER_UPDATE"
        ]

    assert member_updates(TOKEN) == ["Helper"]  # only its own: no GUILD_MEMBERS intent
    assert member_updates(OTHER_TOKEN) == ["ana", "ana", "Helper"]
    (joined,) = [
        p["d"] for p in fake.sessions_of(OTHER_TOKEN)[0].buffer if p["t"] == "GUILD_MEMBER_ADD"
    ]
    assert (joined["user"]["username"], joined["guild_id"]) == ("ana", str(guild.id))
    assert not [p for p in fake.sessions_of(TOKEN)[0].buffer if p["t"] == "GUILD_MEMBER_ADD"]
