"""Two accounts: every server, website and action endpoint of one, called with the other's ids,
answers 404 and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import (
    OTHER_BOT_TOKEN,
    World,
    add_server,
    add_website,
    connect,
    post_action,
)
from tests.conftest import ApiUser, assert_error


async def snapshot(http: httpx.AsyncClient, user: ApiUser, server_id: str) -> dict[str, Any]:
    detail = (await http.get(f"/api/servers/{server_id}", headers=user.headers)).json()
    actions = (await http.get(f"/api/servers/{server_id}/actions", headers=user.headers)).json()
    stats = (await http.get(f"/api/servers/{server_id}/stats", headers=user.headers)).json()
    servers = (await http.get("/api/servers", headers=user.headers)).json()
    status = (await http.get("/api/discord/status", headers=user.headers)).json()
    return {"detail": detail, "actions": actions, "stats": stats, "servers": servers,
            "status": status}  # fmt: skip


async def test_isolation_matrix(
    client: httpx.AsyncClient,
    connected: ApiUser,
    other_user: ApiUser,
    world: World,
) -> None:
    owner, intruder = connected, other_user
    await connect(client, intruder, OTHER_BOT_TOKEN)
    # Both accounts configure the same guild (both bots are in it) and the intruder one more.
    mine = await add_server(client, owner, world.guild2)
    website = await add_website(client, owner, mine["serverId"], "https://example.com/")
    action = await post_action(client, owner.id, str(world.guild2.id))
    theirs = await add_server(client, intruder, world.foreign)
    before = await snapshot(client, owner, mine["serverId"])

    sid, wid = mine["serverId"], website["id"]
    own_sid = theirs["serverId"]
    server_calls: list[tuple[str, str, Any]] = [
        ("GET", f"/api/servers/{sid}", None),
        ("PUT", f"/api/servers/{sid}", {"rules": "pwned", "botActive": False}),
        ("DELETE", f"/api/servers/{sid}", None),
        ("GET", f"/api/servers/{sid}/stats", None),
        ("GET", f"/api/servers/{sid}/actions", None),
        ("GET", f"/api/servers/{sid}/actions?before={action}", None),
        ("GET", f"/api/servers/{sid}/actions?delivered=false", None),
        ("GET", f"/api/servers/{sid}/channels", None),
        (
            "PUT",
            f"/api/servers/{sid}",
            {"channelMode": "only", "channelIds": [str(world.guild2.channel_named("general").id)]},
        ),
        ("GET", f"/api/servers/{sid}/websites", None),
        ("POST", f"/api/servers/{sid}/websites", {"url": "https://evil.example/"}),
        ("GET", f"/api/servers/{sid}/websites/{wid}", None),
        ("POST", f"/api/servers/{sid}/websites/{wid}/scrape", None),
        ("DELETE", f"/api/servers/{sid}/websites/{wid}", None),
    ]
    for method, path, body in server_calls:
        response = await client.request(method, path, json=body, headers=intruder.headers)
        assert_error(response, 404, "SERVER_NOT_FOUND")

    # The owner's website and action ids under the intruder's own server.
    website_calls: list[tuple[str, str]] = [
        ("GET", f"/api/servers/{own_sid}/websites/{wid}"),
        ("POST", f"/api/servers/{own_sid}/websites/{wid}/scrape"),
        ("DELETE", f"/api/servers/{own_sid}/websites/{wid}"),
    ]
    for method, path in website_calls:
        response = await client.request(method, path, headers=intruder.headers)
        assert_error(response, 404, "WEBSITE_NOT_FOUND")
    response = await client.get(
        f"/api/servers/{own_sid}/actions", params={"before": action}, headers=intruder.headers
    )
    assert_error(response, 404, "ACTION_NOT_FOUND")

    # Nothing of the owner's leaked into the intruder's views...
    listing = (await client.get("/api/servers", headers=intruder.headers)).json()["servers"]
    assert [s["serverId"] for s in listing] == [own_sid]
    guilds = (await client.get("/api/discord/guilds", headers=intruder.headers)).json()["guilds"]
    shared = next(g for g in guilds if g["guildId"] == str(world.guild2.id))
    assert shared["configured"] is False and shared["serverId"] is None
    # ...and nothing changed for the owner.
    after = await snapshot(client, owner, mine["serverId"])
    assert after == before
    assert after["detail"]["websites"][0]["scrapeStatus"] == "queued"
