"""A server's readiness in the API: ``readiness`` on every configuration and on the status, from
the worker's reports as the worker posts them (``POST /api/discord/worker-status``), the account's
token and the install's engines — and the reports surviving a reconnect of the same bot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, update

from neonrain.config import Settings
from neonrain.db.base import utcnow
from neonrain.discord_link.models import WorkerReport
from neonrain.engines.models import EngineCredential
from neonrain.servers.models import UserServerConfig
from tests.api.conftest import (
    INTERNAL,
    OTHER_BOT_TOKEN,
    World,
    add_server,
    connect,
    state_of,
)
from tests.conftest import ApiUser, make_settings
from tests.fakes.fake_discord import FakeDiscord, FakeGuild

HUMA_KEY = "readiness-huma-key"
CHECK_IDS = ["token", "gateway", "intent", "guild", "channels", "engine", "active"]


@pytest.fixture
def install() -> dict[str, str]:
    """The install's engine settings; a test parametrizes ``install`` to change them."""
    return {"HUMA_API_KEY": HUMA_KEY}


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord, install: dict[str, str]
) -> Settings:
    # HUMA is never called by these reads: an address where nothing listens proves it.
    return make_settings(
        database_url,
        tmp_path,
        DISCORD_API_URL=fake_discord.api_url,
        HUMA_API_URL="http://127.0.0.1:9",
        **install,
    )


async def report(
    http: httpx.AsyncClient,
    user_id: str,
    state: str = "online",
    *,
    detail: str = "",
    reason: str | None = None,
    guilds: list[dict[str, Any]] | None = None,
    engine_state: str | None = None,
    engine_detail: str = "",
) -> None:
    """A worker-status report, posted exactly as the worker posts it."""
    entry: dict[str, Any] = {
        "userId": user_id,
        "state": state,
        "detail": detail,
        "guildIds": [g["guildId"] for g in guilds or []],
        "reason": reason,
        "guilds": guilds or [],
        "engineState": engine_state,
        "engineDetail": engine_detail,
    }
    response = await http.post(
        "/api/discord/worker-status", json={"tokens": [entry]}, headers=INTERNAL
    )
    assert response.status_code == 204, response.text


def guild_entry(
    guild: FakeGuild,
    *,
    present: bool = True,
    watched: int = 3,
    readable: int = 3,
    sendable: int = 3,
    problem: str = "",
) -> dict[str, Any]:
    return {
        "guildId": str(guild.id),
        "present": present,
        "channelsWatched": watched,
        "channelsReadable": readable,
        "channelsSendable": sendable,
        "problem": problem,
    }


async def switch_on(http: httpx.AsyncClient, user: ApiUser, server_id: str) -> dict[str, Any]:
    response = await http.put(
        f"/api/servers/{server_id}", json={"botActive": True}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def readiness_of(http: httpx.AsyncClient, user: ApiUser, server_id: str) -> dict[str, Any]:
    """The server's readiness, checked to read the same in the list and in the detail."""
    detail = await http.get(f"/api/servers/{server_id}", headers=user.headers)
    assert detail.status_code == 200, detail.text
    listing = (await http.get("/api/servers", headers=user.headers)).json()["servers"]
    from_list = next(s for s in listing if s["serverId"] == server_id)
    readiness: dict[str, Any] = detail.json()["readiness"]
    assert from_list["readiness"] == readiness
    assert [c["id"] for c in readiness["checks"]] == CHECK_IDS
    assert readiness["ready"] == all(c["state"] == "ok" for c in readiness["checks"])
    return readiness


def check(readiness: dict[str, Any], check_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in readiness["checks"] if c["id"] == check_id)
    assert found["message"], found
    return found


def first_problem(readiness: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in readiness["checks"] if c["state"] == "problem"), None)


async def status_of(http: httpx.AsyncClient, user: ApiUser) -> dict[str, Any]:
    response = await http.get("/api/discord/status", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def active(client: httpx.AsyncClient, connected: ApiUser, world: World) -> str:
    """The id of ``world.guild1``'s configuration, switched on."""
    server = await add_server(client, connected, world.guild1)
    await switch_on(client, connected, server["serverId"])
    return str(server["serverId"])


# ------------------------------------------------------------------------------------ ready


async def test_a_server_whose_bot_can_answer_is_ready(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1, sendable=2)])
    readiness = await readiness_of(client, connected, active)
    assert readiness["ready"] is True
    assert {c["state"] for c in readiness["checks"]} == {"ok"}
    assert "2 of the 3 channels" in check(readiness, "channels")["message"]

    status = await status_of(client, connected)
    assert (status["serverCount"], status["activeServerCount"], status["readyServerCount"]) == (
        1,
        1,
        1,
    )
    assert status["readiness"]["ready"] is True
    assert [c["id"] for c in status["readiness"]["checks"]] == [
        "token", "gateway", "intent", "engine"
    ]  # fmt: skip


async def test_a_server_switched_off_is_off_and_not_ready(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    await report(client, connected.id)
    readiness = await readiness_of(client, connected, server["serverId"])
    assert readiness["ready"] is False
    assert check(readiness, "active")["state"] == "problem"
    assert check(readiness, "guild")["state"] == "unknown"  # the worker reports active guilds
    status = await status_of(client, connected)
    assert (status["activeServerCount"], status["readyServerCount"]) == (0, 0)


# ------------------------------------------------------------------------------------ engines


@pytest.mark.parametrize("install", [{}])
async def test_without_a_huma_key_nobody_answers_and_the_reason_says_so(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    readiness = await readiness_of(client, connected, active)
    assert readiness["ready"] is False
    problem = first_problem(readiness)
    assert problem is not None and problem["id"] == "engine"
    assert "HUMA_API_KEY" in problem["message"]
    # Everything else is fine: only the engine stands in the way.
    assert [c["id"] for c in readiness["checks"] if c["state"] != "ok"] == ["engine"]

    status = await status_of(client, connected)
    assert (status["activeServerCount"], status["readyServerCount"]) == (1, 0)
    engine = check(status["readiness"], "engine")
    assert engine["state"] == "problem" and "HUMA_API_KEY" in engine["message"]


@pytest.mark.parametrize(
    "install",
    [{"NEONRAIN_OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "NEONRAIN_OPENAI_MODEL": "llama3"}],
)
async def test_an_openai_server_reads_the_engine_and_the_workers_engine_state(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    async with state_of(app).sessionmaker() as session:
        await session.execute(update(UserServerConfig).values(engine="openai"))
        await session.commit()
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    readiness = await readiness_of(client, connected, active)
    assert readiness["ready"] is True
    assert "this install's" in check(readiness, "engine")["message"]
    # No HUMA key, but no server uses HUMA: the account-level engine check is fine too.
    status = await status_of(client, connected)
    assert check(status["readiness"], "engine")["state"] == "ok"
    assert status["readyServerCount"] == 1

    await report(
        client,
        connected.id,
        guilds=[guild_entry(world.guild1)],
        engine_state="error",
        engine_detail="401 Incorrect API key provided",
    )
    readiness = await readiness_of(client, connected, active)
    engine = check(readiness, "engine")
    assert engine["state"] == "problem"
    assert "401 Incorrect API key provided" in engine["message"]
    assert first_problem(readiness) == engine


async def test_an_openai_server_needs_an_engine_of_the_account_or_the_install(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    async with state_of(app).sessionmaker() as session:
        await session.execute(update(UserServerConfig).values(engine="openai"))
        await session.commit()
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    engine = check(await readiness_of(client, connected, active), "engine")
    assert engine["state"] == "problem"
    assert "NEONRAIN_OPENAI_BASE_URL" in engine["message"]

    async with state_of(app).sessionmaker() as session:
        session.add(
            EngineCredential(user_id=connected.id, base_url="https://api.example.com/v1", model="m")
        )
        await session.commit()
    readiness = await readiness_of(client, connected, active)
    assert readiness["ready"] is True
    assert "your own" in check(readiness, "engine")["message"]


# ------------------------------------------------------------------------------------ token


async def test_after_disconnect_the_server_is_not_ready_and_says_why(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    assert (await readiness_of(client, connected, active))["ready"] is True
    response = await client.post("/api/discord/disconnect", headers=connected.headers)
    assert response.status_code == 200

    readiness = await readiness_of(client, connected, active)
    assert readiness["ready"] is False
    token = check(readiness, "token")
    assert token == first_problem(readiness)
    assert "No bot is connected" in token["message"]
    # The old bot's report no longer applies to anything.
    assert {check(readiness, i)["state"] for i in ("gateway", "intent", "guild")} == {"unknown"}
    status = await status_of(client, connected)
    assert status["worker"]["state"] == "offline"
    assert (status["activeServerCount"], status["readyServerCount"]) == (1, 0)


async def test_a_rejected_token_is_not_ready_with_the_reason(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    await report(
        client,
        connected.id,
        "token_invalid",
        detail="Discord closed the gateway with 4004",
        reason="token_rejected",
    )
    readiness = await readiness_of(client, connected, active)
    token = check(readiness, "token")
    assert token["state"] == "problem" and token == first_problem(readiness)
    assert "new token" in token["message"]
    assert check(readiness, "gateway")["state"] == "unknown"
    assert (await status_of(client, connected))["readyServerCount"] == 0

    # The same bot with a new token: accepted again, and the rejection is gone with it.
    await connect(client, connected)
    readiness = await readiness_of(client, connected, active)
    assert check(readiness, "token")["state"] == "ok"
    assert (await status_of(client, connected))["worker"]["state"] == "offline"


async def test_a_token_discord_refuses_on_a_rest_call_is_not_ready(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    world.fake.revoke_token("ada-bot-token.XYZ")
    response = await client.get("/api/discord/guilds", headers=connected.headers)
    assert response.status_code == 409
    readiness = await readiness_of(client, connected, active)
    assert first_problem(readiness) == check(readiness, "token")


# ------------------------------------------------------------------------------------ the worker


async def test_no_report_means_the_worker_has_not_picked_the_bot_up(
    client: httpx.AsyncClient, connected: ApiUser, active: str
) -> None:
    readiness = await readiness_of(client, connected, active)
    gateway = check(readiness, "gateway")
    assert gateway == first_problem(readiness)
    assert "neonrain worker" in gateway["message"] and "neonrain serve" in gateway["message"]


async def test_a_stale_report_means_the_worker_is_not_running(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    async with state_of(app).sessionmaker() as session:
        await session.execute(
            update(WorkerReport).values(updated_at=utcnow() - timedelta(minutes=3))
        )
        await session.commit()
    readiness = await readiness_of(client, connected, active)
    gateway = check(readiness, "gateway")
    assert gateway == first_problem(readiness)
    assert "over two minutes" in gateway["message"] and "neonrain worker" in gateway["message"]
    # What a dead worker said last is not trusted.
    assert check(readiness, "guild")["state"] == "unknown"


async def test_connecting_is_unknown_and_reads_as_checking(
    client: httpx.AsyncClient, connected: ApiUser, active: str
) -> None:
    await report(client, connected.id, "connecting", detail="starting")
    readiness = await readiness_of(client, connected, active)
    assert first_problem(readiness) is None
    gateway = check(readiness, "gateway")
    assert gateway["state"] == "unknown" and "Connecting to Discord" in gateway["message"]
    assert readiness["ready"] is False


async def test_intent_missing_is_kept_through_later_connecting_reports(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    for detail in ("gateway connection lost; resuming", "retrying in 30 s", "connecting"):
        await report(client, connected.id, "connecting", detail=detail, reason="intent_missing")
        readiness = await readiness_of(client, connected, active)
        intent = check(readiness, "intent")
        assert intent == first_problem(readiness)
        assert "Message Content Intent" in intent["message"]
        assert "Privileged Gateway Intents" in intent["message"]
        status = await status_of(client, connected)
        assert check(status["readiness"], "intent") == intent
        assert status["worker"]["state"] == "connecting"

    # Switched on in the portal: the worker's next report has no reason, and the check is ok.
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    readiness = await readiness_of(client, connected, active)
    assert check(readiness, "intent")["state"] == "ok"
    assert readiness["ready"] is True


async def test_a_crash_is_a_gateway_problem(
    client: httpx.AsyncClient, connected: ApiUser, active: str
) -> None:
    await report(client, connected.id, "offline", detail="RuntimeError: boom", reason="crashed")
    gateway = check(await readiness_of(client, connected, active), "gateway")
    assert gateway["state"] == "problem"
    assert "crashed (RuntimeError: boom)" in gateway["message"]


# ------------------------------------------------------------------------------------ guild


async def test_a_bot_no_longer_in_the_guild_is_not_ready(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1, present=False)])
    readiness = await readiness_of(client, connected, active)
    guild = check(readiness, "guild")
    assert guild == first_problem(readiness)
    assert "no longer in Gaming" in guild["message"] and "invite" in guild["message"]
    assert check(readiness, "channels")["state"] == "unknown"
    assert (await status_of(client, connected))["readyServerCount"] == 0


async def test_a_guild_not_reported_yet_is_unknown(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild2)])
    readiness = await readiness_of(client, connected, active)
    assert check(readiness, "guild")["state"] == "unknown"
    assert first_problem(readiness) is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"problem": "403 Missing Permissions sending in #general"}, "403 Missing Permissions"),
        ({"watched": 0, "readable": 0, "sendable": 0}, "no channel to watch"),
        ({"readable": 0}, "cannot read any of the 3 channels"),
        ({"sendable": 0}, "cannot send messages in any of the 3 channels"),
    ],
)
async def test_channels_the_bot_cannot_use_are_a_problem(
    client: httpx.AsyncClient,
    connected: ApiUser,
    world: World,
    active: str,
    entry: dict[str, Any],
    expected: str,
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1, **entry)])
    readiness = await readiness_of(client, connected, active)
    channels = check(readiness, "channels")
    assert channels == first_problem(readiness)
    assert expected in channels["message"]


# ------------------------------------------------------------------------------------ reconnect


async def test_reconnecting_the_same_bot_keeps_its_report_never_offline(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    seen: list[str] = []
    done = asyncio.Event()

    async def poll() -> None:
        while not done.is_set():
            status = await status_of(client, connected)
            seen.append(status["worker"]["state"])
            await asyncio.sleep(0)

    async def reconnect() -> None:
        try:
            for _ in range(3):
                await connect(client, connected)
        finally:
            done.set()

    await asyncio.gather(poll(), reconnect())
    assert len(seen) >= 3
    assert set(seen) == {"online"}, seen
    assert (await readiness_of(client, connected, active))["ready"] is True


async def test_connecting_another_bot_drops_the_report(
    client: httpx.AsyncClient, connected: ApiUser, world: World, active: str
) -> None:
    await report(client, connected.id, "connecting", reason="intent_missing")
    await connect(client, connected, OTHER_BOT_TOKEN)
    status = await status_of(client, connected)
    assert status["worker"]["state"] == "offline"
    assert "not picked up" in status["worker"]["detail"]
    readiness = await readiness_of(client, connected, active)
    assert check(readiness, "intent")["state"] == "unknown"  # that was the other bot's reason


# ------------------------------------------------------------------------------------ cost


@pytest.fixture
def statements(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app's engines run, in order."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = state_of(app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_the_dashboard_reads_stay_cheap(
    client: httpx.AsyncClient,
    connected: ApiUser,
    world: World,
    active: str,
    statements: list[str],
) -> None:
    await add_server(client, connected, world.guild2)
    await report(client, connected.id, guilds=[guild_entry(world.guild1)])
    discord_calls = len(world.fake.requests)
    for path in ("/api/discord/status", "/api/servers", f"/api/servers/{active}"):
        statements.clear()
        response = await client.get(path, headers=connected.headers)
        assert response.status_code == 200
        reports = [s for s in statements if "worker_reports" in s]
        assert len(reports) == 1, (path, statements)
        assert "engine_credentials" in reports[0]  # the same query, not one more
    statements.clear()
    await client.get("/api/discord/status", headers=connected.headers)
    # Sign-in (session), then the configurations' summaries and the account's facts.
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 4
    assert len(world.fake.requests) == discord_calls  # no Discord call on these reads
