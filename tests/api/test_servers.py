"""``/api/servers``: add, list, read, update, delete, stats and agent actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from neonrain.chat.models import ChatConversationGroup
from neonrain.servers.models import AgentAction, ServerDailyStat
from neonrain.websites.models import ServerWebsite, WebsiteScrape
from tests.api.conftest import (
    World,
    add_scrape,
    add_server,
    add_website,
    connect,
    generation_of,
    post_action,
    post_stats,
    state_of,
)
from tests.conftest import ApiUser, assert_error

CONFIG_FIELDS = {
    "id", "serverId", "guildId", "guildName", "guildIconUrl", "botName", "botActive",
    "personality", "rules", "information", "engine", "messagesSentCount", "messagesReceivedCount",
    "lastMessageSentAt", "lastMessageReceivedAt", "websiteCount", "createdAt", "updatedAt",
    "readiness",
    "channelMode", "channelIds", "replyMode", "maxRepliesPerHour", "minSecondsBetweenReplies",
}  # fmt: skip


# ------------------------------------------------------------------------------------ add


async def test_add_server_returns_the_seed_shape(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    before = await generation_of(app)
    server = await add_server(client, connected, world.guild1)
    assert set(server) == CONFIG_FIELDS
    assert server["guildId"] == str(world.guild1.id)
    assert server["guildName"] == "Gaming"
    assert server["botActive"] is False
    assert server["botName"] == "Ada Bot"
    assert (server["personality"], server["rules"], server["information"]) == ("", "", "")
    assert server["messagesSentCount"] == server["messagesReceivedCount"] == 0
    assert server["websiteCount"] == 0
    assert server["engine"] == "huma"
    assert server["readiness"]["ready"] is False
    assert [c["id"] for c in server["readiness"]["checks"]] == [
        "token", "gateway", "intent", "guild", "channels", "engine", "active"
    ]  # fmt: skip
    # Where and when the bot speaks: the original behaviour (behaviour.md's defaults).
    assert (server["channelMode"], server["channelIds"], server["replyMode"]) == ("all", [], "auto")
    assert server["maxRepliesPerHour"] == server["minSecondsBetweenReplies"] == 0
    assert server["createdAt"].endswith("Z")
    assert server["id"] != server["serverId"]
    assert await generation_of(app) > before


async def test_add_server_without_a_token_is_409(
    client: httpx.AsyncClient, user: ApiUser, world: World
) -> None:
    response = await client.post(
        "/api/servers", json={"guildId": str(world.guild1.id)}, headers=user.headers
    )
    assert_error(response, 409, "DISCORD_NOT_CONNECTED")


async def test_add_server_the_bot_is_not_in_is_404(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    for guild_id in (str(world.no_bot.id), str(world.foreign.id), "12345"):
        response = await client.post(
            "/api/servers", json={"guildId": guild_id}, headers=connected.headers
        )
        assert_error(response, 404, "GUILD_NOT_FOUND")
    listing = (await client.get("/api/servers", headers=connected.headers)).json()
    assert listing == {"servers": []}


async def test_add_server_twice_is_409_with_the_server_id(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    response = await client.post(
        "/api/servers", json={"guildId": str(world.guild1.id)}, headers=connected.headers
    )
    body = assert_error(response, 409, "SERVER_ALREADY_CONFIGURED")
    assert body["serverId"] == server["serverId"]


async def test_add_server_when_discord_fails_is_502(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    world.fake.add_failure("/guilds/*", status=500)
    response = await client.post(
        "/api/servers", json={"guildId": str(world.guild1.id)}, headers=connected.headers
    )
    assert_error(response, 502, "DISCORD_UNAVAILABLE")


async def test_two_accounts_share_the_guild_row_but_not_the_configuration(
    client: httpx.AsyncClient, connected: ApiUser, other_user: ApiUser, world: World
) -> None:
    await connect(client, other_user, "grace-bot-token.XYZ")
    mine = await add_server(client, connected, world.guild2)
    theirs = await add_server(client, other_user, world.guild2)
    assert mine["serverId"] == theirs["serverId"]
    assert mine["id"] != theirs["id"]
    assert theirs["botName"] == "Grace Bot"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"guildId": 1234},
        {"guildId": None},
        {"guildId": "abc"},
        {"guildId": ""},
        {"guildId": "1" * 21},
        {"guildId": "123", "guildName": 5},
        {"guildId": "123", "guildName": "x" * 101},
        {"guildId": "123", "extra": True},
        {"guild_id": "123"},
        ["123"],
    ],
)
async def test_add_server_malformed_input_is_400(
    client: httpx.AsyncClient, connected: ApiUser, payload: Any
) -> None:
    response = await client.post("/api/servers", json=payload, headers=connected.headers)
    assert_error(response, 400, "VALIDATION_ERROR")


async def test_bad_json_and_wrong_content_are_400(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    for method, path in [
        ("POST", "/api/servers"),
        ("PUT", f"/api/servers/{server['serverId']}"),
        ("POST", f"/api/servers/{server['serverId']}/websites"),
    ]:
        for content in (b"{", b"null", b"", b"\xff\xfe"):
            response = await client.request(
                method,
                path,
                content=content,
                headers={**connected.headers, "Content-Type": "application/json"},
            )
            assert_error(response, 400)


async def test_oversized_body_is_413(client: httpx.AsyncClient, connected: ApiUser) -> None:
    response = await client.post(
        "/api/servers",
        content=b'{"guildId": "' + b"1" * (1024 * 1024 + 10) + b'"}',
        headers={**connected.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# ------------------------------------------------------------------------------------ read


async def test_list_servers_most_recently_updated_first(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    first = await add_server(client, connected, world.guild1)
    second = await add_server(client, connected, world.guild2)
    listing = (await client.get("/api/servers", headers=connected.headers)).json()["servers"]
    assert [s["serverId"] for s in listing] == [second["serverId"], first["serverId"]]
    await client.put(
        f"/api/servers/{first['serverId']}", json={"rules": "be kind"}, headers=connected.headers
    )
    listing = (await client.get("/api/servers", headers=connected.headers)).json()["servers"]
    assert [s["serverId"] for s in listing] == [first["serverId"], second["serverId"]]
    assert all(set(s) == CONFIG_FIELDS for s in listing)


async def test_get_server_includes_websites(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    website = await add_website(client, connected, server["serverId"], "https://example.com/")
    response = await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CONFIG_FIELDS | {"websites"}
    assert body["websiteCount"] == 1
    assert [w["id"] for w in body["websites"]] == [website["id"]]


@pytest.mark.parametrize(
    "server_id", ["nope", "00000000-0000-0000-0000-000000000000", "%00", "x" * 300, "%E2%82%AC"]
)
async def test_unknown_server_is_404(
    client: httpx.AsyncClient, connected: ApiUser, server_id: str
) -> None:
    for method, path in [
        ("GET", f"/api/servers/{server_id}"),
        ("PUT", f"/api/servers/{server_id}"),
        ("DELETE", f"/api/servers/{server_id}"),
        ("GET", f"/api/servers/{server_id}/stats"),
        ("GET", f"/api/servers/{server_id}/actions"),
        ("GET", f"/api/servers/{server_id}/websites"),
        ("POST", f"/api/servers/{server_id}/websites"),
    ]:
        body = {"url": "https://example.com"} if "websites" in path else {"rules": "x"}
        response = await client.request(method, path, json=body, headers=connected.headers)
        assert_error(response, 404, "SERVER_NOT_FOUND")


# ------------------------------------------------------------------------------------ update


async def test_update_server_changes_only_what_was_sent(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    path = f"/api/servers/{server['serverId']}"
    before = await generation_of(app)
    response = await client.put(
        path,
        json={
            "botName": "  Custom Bot ",
            "personality": "Be helpful",
            "rules": "No spam",
            "information": "Product info",
            "botActive": True,
        },
        headers=connected.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["botName"] == "Custom Bot"
    assert (body["personality"], body["rules"], body["information"]) == (
        "Be helpful",
        "No spam",
        "Product info",
    )
    assert body["botActive"] is True
    assert body["updatedAt"] >= server["updatedAt"]
    assert await generation_of(app) > before

    response = await client.put(path, json={"rules": ""}, headers=connected.headers)
    body = response.json()
    assert body["rules"] == "" and body["personality"] == "Be helpful"
    assert body["botActive"] is True


async def test_update_limits(client: httpx.AsyncClient, connected: ApiUser, world: World) -> None:
    server = await add_server(client, connected, world.guild1)
    path = f"/api/servers/{server['serverId']}"
    ok = [
        {"botName": "x"},
        {"botName": "x" * 32},
        {"personality": "p" * 4000},
        {"rules": "r" * 4000},
        {"information": "i" * 20000},
        {"personality": "émoji 🎉 and ünïcode"},
    ]
    for payload in ok:
        response = await client.put(path, json=payload, headers=connected.headers)
        assert response.status_code == 200, (payload, response.text)
    bad: list[Any] = [
        {"botName": ""},
        {"botName": "   "},
        {"botName": "x" * 33},
        {"personality": "p" * 4001},
        {"rules": "r" * 4001},
        {"information": "i" * 20001},
        {"botActive": "yes"},
        {"botActive": None},
        {"botName": None},
        {"personality": 5},
        {"personality": "nul \x00 byte"},
        {"unknown": 1},
        {"bot_name": "snake"},
        [],
    ]
    for payload in bad:
        response = await client.put(path, json=payload, headers=connected.headers)
        assert_error(response, 400, "VALIDATION_ERROR")
    for raw in (b'{"rules": "lone \\ud800 surrogate"}', b'{"rules": "nul \\u0000"}'):
        response = await client.put(
            path, content=raw, headers={**connected.headers, "Content-Type": "application/json"}
        )
        assert_error(response, 400, "VALIDATION_ERROR")
    detail = (await client.get(path, headers=connected.headers)).json()
    assert detail["botName"] == "x" * 32


async def test_update_with_nothing_is_400(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    response = await client.put(
        f"/api/servers/{server['serverId']}", json={}, headers=connected.headers
    )
    assert_error(response, 400, "NOTHING_TO_UPDATE")


async def test_switching_on_without_a_token_is_409(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    path = f"/api/servers/{server['serverId']}"
    await client.post("/api/discord/disconnect", headers=connected.headers)
    response = await client.put(path, json={"botActive": True}, headers=connected.headers)
    assert_error(response, 409, "DISCORD_NOT_CONNECTED")
    # Everything else can still be edited, and switching off is fine.
    response = await client.put(
        path, json={"botActive": False, "rules": "ok"}, headers=connected.headers
    )
    assert response.status_code == 200


async def test_an_unchanged_update_is_not_a_config_change(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    path = f"/api/servers/{server['serverId']}"
    await client.put(path, json={"rules": "same"}, headers=connected.headers)
    before = await generation_of(app)
    response = await client.put(path, json={"rules": "same"}, headers=connected.headers)
    assert response.status_code == 200
    assert await generation_of(app) == before


# ------------------------------------------------------------------------------------ delete


async def test_delete_server_removes_everything_but_chats(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    website = await add_website(client, connected, server["serverId"], "https://example.com/")
    await add_scrape(app, website["id"], "# hi")
    await post_action(client, connected.id, str(world.guild1.id))
    await post_stats(
        client,
        [
            {
                "userId": connected.id,
                "guildId": str(world.guild1.id),
                "event": "message_received",
                "count": 2,
                "at": "2026-01-09T10:00:00Z",
            }
        ],
    )
    async with state_of(app).sessionmaker() as session:
        session.add(
            ChatConversationGroup(user_id=connected.id, server_id=server["serverId"], pane_count=1)
        )
        await session.commit()
    before = await generation_of(app)
    response = await client.delete(f"/api/servers/{server['serverId']}", headers=connected.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert await generation_of(app) > before
    response = await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    assert_error(response, 404, "SERVER_NOT_FOUND")
    async with state_of(app).sessionmaker() as session:
        for model in (ServerWebsite, WebsiteScrape, AgentAction, ServerDailyStat):
            assert await session.scalar(select(func.count()).select_from(model)) == 0
        group = await session.scalar(select(ChatConversationGroup))
        assert group is not None and group.server_id == server["serverId"]
    # It can be added again.
    again = await add_server(client, connected, world.guild1)
    assert again["serverId"] == server["serverId"]
    assert again["messagesReceivedCount"] == 0


# ------------------------------------------------------------------------------------ stats


async def test_stats_are_zero_filled_oldest_first(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    await post_stats(
        client,
        [
            {"userId": connected.id, "guildId": str(world.guild1.id), "event": "message_received",
             "count": 3, "at": now.isoformat()},
            {"userId": connected.id, "guildId": str(world.guild1.id), "event": "message_sent",
             "count": 1, "at": yesterday.isoformat()},
            {"userId": connected.id, "guildId": str(world.guild1.id), "event": "message_received",
             "count": 5, "at": (now - timedelta(days=40)).isoformat()},
        ],
    )  # fmt: skip
    path = f"/api/servers/{server['serverId']}/stats"
    days = (await client.get(path, headers=connected.headers)).json()["days"]
    assert len(days) == 30
    assert days[-1] == {
        "date": now.date().isoformat(),
        "messagesReceived": 3,
        "messagesSent": 0,
        "messagesHeldBack": 0,
    }
    assert days[-2] == {
        "date": yesterday.date().isoformat(),
        "messagesReceived": 0,
        "messagesSent": 1,
        "messagesHeldBack": 0,
    }
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    assert sum(d["messagesReceived"] for d in days) == 3
    ninety = (await client.get(path, params={"days": 90}, headers=connected.headers)).json()
    assert len(ninety["days"]) == 90
    assert sum(d["messagesReceived"] for d in ninety["days"]) == 8
    one = (await client.get(path, params={"days": 1}, headers=connected.headers)).json()
    assert len(one["days"]) == 1
    for bad in ("0", "91", "-1", "abc", "1.5", ""):
        response = await client.get(path, params={"days": bad}, headers=connected.headers)
        assert_error(response, 400, "VALIDATION_ERROR")


# ------------------------------------------------------------------------------------ actions


async def test_actions_are_paged_newest_first(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    ids = [await post_action(client, connected.id, str(world.guild1.id), f"m{i}") for i in range(7)]
    path = f"/api/servers/{server['serverId']}/actions"
    first = (await client.get(path, headers=connected.headers)).json()
    assert [a["id"] for a in first["actions"]] == ids[::-1]
    assert first["nextCursor"] is None
    action = first["actions"][0]
    assert set(action) == {
        "id", "channelId", "channelName", "agentMessage", "triggerDescription",
        "messageHistory", "createdAt", "delivered", "heldBack",
    }  # fmt: skip
    assert (action["delivered"], action["heldBack"]) == (True, None)
    assert action["agentMessage"] == "m6"
    assert action["messageHistory"]["preceding"][0]["author"] == "ana"
    assert action["messageHistory"]["agentResponse"] == {"content": "m6"}

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["before"] = cursor
        page = (await client.get(path, params=params, headers=connected.headers)).json()
        seen += [a["id"] for a in page["actions"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    for bad in ({"limit": 0}, {"limit": 51}, {"limit": "x"}, {"before": "x" * 65}):
        response = await client.get(path, params=bad, headers=connected.headers)
        assert_error(response, 400, "VALIDATION_ERROR")
    for unknown in ("unknown", "%00"):
        response = await client.get(path, params={"before": unknown}, headers=connected.headers)
        assert_error(response, 404, "ACTION_NOT_FOUND")
