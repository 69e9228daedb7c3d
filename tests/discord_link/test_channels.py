"""A guild's channels as the bot sees them: the client's three reads (against the fake Discord and
malformed answers), the listing's order and types (pure), and the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from neonrain.discord_link.channels import BotChannel, ChannelCache, bot_view, fetch_bot_channels
from neonrain.discord_link.client import (
    DiscordGuild,
    DiscordNotFound,
    DiscordRestClient,
    DiscordUnavailable,
    GuildChannel,
    GuildMember,
    GuildRole,
)
from neonrain.discord_link.permissions import MEMBER, ROLE, Overwrite, Permission
from tests.fakes.fake_discord import FakeDiscord

TOKEN = "MTEx.fake-bot.token_value"
BOT_ID = 111222333444555666


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        server.add_bot(TOKEN, "Helper", bot_id=BOT_ID)
        yield server


@pytest_asyncio.fixture
async def discord(fake: FakeDiscord) -> AsyncIterator[DiscordRestClient]:
    async with DiscordRestClient(fake.api_url, timeout=0.5, connect_timeout=0.5) as client:
        yield client


# ------------------------------------------------------------------------------ the client


async def test_the_three_reads(fake: FakeDiscord, discord: DiscordRestClient) -> None:
    guild = fake.add_guild("Reads", bots=[TOKEN])
    mods = fake.add_role(guild.id, "Mods", Permission.SEND_MESSAGES, members=[fake.bot(TOKEN)])
    general = guild.channel_named("general")
    fake.set_overwrite(general.id, mods, allow=Permission.VIEW_CHANNEL)
    fake.set_overwrite(general.id, fake.bot(TOKEN), deny=Permission.SEND_MESSAGES)

    channels = await discord.list_guild_channels(TOKEN, guild.id)
    assert [(c.name, c.type) for c in channels] == [
        ("Text Channels", 4), ("general", 0), ("random", 0), ("Voice Channels", 4), ("General", 2),
    ]  # fmt: skip
    by_name = {c.name: c for c in channels}
    assert by_name["general"].parent_id == str(by_name["Text Channels"].id)
    assert by_name["Text Channels"].parent_id is None
    assert set(by_name["general"].overwrites) == {
        Overwrite(id=str(mods.id), type=ROLE, allow=Permission.VIEW_CHANNEL),
        Overwrite(id=str(BOT_ID), type=MEMBER, deny=Permission.SEND_MESSAGES),
    }

    roles = {r.id: r.permissions for r in await discord.list_guild_roles(TOKEN, guild.id)}
    assert roles[str(guild.id)] == guild.everyone_role.permissions
    assert roles[str(mods.id)] == Permission.SEND_MESSAGES

    member = await discord.get_guild_member(TOKEN, guild.id, BOT_ID)
    assert member.user_id == str(BOT_ID)
    assert set(member.role_ids) == {str(mods.id), str(fake.bot_role(guild.id, TOKEN).id)}


async def test_a_guild_the_bot_is_not_in_is_not_found(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    elsewhere = fake.add_guild("Elsewhere")
    for call in (
        discord.list_guild_channels(TOKEN, elsewhere.id),
        discord.list_guild_roles(TOKEN, elsewhere.id),
        discord.get_guild_member(TOKEN, elsewhere.id, BOT_ID),
        discord.list_guild_channels(TOKEN, "not-a-snowflake"),
        discord.get_guild_member(TOKEN, elsewhere.id, "@me"),
    ):
        with pytest.raises(DiscordNotFound):
            await call
    mine = fake.add_guild("Mine", bots=[TOKEN])
    with pytest.raises(DiscordNotFound):  # a member who is not in the guild
        await discord.get_guild_member(TOKEN, mine.id, 999)


def _mock(answer: Any) -> DiscordRestClient:
    return DiscordRestClient(
        "https://discord.test/api/v10",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, json=answer)),
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"not": "a list"},
        [{"id": "1", "name": "x"}],  # no type
        [{"id": "x", "type": 0, "name": "x"}],
        [{"id": "1", "type": "0", "name": "x"}],
        [{"id": "1", "type": 0, "name": 5}],
        [{"id": "1", "type": 0, "name": "x", "position": "1"}],
        [{"id": "1", "type": 0, "name": "x", "parent_id": "cat"}],
        [{"id": "1", "type": 0, "name": "x", "permission_overwrites": {}}],
        [{"id": "1", "type": 0, "name": "x", "permission_overwrites": [{"id": "2", "type": 0,
                                                                        "allow": "x"}]}],
        [{"id": "1", "type": 0, "name": "x", "permission_overwrites": [{"id": "2", "type": 0,
                                                                        "deny": "-1"}]}],
        [{"id": "1", "type": 0, "name": "x", "permission_overwrites": [{"id": "2",
                                                                        "type": "role"}]}],
        ["nope"],
    ],
)  # fmt: skip
async def test_malformed_channels_are_unavailable(answer: Any) -> None:
    async with _mock(answer) as client:
        with pytest.raises(DiscordUnavailable):
            await client.list_guild_channels(TOKEN, 1)


@pytest.mark.parametrize(
    "answer",
    [{"a": 1}, [{"id": "1"} | {"permissions": True}], [{"id": "1", "permissions": "x"}], [1]],
)
async def test_malformed_roles_are_unavailable(answer: Any) -> None:
    async with _mock(answer) as client:
        with pytest.raises(DiscordUnavailable):
            await client.list_guild_roles(TOKEN, 1)


@pytest.mark.parametrize("answer", [[], {"roles": "1"}, {"roles": [1]}, {"roles": ["x"]}, {}])
async def test_malformed_members_are_unavailable(answer: Any) -> None:
    async with _mock(answer) as client:
        with pytest.raises(DiscordUnavailable):
            await client.get_guild_member(TOKEN, 1, 2)


async def test_fetch_bot_channels_against_the_fake(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    guild = fake.add_guild("Fetched", bots=[TOKEN])
    random = guild.channel_named("random")
    fake.set_overwrite(random.id, guild.id, deny=Permission.VIEW_CHANNEL)
    channels = await fetch_bot_channels(discord, TOKEN, str(guild.id), str(BOT_ID))
    assert [(c.name, c.bot_can_read, c.bot_can_send) for c in channels] == [
        ("general", True, True),
        ("random", False, False),
        ("General", True, True),
    ]
    assert {c.category_name for c in channels} == {"Text Channels", "Voice Channels"}


async def test_fetch_bot_channels_fails_as_a_whole(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    guild = fake.add_guild("Half", bots=[TOKEN])
    fake.add_failure(f"/guilds/{guild.id}/roles", status=500)
    with pytest.raises(DiscordUnavailable):
        await fetch_bot_channels(discord, TOKEN, str(guild.id), str(BOT_ID))


# ------------------------------------------------------------------------------ the listing

GUILD = DiscordGuild(id="10", name="G", icon=None, owner_id="99")
EVERYONE = GuildRole(id="10", permissions=Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES)


def channel(id: int, name: str, type: int = 0, position: int = 0, parent: int | None = None,
            overwrites: tuple[Overwrite, ...] = ()) -> GuildChannel:  # fmt: skip
    return GuildChannel(
        id=str(id),
        name=name,
        type=type,
        position=position,
        parent_id=None if parent is None else str(parent),
        overwrites=overwrites,
    )


def view(*channels: GuildChannel, roles: tuple[GuildRole, ...] = (EVERYONE,)) -> list[BotChannel]:
    return bot_view(
        guild=GUILD,
        bot_id="5",
        channels=list(channels),
        roles=list(roles),
        member=GuildMember(user_id="5", role_ids=()),
    )


def test_categories_threads_and_other_types_are_not_listed() -> None:
    listed = view(
        channel(1, "cat", type=4),
        channel(2, "text", parent=1),
        channel(3, "thread", type=11, parent=2),
        channel(4, "directory", type=14),
        channel(5, "media", type=16),
        channel(6, "news", type=5),
        channel(7, "forum", type=15),
        channel(8, "voice", type=2),
        channel(9, "stage", type=13),
    )
    assert [(c.name, c.type) for c in listed] == [
        ("news", "announcement"), ("forum", "forum"), ("voice", "voice"), ("stage", "stage"),
        ("text", "text"),
    ]  # fmt: skip


def test_a_channel_whose_category_is_missing_is_uncategorised() -> None:
    [listed] = view(channel(2, "orphan", parent=77))
    assert (listed.category_id, listed.category_name) == (None, None)


def test_categories_at_the_same_position_are_ordered_by_id() -> None:
    listed = view(
        channel(30, "B", type=4, position=0),
        channel(20, "A", type=4, position=0),
        channel(31, "in-b", parent=30),
        channel(21, "in-a", parent=20),
    )
    assert [c.name for c in listed] == ["in-a", "in-b"]


def test_read_needs_history() -> None:
    [listed] = view(channel(2, "general"))
    assert (listed.bot_can_read, listed.bot_can_send) == (False, True)
    history = GuildRole(id="10", permissions=EVERYONE.permissions | Permission.READ_MESSAGE_HISTORY)
    [listed] = view(channel(2, "general"), roles=(history,))
    assert (listed.bot_can_read, listed.bot_can_send) == (True, True)


# ------------------------------------------------------------------------------ the cache

SOME = (BotChannel("1", "general", "text", None, None, 0, True, True),)


def test_the_cache_keeps_answers_for_its_ttl() -> None:
    now = [0.0]
    cache = ChannelCache(ttl=60, clock=lambda: now[0])
    key = cache.key(TOKEN, "10")
    assert cache.get(key) is None
    cache.put(key, SOME)
    now[0] = 59.9
    assert cache.get(key) == SOME
    assert cache.get(cache.key("another-token", "10")) is None
    assert cache.get(cache.key(TOKEN, "11")) is None
    now[0] = 60.0
    assert cache.get(key) is None
    assert len(cache) == 0


def test_the_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = ChannelCache(max_entries=3)
    keys = [cache.key(TOKEN, str(n)) for n in range(5)]
    for key in keys:
        cache.put(key, SOME)
    assert len(cache) == 3
    assert [cache.get(k) is not None for k in keys] == [False, False, True, True, True]
    cache.put(keys[2], SOME)  # written again: the newest
    cache.put(cache.key(TOKEN, "x"), SOME)
    assert cache.get(keys[3]) is None and cache.get(keys[2]) == SOME


def test_the_cache_does_not_hold_tokens() -> None:
    cache = ChannelCache()
    key = cache.key(TOKEN, "10")
    cache.put(key, SOME)
    assert TOKEN not in repr(key) and TOKEN not in repr(vars(cache))
