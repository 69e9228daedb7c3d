"""The seed's testing checklist, one named test per item this issue covers."""

from __future__ import annotations

import httpx

from tests.api.conftest import (
    INTERNAL,
    OTHER_BOT_TOKEN,
    World,
    add_server,
    add_website,
    connect,
    post_stats,
)
from tests.conftest import ApiUser, assert_error


async def test_new_users_can_add_multiple_servers(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    added = [
        await add_server(client, connected, g) for g in (world.guild1, world.guild2, world.guild3)
    ]
    listing = (await client.get("/api/servers", headers=connected.headers)).json()["servers"]
    assert {s["guildId"] for s in listing} == {
        str(g.id) for g in (world.guild1, world.guild2, world.guild3)
    }
    assert len({s["serverId"] for s in added}) == 3
    status = (await client.get("/api/discord/status", headers=connected.headers)).json()
    assert status["serverCount"] == 3


async def test_each_server_has_independent_configuration(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    one = await add_server(client, connected, world.guild1)
    two = await add_server(client, connected, world.guild2)
    await client.put(
        f"/api/servers/{one['serverId']}",
        json={"botName": "Gamer", "personality": "playful", "rules": "no spoilers",
              "information": "We play chess"},
        headers=connected.headers,
    )  # fmt: skip
    await client.put(
        f"/api/servers/{two['serverId']}",
        json={"botName": "Support", "personality": "calm"},
        headers=connected.headers,
    )
    first = (await client.get(f"/api/servers/{one['serverId']}", headers=connected.headers)).json()
    second = (await client.get(f"/api/servers/{two['serverId']}", headers=connected.headers)).json()
    assert (first["botName"], first["personality"], first["rules"], first["information"]) == (
        "Gamer", "playful", "no spoilers", "We play chess")  # fmt: skip
    assert (second["botName"], second["personality"], second["rules"], second["information"]) == (
        "Support", "calm", "", "")  # fmt: skip
    tokens = (await client.get("/api/discord/tokens", headers=INTERNAL)).json()["tokens"]
    servers = {s["serverId"]: s for s in tokens[0]["servers"]}
    assert servers[one["serverId"]]["personality"] == "playful"
    assert servers[two["serverId"]]["personality"] == "calm"


async def test_bot_can_be_activated_and_deactivated_per_server(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    one = await add_server(client, connected, world.guild1)
    two = await add_server(client, connected, world.guild2)

    async def active() -> dict[str, bool]:
        tokens = (await client.get("/api/discord/tokens", headers=INTERNAL)).json()["tokens"]
        return {s["serverId"]: s["botActive"] for s in tokens[0]["servers"]}

    assert await active() == {one["serverId"]: False, two["serverId"]: False}
    response = await client.put(
        f"/api/servers/{one['serverId']}", json={"botActive": True}, headers=connected.headers
    )
    assert response.json()["botActive"] is True
    assert await active() == {one["serverId"]: True, two["serverId"]: False}
    await client.put(
        f"/api/servers/{two['serverId']}", json={"botActive": True}, headers=connected.headers
    )
    await client.put(
        f"/api/servers/{one['serverId']}", json={"botActive": False}, headers=connected.headers
    )
    assert await active() == {one["serverId"]: False, two["serverId"]: True}
    status = (await client.get("/api/discord/status", headers=connected.headers)).json()
    assert status["activeServerCount"] == 1


async def test_websites_are_scoped_to_individual_servers(
    client: httpx.AsyncClient, connected: ApiUser, other_user: ApiUser, world: World
) -> None:
    one = await add_server(client, connected, world.guild1)
    two = await add_server(client, connected, world.guild2)
    site = await add_website(client, connected, one["serverId"], "https://one.example/")
    listing_one = (
        await client.get(f"/api/servers/{one['serverId']}/websites", headers=connected.headers)
    ).json()["websites"]
    listing_two = (
        await client.get(f"/api/servers/{two['serverId']}/websites", headers=connected.headers)
    ).json()["websites"]
    assert [w["id"] for w in listing_one] == [site["id"]]
    assert listing_two == []
    # Reaching the website through the other server fails.
    response = await client.get(
        f"/api/servers/{two['serverId']}/websites/{site['id']}", headers=connected.headers
    )
    assert_error(response, 404, "WEBSITE_NOT_FOUND")
    # Another account configuring the same guild has its own (empty) list.
    await connect(client, other_user, OTHER_BOT_TOKEN)
    theirs = await add_server(client, other_user, world.guild2)
    mine_on_shared = await add_website(client, connected, two["serverId"], "https://two.example/")
    their_list = (
        await client.get(f"/api/servers/{theirs['serverId']}/websites", headers=other_user.headers)
    ).json()["websites"]
    assert their_list == []
    assert mine_on_shared["url"] == "https://two.example/"


async def test_stats_are_tracked_per_server(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    one = await add_server(client, connected, world.guild1)
    two = await add_server(client, connected, world.guild2)
    at = "2026-01-09T12:00:00Z"
    result = await post_stats(
        client,
        [
            {"userId": connected.id, "guildId": str(world.guild1.id), "event": "message_received",
             "count": 10, "at": at},
            {"userId": connected.id, "guildId": str(world.guild1.id), "event": "message_sent",
             "count": 4, "at": at},
            {"userId": connected.id, "guildId": str(world.guild2.id), "event": "message_received",
             "count": 7, "at": at},
        ],
    )  # fmt: skip
    assert result == {"applied": 3, "ignored": 0}
    first = (await client.get(f"/api/servers/{one['serverId']}", headers=connected.headers)).json()
    second = (await client.get(f"/api/servers/{two['serverId']}", headers=connected.headers)).json()
    assert (first["messagesReceivedCount"], first["messagesSentCount"]) == (10, 4)
    assert (second["messagesReceivedCount"], second["messagesSentCount"]) == (7, 0)
    assert first["lastMessageSentAt"] == "2026-01-09T12:00:00.000Z"
    assert second["lastMessageSentAt"] is None


async def test_aggregated_stats_are_correct_on_status(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    servers = [
        await add_server(client, connected, g) for g in (world.guild1, world.guild2, world.guild3)
    ]
    for server in servers[:2]:
        await client.put(
            f"/api/servers/{server['serverId']}",
            json={"botActive": True},
            headers=connected.headers,
        )
    at = "2026-01-09T12:00:00Z"
    await post_stats(
        client,
        [
            {"userId": connected.id, "guildId": str(g.id), "event": kind, "count": n, "at": at}
            for g, kind, n in [
                (world.guild1, "message_sent", 50), (world.guild1, "message_received", 200),
                (world.guild2, "message_sent", 100), (world.guild2, "message_received", 250),
                (world.guild3, "message_received", 50),
            ]
        ],
    )  # fmt: skip
    status = (await client.get("/api/discord/status", headers=connected.headers)).json()
    assert {k: status[k] for k in ("connected", "serverCount", "activeServerCount",
                                   "totalMessagesSent", "totalMessagesReceived")} == {
        "connected": True,
        "serverCount": 3,
        "activeServerCount": 2,
        "totalMessagesSent": 150,
        "totalMessagesReceived": 500,
    }  # fmt: skip
