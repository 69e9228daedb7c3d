"""``/api/discord``: connect, disconnect, guilds, status, and the removed endpoints."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from neonrain.accounts.models import User
from neonrain.db.base import utcnow
from neonrain.discord_link.client import DiscordRestClient
from neonrain.discord_link.models import WorkerReport
from neonrain.servers.models import Server
from tests.api.conftest import (
    BOT_TOKEN,
    World,
    add_server,
    connect,
    generation_of,
    report_worker,
    state_of,
)
from tests.conftest import ApiUser, assert_error
from tests.fakes.fake_discord import FakeDiscord

# ------------------------------------------------------------------------------------ connect


async def test_connect_checks_the_token_and_never_returns_it(
    app: FastAPI, client: httpx.AsyncClient, user: ApiUser, world: World
) -> None:
    before = await generation_of(app)
    response = await client.post(
        "/api/discord/connect", json={"token": BOT_TOKEN}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["connected"] is True
    assert body["bot"] == {
        "id": str(world.bot.id),
        "username": "Ada Bot",
        "avatarUrl": f"https://cdn.discordapp.com/avatars/{world.bot.id}/abc123.png?size=128",
    }
    assert body["inviteUrl"].startswith("https://discord.com/oauth2/authorize?")
    assert f"client_id={world.bot.id}" in body["inviteUrl"]
    assert "scope=bot" in body["inviteUrl"]
    assert BOT_TOKEN not in response.text
    # Discord was asked as the bot.
    assert any(r.path == "/users/@me" and r.bot_id == world.bot.id for r in world.fake.requests)
    async with state_of(app).sessionmaker() as session:
        stored = await session.scalar(select(User).where(User.id == user.id))
        assert stored is not None
        assert stored.discord_token and stored.discord_token != BOT_TOKEN
        assert BOT_TOKEN not in stored.discord_token
        assert state_of(app).cipher.decrypt(stored.discord_token) == BOT_TOKEN
        assert stored.discord_token_status == "valid"
    assert await generation_of(app) > before
    status = (await client.get("/api/discord/status", headers=user.headers)).json()
    assert status["connected"] is True
    assert status["bot"]["username"] == "Ada Bot"
    assert BOT_TOKEN not in str(status)


async def test_connect_accepts_a_pasted_bot_prefix(
    client: httpx.AsyncClient, user: ApiUser, world: World
) -> None:
    response = await client.post(
        "/api/discord/connect", json={"token": f"  Bot {BOT_TOKEN} "}, headers=user.headers
    )
    assert response.status_code == 200, response.text


async def test_connect_refuses_a_token_discord_rejects(
    client: httpx.AsyncClient, user: ApiUser, world: World
) -> None:
    response = await client.post(
        "/api/discord/connect", json={"token": "not-a-real-token"}, headers=user.headers
    )
    body = assert_error(response, 400, "DISCORD_TOKEN_INVALID")
    assert "not-a-real-token" not in str(body)
    status = (await client.get("/api/discord/status", headers=user.headers)).json()
    assert status["connected"] is False


async def test_connect_refuses_a_user_token(
    client: httpx.AsyncClient, user: ApiUser, fake_discord: FakeDiscord
) -> None:
    fake_discord.add_bot("person-token", "Just Ada", is_bot=False)
    response = await client.post(
        "/api/discord/connect", json={"token": "person-token"}, headers=user.headers
    )
    assert_error(response, 400, "DISCORD_TOKEN_INVALID")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_connect_when_discord_fails_is_502(
    client: httpx.AsyncClient, user: ApiUser, world: World, status: int
) -> None:
    world.fake.add_failure("/users/@me", status=status)
    response = await client.post(
        "/api/discord/connect", json={"token": BOT_TOKEN}, headers=user.headers
    )
    assert_error(response, 502, "DISCORD_UNAVAILABLE")


async def use_discord_client(app: FastAPI, discord: DiscordRestClient) -> None:
    """Requests of ``app`` use ``discord`` (short timeouts) instead of the lifespan's client."""
    state = state_of(app)
    await state.discord_rest.aclose()
    state.discord_rest = discord


async def test_connect_when_discord_hangs_is_502(
    app: FastAPI, client: httpx.AsyncClient, user: ApiUser, world: World
) -> None:
    world.fake.hang("/users/@me")
    discord = DiscordRestClient(world.fake.api_url, timeout=0.3, connect_timeout=0.3)
    await use_discord_client(app, discord)
    try:
        response = await client.post(
            "/api/discord/connect", json={"token": BOT_TOKEN}, headers=user.headers
        )
    finally:
        await discord.aclose()
    assert_error(response, 502, "DISCORD_UNAVAILABLE")


async def test_connect_when_discord_is_unreachable_is_502(
    app: FastAPI, client: httpx.AsyncClient, user: ApiUser
) -> None:
    discord = DiscordRestClient("http://127.0.0.1:9/api/v10", timeout=0.5, connect_timeout=0.5)
    await use_discord_client(app, discord)
    try:
        response = await client.post(
            "/api/discord/connect", json={"token": BOT_TOKEN}, headers=user.headers
        )
    finally:
        await discord.aclose()
    assert_error(response, 502, "DISCORD_UNAVAILABLE")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"token": 123},
        {"token": None},
        {"token": ""},
        {"token": "x" * 513},
        {"token": ["a"]},
        {"token": BOT_TOKEN, "extra": 1},
        [],
        "token",
    ],
)
async def test_connect_malformed_input_is_400(
    client: httpx.AsyncClient, user: ApiUser, world: World, payload: Any
) -> None:
    response = await client.post("/api/discord/connect", json=payload, headers=user.headers)
    assert_error(response, 400, "VALIDATION_ERROR")


async def test_connect_bad_json_is_400(
    client: httpx.AsyncClient, user: ApiUser, world: World
) -> None:
    response = await client.post(
        "/api/discord/connect",
        content=b'{"token": ',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "VALIDATION_ERROR")


async def test_connect_token_with_strange_characters_is_refused_without_500(
    client: httpx.AsyncClient, user: ApiUser, world: World
) -> None:
    for token in ["tok en", "tök", "\x00abc", "a\nb"]:
        response = await client.post(
            "/api/discord/connect", json={"token": token}, headers=user.headers
        )
        assert_error(response, 400, "DISCORD_TOKEN_INVALID")


async def test_discord_endpoints_need_sign_in(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("POST", "/api/discord/connect"),
        ("POST", "/api/discord/disconnect"),
        ("GET", "/api/discord/guilds"),
        ("GET", "/api/discord/status"),
    ]:
        response = await client.request(method, path, json={"token": BOT_TOKEN})
        assert_error(response, 401, "UNAUTHENTICATED")


# ------------------------------------------------------------------------------------ disconnect


async def test_disconnect_forgets_the_token_and_keeps_configurations(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    before = await generation_of(app)
    response = await client.post("/api/discord/disconnect", headers=connected.headers)
    assert response.status_code == 200
    assert response.json() == {"connected": False}
    assert await generation_of(app) > before
    status = (await client.get("/api/discord/status", headers=connected.headers)).json()
    assert status["connected"] is False
    assert status["bot"] is None
    assert status["serverCount"] == 1
    assert status["worker"]["state"] == "offline"
    servers = (await client.get("/api/servers", headers=connected.headers)).json()["servers"]
    assert [s["serverId"] for s in servers] == [server["serverId"]]
    async with state_of(app).sessionmaker() as session:
        stored = await session.get(User, connected.id)
        assert stored is not None and stored.discord_token is None
    # Disconnecting twice is harmless.
    again = await client.post("/api/discord/disconnect", headers=connected.headers)
    assert again.status_code == 200


# ------------------------------------------------------------------------------------ guilds


async def test_guilds_lists_the_bots_guilds_with_configuration_marks(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    response = await client.get("/api/discord/guilds", headers=connected.headers)
    assert response.status_code == 200, response.text
    guilds = {g["guildId"]: g for g in response.json()["guilds"]}
    assert set(guilds) == {str(world.guild1.id), str(world.guild2.id), str(world.guild3.id)}
    assert guilds[str(world.guild1.id)] == {
        "guildId": str(world.guild1.id),
        "guildName": "Gaming",
        "iconUrl": f"https://cdn.discordapp.com/icons/{world.guild1.id}/icon1.png?size=128",
        "configured": True,
        "serverId": server["serverId"],
    }
    assert guilds[str(world.guild2.id)]["configured"] is False
    assert guilds[str(world.guild2.id)]["serverId"] is None
    assert guilds[str(world.guild2.id)]["iconUrl"] is None


async def test_guilds_follows_every_page(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    for index in range(203):
        world.fake.add_guild(f"Extra {index}", bots=[world.bot], channels=[])
    response = await client.get("/api/discord/guilds", headers=connected.headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["guilds"]) == 206
    pages = [r for r in world.fake.requests if r.path == "/users/@me/guilds"]
    assert len(pages) == 2


async def test_guilds_refreshes_a_renamed_guild(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    world.guild1.name = "Gaming Renamed"
    before = await generation_of(app)
    await client.get("/api/discord/guilds", headers=connected.headers)
    detail = await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    assert detail.json()["guildName"] == "Gaming Renamed"
    assert await generation_of(app) > before


async def test_guilds_without_a_token_is_409(
    client: httpx.AsyncClient, user: ApiUser, world: World
) -> None:
    response = await client.get("/api/discord/guilds", headers=user.headers)
    assert_error(response, 409, "DISCORD_NOT_CONNECTED")


async def test_guilds_when_discord_fails_is_502(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    world.fake.add_failure("/users/@me/guilds", status=503)
    response = await client.get("/api/discord/guilds", headers=connected.headers)
    assert_error(response, 502, "DISCORD_UNAVAILABLE")


async def test_guilds_with_a_revoked_token_says_so(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    world.fake.revoke_token(BOT_TOKEN)
    response = await client.get("/api/discord/guilds", headers=connected.headers)
    assert_error(response, 409, "DISCORD_TOKEN_INVALID")
    status = (await client.get("/api/discord/status", headers=connected.headers)).json()
    assert status["worker"]["state"] == "token_invalid"


# ------------------------------------------------------------------------------------ status


async def test_status_without_anything(client: httpx.AsyncClient, user: ApiUser) -> None:
    response = await client.get("/api/discord/status", headers=user.headers)
    assert response.status_code == 200
    assert response.json() == {
        "connected": False,
        "serverCount": 0,
        "activeServerCount": 0,
        "totalMessagesSent": 0,
        "totalMessagesReceived": 0,
        "bot": None,
        "inviteUrl": None,
        "worker": {"state": "offline", "detail": "No bot is connected.", "updatedAt": None},
        "readyServerCount": 0,
        "readiness": {
            "ready": False,
            "checks": [
                {
                    "id": "token",
                    "state": "problem",
                    "message": "No bot is connected: connect your bot's token on the dashboard.",
                },
                {
                    "id": "gateway",
                    "state": "unknown",
                    "message": "Checked once Discord accepts the bot token.",
                },
                {
                    "id": "intent",
                    "state": "unknown",
                    "message": "Checked when the bot connects to Discord.",
                },
                {
                    "id": "engine",
                    "state": "problem",
                    "message": "HUMA is not set up on this install (HUMA_API_KEY is missing): the "
                    "operator sets it and restarts Neonrain, or this server uses an "
                    "OpenAI-compatible engine instead.",
                },
            ],
        },
        "engines": {
            "huma": {"available": False},
            "openai": {"available": False, "state": None, "detail": ""},
        },
    }


async def test_status_shows_the_workers_reports(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    status = (await client.get("/api/discord/status", headers=connected.headers)).json()
    assert status["worker"]["state"] == "offline"
    assert status["worker"]["updatedAt"] is None

    await report_worker(client, connected.id, "connecting", "starting")
    worker = (await client.get("/api/discord/status", headers=connected.headers)).json()["worker"]
    assert worker["state"] == "connecting"
    assert worker["detail"] == "starting"
    assert worker["updatedAt"].endswith("Z")

    await report_worker(client, connected.id, "online", "", [str(world.guild1.id)])
    worker = (await client.get("/api/discord/status", headers=connected.headers)).json()["worker"]
    assert worker["state"] == "online"

    # A report older than two minutes means the worker is gone.
    async with state_of(app).sessionmaker() as session:
        await session.execute(
            update(WorkerReport)
            .where(WorkerReport.user_id == connected.id)
            .values(updated_at=utcnow() - timedelta(minutes=3))
        )
        await session.commit()
    worker = (await client.get("/api/discord/status", headers=connected.headers)).json()["worker"]
    assert worker["state"] == "offline"
    assert worker["updatedAt"] is not None


async def test_token_invalid_report_marks_the_token_without_a_config_change(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    before = await generation_of(app)
    await report_worker(client, connected.id, "token_invalid", "Discord closed with 4004")
    assert await generation_of(app) == before
    status = (await client.get("/api/discord/status", headers=connected.headers)).json()
    assert status["worker"]["state"] == "token_invalid"
    assert status["worker"]["detail"] == "Discord closed with 4004"
    async with state_of(app).sessionmaker() as session:
        stored = await session.get(User, connected.id)
        assert stored is not None and stored.discord_token_status == "invalid"
    # Connecting again clears it.
    await connect(client, connected)
    status = (await client.get("/api/discord/status", headers=connected.headers)).json()
    assert status["worker"]["state"] == "offline"


# ------------------------------------------------------------------------------------ removed


@pytest.mark.parametrize(
    ("method", "path", "replacement"),
    [
        ("POST", "/api/discord/guild", "POST /api/servers"),
        ("GET", "/api/discord/guild", "GET /api/servers"),
        ("DELETE", "/api/discord/guild", "DELETE /api/servers/:serverId"),
        ("GET", "/api/discord/bot-status", "PUT /api/servers/:serverId"),
        ("POST", "/api/discord/bot-status", "PUT /api/servers/:serverId"),
        ("GET", "/api/discord/config", "PUT /api/servers/:serverId"),
        ("POST", "/api/discord/config", "PUT /api/servers/:serverId"),
    ],
)
async def test_removed_endpoints_answer_410(
    client: httpx.AsyncClient, user: ApiUser, method: str, path: str, replacement: str
) -> None:
    for headers in (user.headers, {}):
        response = await client.request(method, path, headers=headers, json={"x": 1})
        body = assert_error(response, 410, "ENDPOINT_REMOVED")
        assert body["replacement"] == replacement


async def test_guild_names_come_from_discord(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    response = await client.post(
        "/api/servers",
        json={"guildId": str(world.guild1.id), "guildName": "Made Up"},
        headers=connected.headers,
    )
    assert response.status_code == 201
    assert response.json()["guildName"] == "Gaming"
    async with state_of(app).sessionmaker() as session:
        names = (await session.scalars(select(Server.guild_name))).all()
    assert list(names) == ["Gaming"]
