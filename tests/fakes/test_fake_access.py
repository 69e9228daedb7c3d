"""Permissions enforced by the fake Discord: what a bot receives and what REST lets it do."""

from __future__ import annotations

from typing import Any

import discord
import httpx
import pytest

from tests.fakes.discord_clients import TOKEN, RunningClient, connect
from tests.fakes.fake_discord import (
    ChannelType,
    FakeDiscord,
    FakeGuild,
    Permission,
)

AUTH = {"Authorization": f"Bot {TOKEN}"}
MISSING_ACCESS = {"message": "Missing Access", "code": 50001}
MISSING_PERMISSIONS = {"message": "Missing Permissions", "code": 50013}


@pytest.fixture
def guild(fake: FakeDiscord) -> FakeGuild:
    bot = fake.add_bot(TOKEN, "Helper")
    return fake.add_guild("Access", bots=[bot])


async def rest(fake: FakeDiscord, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        return await http.request(method, path, headers=AUTH, **kwargs)


async def test_a_channel_the_bot_cannot_read_delivers_nothing(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    staff = fake.add_channel(guild.id, "staff")
    fake.set_overwrite(staff.id, guild.id, deny=Permission.VIEW_CHANNEL)
    running = await connect(clients)

    await fake.post_user_message(guild.id, staff.id, "ana", "secret")
    await fake.post_user_message(guild.id, guild.channel_named("general").id, "ana", "public")
    assert (await running.next_message()).content == "public"
    assert running.messages.empty()
    (session,) = fake.sessions_of(TOKEN)
    events = [p for p in session.buffer if p["t"] == "MESSAGE_CREATE"]
    assert [p["d"]["content"] for p in events] == ["public"]
    # The bot still gets the channel itself (bots get every channel), without the permission.
    seen = running.client.get_channel(staff.id)
    assert isinstance(seen, discord.TextChannel)
    assert seen.guild.me is not None and not seen.permissions_for(seen.guild.me).view_channel


async def test_rest_answers_403_with_discords_codes(fake: FakeDiscord, guild: FakeGuild) -> None:
    bot = fake.bots[TOKEN]
    hidden = fake.add_channel(guild.id, "hidden")
    fake.set_overwrite(hidden.id, bot, deny=Permission.VIEW_CHANNEL)
    mute = fake.add_channel(guild.id, "read-only")
    fake.set_overwrite(mute.id, guild.id, deny=Permission.SEND_MESSAGES)
    amnesia = fake.add_channel(guild.id, "no-history")
    fake.set_overwrite(amnesia.id, guild.id, deny=Permission.READ_MESSAGE_HISTORY)
    fake.set_role_permissions(guild.id, fake.bot_role(guild.id, TOKEN), Permission.VIEW_CHANNEL)
    said = await fake.post_user_message(guild.id, amnesia.id, "ana", "remember me?")

    hello: dict[str, Any] = {"json": {"content": "hello"}}
    cases: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        ("GET", f"/channels/{hidden.id}", {}, MISSING_ACCESS),
        ("GET", f"/channels/{hidden.id}/messages", {}, MISSING_ACCESS),
        ("POST", f"/channels/{hidden.id}/messages", hello, MISSING_ACCESS),
        ("POST", f"/channels/{hidden.id}/typing", {}, MISSING_ACCESS),
        ("POST", f"/channels/{mute.id}/messages", hello, MISSING_PERMISSIONS),
        ("POST", f"/channels/{mute.id}/typing", {}, MISSING_PERMISSIONS),
        ("GET", f"/channels/{amnesia.id}/messages", {}, MISSING_PERMISSIONS),
        ("GET", f"/channels/{amnesia.id}/messages/{said.id}", {}, MISSING_PERMISSIONS),
        (
            "POST",
            f"/channels/{amnesia.id}/messages",
            {"json": {"content": "re", "message_reference": {"message_id": str(said.id)}}},
            MISSING_PERMISSIONS,
        ),
    ]
    for method, path, kwargs, expected in cases:
        answer = await rest(fake, method, path, **kwargs)
        assert (answer.status_code, answer.json()) == (403, expected), (method, path)
    # What stays allowed: seeing the channel, and sending without a reply.
    assert (await rest(fake, "GET", f"/channels/{amnesia.id}")).status_code == 200
    plain = await rest(fake, "POST", f"/channels/{amnesia.id}/messages", **hello)
    assert plain.status_code == 200
    # Discord's documentation describes an empty history instead of a 403: the fake can do both.
    fake.history_without_permission = "empty"
    empty = await rest(fake, "GET", f"/channels/{amnesia.id}/messages")
    assert (empty.status_code, empty.json()) == (200, [])


async def test_discord_py_raises_forbidden_with_the_code(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    general = guild.channel_named("general")
    running = await connect(clients)
    channel = running.client.get_channel(general.id)
    assert isinstance(channel, discord.TextChannel)
    fake.set_overwrite(general.id, fake.bots[TOKEN], deny=Permission.SEND_MESSAGES)
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("hi")
    assert refused.value.code == 50013
    # The CHANNEL_UPDATE reached discord.py's cache, so it can tell before trying.
    me = channel.guild.me
    assert not channel.permissions_for(me).send_messages
    fake.set_overwrite(general.id, guild.id, deny=Permission.VIEW_CHANNEL)
    with pytest.raises(discord.Forbidden) as hidden:
        await channel.history(limit=5).__anext__()
    assert hidden.value.code == 50001


async def test_channel_lists_roles_and_members_for_a_permission_aware_product(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    """What ``GET /api/servers/:id/channels`` needs: every channel with its overwrites, the roles
    and the bot's member; the fake's own answer to "can the bot read/send" to compare with."""
    staff = fake.add_role(guild.id, "Staff", Permission.VIEW_CHANNEL)
    category = fake.add_channel(guild.id, "Staff Zone", ChannelType.GUILD_CATEGORY)
    fake.set_overwrite(category.id, guild.id, deny=Permission.VIEW_CHANNEL)
    fake.set_overwrite(category.id, staff, allow=Permission.VIEW_CHANNEL)
    synced = fake.add_channel(guild.id, "staff-chat", parent_id=category.id)
    loose = fake.add_channel(guild.id, "staff-lobby", parent_id=category.id)
    fake.set_overwrite(loose.id, guild.id, allow=Permission.VIEW_CHANNEL)

    channels = (await rest(fake, "GET", f"/guilds/{guild.id}/channels")).json()
    roles = (await rest(fake, "GET", f"/guilds/{guild.id}/roles")).json()
    bot_id = fake.bots[TOKEN].id
    member = (await rest(fake, "GET", f"/guilds/{guild.id}/members/{bot_id}")).json()

    by_id = {c["id"]: c for c in channels}
    assert by_id[str(synced.id)]["permission_overwrites"] == [
        {"id": str(guild.id), "type": 0, "allow": "0", "deny": "1024"},
        {"id": str(staff.id), "type": 0, "allow": "1024", "deny": "0"},
    ]
    assert by_id[str(synced.id)]["parent_id"] == str(category.id)
    everyone = next(r for r in roles if r["id"] == str(guild.id))
    assert int(everyone["permissions"]) & Permission.VIEW_CHANNEL
    assert member["roles"] == [str(fake.bot_role(guild.id, TOKEN).id)]
    assert not fake.permissions_in(synced.id, TOKEN) & Permission.VIEW_CHANNEL
    assert fake.permissions_in(loose.id, TOKEN) & Permission.SEND_MESSAGES

    fake.give_role(guild.id, fake.bots[TOKEN], staff)
    assert fake.permissions_in(synced.id, TOKEN) & Permission.VIEW_CHANNEL
    member = (await rest(fake, "GET", f"/guilds/{guild.id}/members/{bot_id}")).json()
    assert str(staff.id) in member["roles"]
    # Re-syncing a changed channel copies the category's overwrites back.
    fake.sync_with_category(loose.id)
    assert loose.permission_overwrites == category.permission_overwrites


async def test_gaining_access_to_a_channel_syncs_its_threads(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    staff = fake.add_channel(guild.id, "staff")
    fake.set_overwrite(staff.id, guild.id, deny=Permission.VIEW_CHANNEL)
    thread = await fake.create_thread(guild.id, staff.id, "plans", author="ana")
    running = await connect(clients)
    seen = running.client.get_guild(guild.id)
    assert seen is not None and seen.get_thread(thread.id) is None

    fake.set_overwrite(staff.id, fake.bots[TOKEN], allow=Permission.VIEW_CHANNEL)
    await fake.flush()
    event, joined = await running.next_thread()
    assert (event, joined.id, joined.parent_id) == ("join", thread.id, staff.id)
    (session,) = fake.sessions_of(TOKEN)
    (sync,) = [p["d"] for p in session.buffer if p["t"] == "THREAD_LIST_SYNC"]
    assert sync["channel_ids"] == [str(staff.id)]
    await fake.post_user_message(guild.id, thread.id, "ana", "now you see it")
    assert (await running.next_message()).channel.id == thread.id


async def test_roles_and_administrator(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    secret = fake.add_channel(guild.id, "secret")
    fake.set_overwrite(secret.id, guild.id, deny=Permission.VIEW_CHANNEL)
    running = await connect(clients)
    admin = fake.add_role(guild.id, "Admin", Permission.ADMINISTRATOR)
    await fake.flush()
    seen = running.client.get_guild(guild.id)
    assert seen is not None
    await fake.wait_for(lambda: seen.get_role(admin.id) is not None)

    fake.give_role(guild.id, fake.bots[TOKEN], admin)
    await fake.wait_for(lambda: seen.me.guild_permissions.administrator)
    await fake.post_user_message(guild.id, secret.id, "ana", "admins see all")
    assert (await running.next_message()).content == "admins see all"
    mine = (await rest(fake, "GET", "/users/@me/guilds")).json()
    assert int(mine[0]["permissions"]) == discord.Permissions.all().value


async def test_changing_the_nickname_needs_change_nickname(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    fake.set_role_permissions(guild.id, fake.bot_role(guild.id, TOKEN), Permission.VIEW_CHANNEL)
    everyone = Permission(fake.everyone_role(guild.id).permissions)
    fake.set_role_permissions(guild.id, guild.id, everyone & ~Permission.CHANGE_NICKNAME)
    running = await connect(clients)
    with pytest.raises(discord.Forbidden) as refused:
        await running.client.http.edit_my_member(guild.id, nick="Neon")
    assert refused.value.code == 50013
    assert fake.nickname_changes == [] and fake.nickname(guild.id, TOKEN) is None
