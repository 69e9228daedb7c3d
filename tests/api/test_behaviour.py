"""Where and when the bot speaks (behaviour.md), the web app's side: the five configuration fields
of ``PUT /api/servers/:serverId`` (validation, channel ids checked with Discord, the delta that
reaches the worker), ``GET /api/servers/:serverId/channels`` (order, permissions, cache, errors),
and held-back drafts in the actions list and the stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from neonrain.discord_link.channels import ChannelCache
from neonrain.discord_link.client import DiscordRestClient
from tests.api.conftest import (
    INTERNAL,
    World,
    add_server,
    connect,
    generation_of,
    post_stats,
    state_of,
)
from tests.conftest import ApiUser, assert_error
from tests.fakes.fake_discord import ChannelType, FakeGuild, Permission

TOKENS = "/api/discord/tokens"


async def put(
    client: httpx.AsyncClient, user: ApiUser, server_id: str, body: Any
) -> httpx.Response:
    return await client.put(f"/api/servers/{server_id}", json=body, headers=user.headers)


async def channels_of(
    client: httpx.AsyncClient, user: ApiUser, server_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/servers/{server_id}/channels", headers=user.headers)
    assert response.status_code == 200, response.text
    channels: list[dict[str, Any]] = response.json()["channels"]
    return channels


def channel_id(guild: FakeGuild, name: str) -> str:
    return str(guild.channel_named(name).id)


def discord_requests(world: World, suffix: str) -> list[str]:
    return [r.path for r in world.fake.requests if r.path.endswith(suffix)]


async def short_timeout_discord(app: FastAPI, world: World) -> DiscordRestClient:
    """Requests of ``app`` go through a client with short timeouts (the caller closes it)."""
    discord = DiscordRestClient(world.fake.api_url, timeout=0.3, connect_timeout=0.3)
    state = state_of(app)
    await state.discord_rest.aclose()
    state.discord_rest = discord
    return discord


# ------------------------------------------------------------------------ the five fields


async def test_every_field_is_saved_returned_and_reaches_the_worker_as_a_delta(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    generation = (await client.get(TOKENS, headers=INTERNAL)).json()["generation"]
    general, random = channel_id(world.guild1, "general"), channel_id(world.guild1, "random")
    body = {
        "channelMode": "only",
        "channelIds": [random, general],
        "replyMode": "silent",
        "maxRepliesPerHour": 1000,
        "minSecondsBetweenReplies": 3600,
    }
    response = await put(client, connected, server["serverId"], body)
    assert response.status_code == 200, response.text
    saved = response.json()
    assert {key: saved[key] for key in body} == body
    assert saved["updatedAt"] >= server["updatedAt"]
    detail = await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    assert {key: detail.json()[key] for key in body} == body

    delta = (await client.get(TOKENS, params={"since": generation}, headers=INTERNAL)).json()
    assert delta["generation"] > generation
    [token] = delta["tokens"]
    [entry] = token["servers"]
    assert entry["channelMode"] == "only"
    assert entry["channelIds"] == [random, general]
    assert entry["replyMode"] == "silent"
    assert entry["maxRepliesPerHour"] == 1000
    assert entry["minSecondsBetweenReplies"] == 3600

    # One field at a time, each a change of its own.
    changes: list[dict[str, Any]] = [
        {"replyMode": "mentioned"},
        {"channelMode": "except"},
        {"maxRepliesPerHour": 0},
        {"minSecondsBetweenReplies": 0},
        {"channelIds": []},
    ]
    for change in changes:
        before = await generation_of(app)
        response = await put(client, connected, server["serverId"], change)
        assert response.status_code == 200, response.text
        assert {k: response.json()[k] for k in change} == change
        assert await generation_of(app) > before
        delta = (await client.get(TOKENS, params={"since": before}, headers=INTERNAL)).json()
        [entry] = delta["tokens"][0]["servers"]
        assert {k: entry[k] for k in change} == change


async def test_only_with_no_channel_is_allowed(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    response = await put(
        client, connected, server["serverId"], {"channelMode": "only", "channelIds": []}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["channelMode"], response.json()["channelIds"]) == ("only", [])


BAD_BODIES: list[Any] = [
    {"channelMode": "some"},
    {"channelMode": "ALL"},
    {"channelMode": 1},
    {"channelMode": None},
    {"replyMode": "never"},
    {"replyMode": ""},
    {"replyMode": None},
    {"maxRepliesPerHour": -1},
    {"maxRepliesPerHour": 1001},
    {"maxRepliesPerHour": "5"},
    {"maxRepliesPerHour": 1.5},
    {"maxRepliesPerHour": True},
    {"maxRepliesPerHour": None},
    {"minSecondsBetweenReplies": -1},
    {"minSecondsBetweenReplies": 3601},
    {"minSecondsBetweenReplies": "60"},
    {"minSecondsBetweenReplies": 10**30},
    {"channelIds": "1200000000000000001"},
    {"channelIds": [1200000000000000001]},
    {"channelIds": ["general"]},
    {"channelIds": [""]},
    {"channelIds": ["1" * 21]},
    {"channelIds": ["-1"]},
    {"channelIds": ["1200000000000000001", "1200000000000000001"]},
    {"channelIds": [str(1200000000000000000 + n) for n in range(201)]},
    {"channelIds": None},
    {"channelIds": {"id": "1"}},
    {"channelModes": "all"},
    # A bad value spoils the whole edit.
    {"replyMode": "silent", "maxRepliesPerHour": -5},
]


async def test_bad_values_are_400_and_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    before = await generation_of(app)
    requests = len(world.fake.requests)
    for body in BAD_BODIES:
        response = await put(client, connected, server["serverId"], body)
        error = assert_error(response, 400, "VALIDATION_ERROR")
        assert error["details"], (body, error)
    assert await generation_of(app) == before
    assert len(world.fake.requests) == requests  # refused before asking Discord
    detail = await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    saved = detail.json()
    assert (saved["channelMode"], saved["channelIds"], saved["replyMode"]) == ("all", [], "auto")
    assert saved["maxRepliesPerHour"] == saved["minSecondsBetweenReplies"] == 0


async def test_two_hundred_channel_ids_are_the_limit(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    guild = world.fake.add_guild(
        "Big", channels=[(f"c{n}", ChannelType.GUILD_TEXT) for n in range(200)], bots=[world.bot]
    )
    server = await add_server(client, connected, guild)
    ids = [str(c.id) for c in guild.channels]
    response = await put(client, connected, server["serverId"], {"channelIds": ids})
    assert response.status_code == 200, response.text
    assert response.json()["channelIds"] == ids


async def test_nothing_to_update_names_every_field(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    error = assert_error(await put(client, connected, server["serverId"], {}), 400)
    assert error["code"] == "NOTHING_TO_UPDATE"
    for name in ("channelMode", "channelIds", "replyMode", "maxRepliesPerHour",
                 "minSecondsBetweenReplies"):  # fmt: skip
        assert name in error["error"]


# ------------------------------------------------------------------------ channel ids checked


async def test_ids_that_are_not_channels_of_the_guild_are_unknown_channel(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    general = channel_id(world.guild1, "general")
    elsewhere = channel_id(world.guild2, "general")  # a channel of another guild of the bot
    category = str(world.guild1.channel_named("Text Channels").id)
    thread = await world.fake.create_thread(world.guild1.id, int(general), "side", author="ana")
    invented = "1999999999999999999"
    before = await generation_of(app)
    response = await put(
        client,
        connected,
        server["serverId"],
        {"channelMode": "only", "channelIds": [general, elsewhere, category, str(thread.id),
                                               invented]},
    )  # fmt: skip
    error = assert_error(response, 400, "UNKNOWN_CHANNEL")
    assert error["details"] == {"channelIds": [elsewhere, category, str(thread.id), invented]}
    assert invented in error["error"]
    assert await generation_of(app) == before
    detail = await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    assert detail.json()["channelMode"] == "all"  # the whole edit was refused
    assert discord_requests(world, f"/guilds/{world.guild1.id}/channels")


async def test_every_text_bearing_type_is_accepted(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    kinds = [ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT, ChannelType.GUILD_FORUM,
             ChannelType.GUILD_VOICE, ChannelType.GUILD_STAGE_VOICE]  # fmt: skip
    guild = world.fake.add_guild(
        "Kinds", channels=[(k.name.lower(), k) for k in kinds], bots=[world.bot]
    )
    server = await add_server(client, connected, guild)
    ids = [str(c.id) for c in guild.channels]
    response = await put(client, connected, server["serverId"], {"channelIds": ids})
    assert response.status_code == 200, response.text


async def test_only_added_ids_are_checked_and_removing_needs_no_discord(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    general, random = channel_id(world.guild1, "general"), channel_id(world.guild1, "random")
    response = await put(client, connected, server["serverId"], {"channelIds": [general, random]})
    assert response.status_code == 200, response.text
    asked = len(discord_requests(world, "/channels"))
    world.fake.add_failure("/guilds/*", status=500)
    # The same ids, fewer ids, the same ids reordered, none: Discord is not asked.
    for ids in ([general, random], [random], [random], []):
        response = await put(client, connected, server["serverId"], {"channelIds": ids})
        assert response.status_code == 200, response.text
        assert response.json()["channelIds"] == ids
    assert len(discord_requests(world, "/channels")) == asked
    # Adding one while Discord fails cannot be checked.
    response = await put(client, connected, server["serverId"], {"channelIds": [general]})
    assert_error(response, 502, "DISCORD_UNAVAILABLE")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_when_discord_fails_the_check_is_502(
    client: httpx.AsyncClient, connected: ApiUser, world: World, status: int
) -> None:
    server = await add_server(client, connected, world.guild1)
    world.fake.add_failure(
        f"/guilds/{world.guild1.id}/channels",
        status=status,
        body={"message": "slow down", "retry_after": 60, "global": False}
        if status == 429
        else None,
    )
    response = await put(
        client, connected, server["serverId"],
        {"channelIds": [channel_id(world.guild1, "general")], "replyMode": "silent"},
    )  # fmt: skip
    assert_error(response, 502, "DISCORD_UNAVAILABLE")
    detail = await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    assert detail.json()["replyMode"] == "auto"  # nothing of the edit was saved


async def test_when_discord_hangs_the_check_is_502(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    world.fake.hang(f"/guilds/{world.guild1.id}/channels")
    discord = await short_timeout_discord(app, world)
    try:
        response = await put(
            client,
            connected,
            server["serverId"],
            {"channelIds": [channel_id(world.guild1, "general")]},
        )
    finally:
        await discord.aclose()
    assert_error(response, 502, "DISCORD_UNAVAILABLE")


async def test_channel_ids_without_a_token_are_409(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    response = await client.post("/api/discord/disconnect", headers=connected.headers)
    assert response.status_code == 200
    response = await put(
        client, connected, server["serverId"], {"channelIds": [channel_id(world.guild1, "general")]}
    )
    assert_error(response, 409, "DISCORD_NOT_CONNECTED")
    # The other fields, and an empty list, need no Discord.
    response = await put(
        client, connected, server["serverId"],
        {"channelMode": "except", "channelIds": [], "replyMode": "mentioned",
         "maxRepliesPerHour": 5, "minSecondsBetweenReplies": 30},
    )  # fmt: skip
    assert response.status_code == 200, response.text


async def test_a_refused_token_is_409_and_marked(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    world.fake.revoke_token(world.bot.token)
    response = await put(
        client, connected, server["serverId"], {"channelIds": [channel_id(world.guild1, "general")]}
    )
    assert_error(response, 409, "DISCORD_TOKEN_INVALID")


async def test_a_bot_no_longer_in_the_guild_is_guild_not_found(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    general = channel_id(world.guild1, "general")
    await world.fake.remove_bot_from_guild(world.guild1.id, world.bot.token)
    response = await put(client, connected, server["serverId"], {"channelIds": [general]})
    assert_error(response, 404, "GUILD_NOT_FOUND")
    response = await client.get(
        f"/api/servers/{server['serverId']}/channels", headers=connected.headers
    )
    assert_error(response, 404, "GUILD_NOT_FOUND")


async def test_another_accounts_server_is_404(
    client: httpx.AsyncClient, connected: ApiUser, other_user: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    await connect(client, other_user, world.other_bot.token)
    requests = len(world.fake.requests)
    for path in (f"/api/servers/{server['serverId']}/channels", "/api/servers/nope/channels"):
        assert_error(await client.get(path, headers=other_user.headers), 404, "SERVER_NOT_FOUND")
    response = await put(
        client,
        other_user,
        server["serverId"],
        {"channelIds": [channel_id(world.guild1, "general")]},
    )
    assert_error(response, 404, "SERVER_NOT_FOUND")
    assert len(world.fake.requests) == requests


# ------------------------------------------------------------------------ the channel list


def forget_channels(app: FastAPI) -> None:
    """Empty the app's channel cache (as if a minute had passed)."""
    state_of(app).channel_cache = ChannelCache()


async def test_channels_in_discords_order_with_categories(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    fake = world.fake
    guild = fake.add_guild("Ordered", channels=[], bots=[world.bot])
    gid = guild.id
    # Created out of order on purpose; positions decide.
    talk = fake.add_channel(gid, "Talk", ChannelType.GUILD_CATEGORY, position=1)
    info = fake.add_channel(gid, "Info", ChannelType.GUILD_CATEGORY, position=0)
    fake.add_channel(gid, "lounge", ChannelType.GUILD_VOICE, parent_id=talk.id, position=0)
    fake.add_channel(gid, "chat", parent_id=talk.id, position=2)
    fake.add_channel(gid, "memes", parent_id=talk.id, position=1)
    fake.add_channel(gid, "help", ChannelType.GUILD_FORUM, parent_id=talk.id, position=3)
    fake.add_channel(gid, "news", ChannelType.GUILD_ANNOUNCEMENT, parent_id=info.id, position=0)
    fake.add_channel(gid, "stage", ChannelType.GUILD_STAGE_VOICE, parent_id=info.id, position=1)
    fake.add_channel(gid, "welcome", position=5)
    fake.add_channel(gid, "rules", position=1)
    # Two channels at the same position: the older (smaller id) first.
    first = fake.add_channel(gid, "same-a", parent_id=info.id, position=4)
    second = fake.add_channel(gid, "same-b", parent_id=info.id, position=4)
    assert first.id < second.id
    general = fake.add_channel(gid, "general", parent_id=talk.id, position=0)
    await fake.create_thread(gid, general.id, "a thread", author="ana")

    server = await add_server(client, connected, guild)
    channels = await channels_of(client, connected, server["serverId"])
    assert [(c["name"], c["type"], c["categoryName"]) for c in channels] == [
        ("rules", "text", None),
        ("welcome", "text", None),
        ("news", "announcement", "Info"),
        ("same-a", "text", "Info"),
        ("same-b", "text", "Info"),
        ("stage", "stage", "Info"),
        ("general", "text", "Talk"),
        ("memes", "text", "Talk"),
        ("chat", "text", "Talk"),
        ("help", "forum", "Talk"),
        ("lounge", "voice", "Talk"),
    ]
    by_name = {c["name"]: c for c in channels}
    assert by_name["news"]["categoryId"] == str(info.id)
    assert by_name["rules"]["categoryId"] is None
    assert by_name["chat"]["position"] == 2
    assert by_name["general"]["id"] == str(general.id)
    assert set(by_name["general"]) == {
        "id", "name", "type", "categoryId", "categoryName", "position", "botCanRead", "botCanSend",
    }  # fmt: skip
    assert all(c["botCanRead"] and c["botCanSend"] for c in channels)


async def test_channel_permissions_follow_discords_rules(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    fake = world.fake
    token = world.bot.token
    guild = fake.add_guild("Perms", channels=[], bots=[world.bot])
    gid = guild.id
    staff = fake.add_channel(gid, "Staff", ChannelType.GUILD_CATEGORY)
    fake.set_overwrite(staff.id, gid, deny=Permission.VIEW_CHANNEL)
    mods = fake.add_role(gid, "Mods", 0)
    fake.set_overwrite(staff.id, mods, allow=Permission.VIEW_CHANNEL)
    synced = fake.add_channel(gid, "staff-chat", parent_id=staff.id)  # synced with the category
    fake.add_channel(gid, "open", parent_id=staff.id, permission_overwrites=[])  # not synced
    hidden = fake.add_channel(gid, "hidden")
    fake.set_overwrite(hidden.id, gid, deny=Permission.VIEW_CHANNEL)
    read_only = fake.add_channel(gid, "announcements-only")
    fake.set_overwrite(read_only.id, gid, deny=Permission.SEND_MESSAGES)
    no_history = fake.add_channel(gid, "no-history")
    fake.set_overwrite(no_history.id, world.bot, deny=Permission.READ_MESSAGE_HISTORY)
    member_wins = fake.add_channel(gid, "member-wins")
    fake.set_overwrite(member_wins.id, fake.bot_role(gid, token), allow=Permission.SEND_MESSAGES)
    fake.set_overwrite(member_wins.id, world.bot, deny=Permission.SEND_MESSAGES)

    server = await add_server(client, connected, guild)

    def expected() -> dict[str, tuple[bool, bool]]:
        truth = {}
        for channel in guild.channels:
            if channel.type == ChannelType.GUILD_CATEGORY:
                continue
            bits = fake.permissions_in(channel.id, token)
            truth[channel.name] = (
                Permission.VIEW_CHANNEL in bits and Permission.READ_MESSAGE_HISTORY in bits,
                Permission.VIEW_CHANNEL in bits and Permission.SEND_MESSAGES in bits,
            )
        return truth

    got = {
        c["name"]: (c["botCanRead"], c["botCanSend"])
        for c in await channels_of(client, connected, server["serverId"])
    }
    assert got == expected()
    assert got == {
        "staff-chat": (False, False),
        "open": (True, True),
        "hidden": (False, False),
        "announcements-only": (True, False),
        "no-history": (False, True),
        "member-wins": (True, False),
    }

    # The bot gets the Mods role (a new answer after the cache expires): the staff channel opens.
    fake.give_role(gid, world.bot, mods)
    forget_channels(app)
    got = {
        c["name"]: (c["botCanRead"], c["botCanSend"])
        for c in await channels_of(client, connected, server["serverId"])
    }
    assert got["staff-chat"] == (True, True)
    assert got == expected()
    assert synced.parent_id == staff.id

    # An administrator role opens everything, member overwrites included.
    admins = fake.add_role(gid, "Admins", Permission.ADMINISTRATOR, members=[world.bot])
    assert admins.permissions
    forget_channels(app)
    channels = await channels_of(client, connected, server["serverId"])
    assert all(c["botCanRead"] and c["botCanSend"] for c in channels)


async def test_channel_lists_are_cached_for_a_minute_per_token_and_guild(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    now = [1000.0]
    state_of(app).channel_cache = ChannelCache(clock=lambda: now[0])
    server = await add_server(client, connected, world.guild1)
    other = await add_server(client, connected, world.guild2)
    first = await channels_of(client, connected, server["serverId"])
    asked = len(world.fake.requests)
    assert {r.path for r in world.fake.requests[-4:]} == {
        f"/guilds/{world.guild1.id}",
        f"/guilds/{world.guild1.id}/channels",
        f"/guilds/{world.guild1.id}/roles",
        f"/guilds/{world.guild1.id}/members/{world.bot.id}",
    }
    world.fake.add_channel(world.guild1.id, "new-one")
    now[0] += 59.0
    assert await channels_of(client, connected, server["serverId"]) == first
    assert len(world.fake.requests) == asked  # no Discord request within the minute
    await channels_of(client, connected, other["serverId"])  # another guild is its own entry
    assert len(world.fake.requests) == asked + 4
    now[0] += 1.5
    fresh = await channels_of(client, connected, server["serverId"])
    assert "new-one" in [c["name"] for c in fresh]
    assert len(world.fake.requests) == asked + 8


async def test_channels_errors(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    path = f"/api/servers/{server['serverId']}/channels"
    world.fake.add_failure(f"/guilds/{world.guild1.id}/roles", status=500, times=1)
    assert_error(await client.get(path, headers=connected.headers), 502, "DISCORD_UNAVAILABLE")
    world.fake.add_failure(f"/guilds/{world.guild1.id}/members/*", status=503, times=1)
    assert_error(await client.get(path, headers=connected.headers), 502, "DISCORD_UNAVAILABLE")
    assert len(await channels_of(client, connected, server["serverId"])) == 3  # failures not kept

    forget_channels(app)
    world.fake.hang(f"/guilds/{world.guild1.id}/channels")
    discord = await short_timeout_discord(app, world)
    try:
        response = await client.get(path, headers=connected.headers)
    finally:
        await discord.aclose()
    assert_error(response, 502, "DISCORD_UNAVAILABLE")

    assert (await client.post("/api/discord/disconnect", headers=connected.headers)).is_success
    assert_error(await client.get(path, headers=connected.headers), 409, "DISCORD_NOT_CONNECTED")


async def test_channels_need_a_session(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/servers/x/channels"), 401, "UNAUTHENTICATED")


# ------------------------------------------------------------------------ held-back drafts


async def post_action(
    client: httpx.AsyncClient,
    user_id: str,
    guild_id: str,
    message: str,
    *,
    delivered: bool | None = None,
    held_back: str | None = None,
) -> str:
    body: dict[str, Any] = {
        "userId": user_id,
        "guildId": guild_id,
        "channelId": "1300000000000000001",
        "channelName": "general",
        "agentMessage": message,
        "triggerDescription": "User ana in #general: hi",
        "messageHistory": {"preceding": [], "agentResponse": {"content": message}},
    }
    if delivered is not None:
        body["delivered"] = delivered
    if held_back is not None:
        body["heldBack"] = held_back
    response = await client.post("/api/discord/agent-actions", json=body, headers=INTERNAL)
    assert response.status_code == 201, response.text
    action_id: str = response.json()["id"]
    return action_id


async def test_actions_carry_delivered_and_held_back_and_filter_on_them(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    guild_id = str(world.guild1.id)
    kinds = [  # oldest first
        ("posted 0", None, None),
        ("shadow 1", False, "silent"),
        ("posted 2", True, None),
        ("limit 3", False, "rate_limited"),
        ("shadow 4", False, "silent"),
        ("posted 5", None, None),
        ("shadow 6", False, "silent"),
    ]
    ids = [
        await post_action(client, connected.id, guild_id, text, delivered=d, held_back=h)
        for text, d, h in kinds
    ]
    path = f"/api/servers/{server['serverId']}/actions"

    everything = (await client.get(path, headers=connected.headers)).json()["actions"]
    assert [(a["agentMessage"], a["delivered"], a["heldBack"]) for a in everything] == [
        ("shadow 6", False, "silent"),
        ("posted 5", True, None),
        ("shadow 4", False, "silent"),
        ("limit 3", False, "rate_limited"),
        ("posted 2", True, None),
        ("shadow 1", False, "silent"),
        ("posted 0", True, None),
    ]

    async def all_pages(delivered: str) -> list[str]:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2, "delivered": delivered}
            if cursor:
                params["before"] = cursor
            page = (await client.get(path, params=params, headers=connected.headers)).json()
            assert len(page["actions"]) <= 2
            seen += [a["agentMessage"] for a in page["actions"]]
            cursor = page["nextCursor"]
            if cursor is None:
                return seen

    assert await all_pages("false") == ["shadow 6", "shadow 4", "limit 3", "shadow 1"]
    assert await all_pages("true") == ["posted 5", "posted 2", "posted 0"]
    # A cursor from the unfiltered list keeps working inside a filter.
    page = (
        await client.get(
            path, params={"delivered": "false", "before": ids[5]}, headers=connected.headers
        )
    ).json()
    assert [a["agentMessage"] for a in page["actions"]] == ["shadow 4", "limit 3", "shadow 1"]
    for bad in ("maybe", "", "2"):
        response = await client.get(path, params={"delivered": bad}, headers=connected.headers)
        assert_error(response, 400, "VALIDATION_ERROR")


async def test_a_delivered_action_has_no_held_back_reason(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    await post_action(
        client, connected.id, str(world.guild1.id), "sent", delivered=True, held_back="silent"
    )
    [action] = (
        await client.get(f"/api/servers/{server['serverId']}/actions", headers=connected.headers)
    ).json()["actions"]
    assert (action["delivered"], action["heldBack"]) == (True, None)


async def test_held_back_drafts_are_counted_per_day_apart_from_sent(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    guild_id = str(world.guild1.id)
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)

    def event(name: str, count: int, at: datetime) -> dict[str, Any]:
        return {"userId": connected.id, "guildId": guild_id, "event": name, "count": count,
                "at": at.isoformat()}  # fmt: skip

    result = await post_stats(
        client,
        [
            event("message_received", 4, now),
            event("message_held_back", 3, now),
            event("message_held_back", 2, now),
            event("message_sent", 1, now),
            event("message_held_back", 7, yesterday),
        ],
    )
    assert result == {"applied": 5, "ignored": 0}
    days = (
        await client.get(f"/api/servers/{server['serverId']}/stats", headers=connected.headers)
    ).json()["days"]
    assert days[-1] == {
        "date": now.date().isoformat(),
        "messagesReceived": 4,
        "messagesSent": 1,
        "messagesHeldBack": 5,
    }
    assert days[-2]["messagesHeldBack"] == 7 and days[-2]["messagesSent"] == 0
    assert sum(d["messagesHeldBack"] for d in days) == 12
    config = (
        await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    ).json()
    assert config["messagesSentCount"] == 1  # held-back drafts were not sent
