"""The pages say whether a server's bot can answer, as the readiness checks do: the server card
and the server page's badge (Active / Off / On, but not answering: … / On — checking…), the
checklist, the activation text, the dashboard's summary, the Discord card and the chat's data."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from neonrain.app import create_app
from tests.conftest import TEST_INTERNAL_KEY, ApiUser, api_client, make_settings, register_user
from tests.fakes.fake_discord import FakeDiscord, FakeGuild
from tests.web.conftest import BOT_TOKEN, add_server, connect, text_of

INTERNAL = {"X-API-Key": TEST_INTERNAL_KEY}


@pytest.fixture
def huma_key() -> str | None:
    return "pages-huma-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as discord:
        discord.add_bot(BOT_TOKEN, "Rainbot")
        yield discord


@pytest.fixture
async def http(
    database_url: str, tmp_path: Path, fake: FakeDiscord, huma_key: str | None
) -> AsyncIterator[httpx.AsyncClient]:
    extra = {"HUMA_API_KEY": huma_key} if huma_key else {}
    settings = make_settings(
        database_url,
        tmp_path,
        DISCORD_API_URL=fake.api_url,
        HUMA_API_URL="http://127.0.0.1:9",
        **extra,
    )
    application: FastAPI = create_app(settings)
    async with application.router.lifespan_context(application), api_client(application) as c:
        yield c


@pytest.fixture
async def ada(http: httpx.AsyncClient) -> ApiUser:
    return await register_user(http)


@pytest.fixture
async def guild(fake: FakeDiscord) -> FakeGuild:
    return fake.add_guild("Rain Club", bots=[fake.bot(BOT_TOKEN)])


async def switched_on(http: httpx.AsyncClient, ada: ApiUser, guild: FakeGuild) -> str:
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    response = await http.put(
        f"/api/servers/{server['serverId']}", json={"botActive": True}, headers=ada.headers
    )
    assert response.status_code == 200, response.text
    return str(server["serverId"])


async def report(
    http: httpx.AsyncClient, user_id: str, state: str, guilds: list[FakeGuild], **extra: Any
) -> None:
    entries = [
        {"guildId": str(g.id), "present": True, "channelsWatched": 2, "channelsReadable": 2,
         "channelsSendable": 2}
        for g in guilds
    ]  # fmt: skip
    body = {"tokens": [{"userId": user_id, "state": state, "guilds": entries, **extra}]}
    response = await http.post("/api/discord/worker-status", json=body, headers=INTERNAL)
    assert response.status_code == 204, response.text


def states(html: str) -> list[tuple[str, str]]:
    """Each server state shown: (kind, text)."""
    return [
        (kind, text_of(inner).strip())
        for kind, inner in re.findall(
            r'data-testid="server-state" data-state="([a-z_]+)">(.*?)</span></span>', html, re.S
        )
    ]


def checklist(html: str) -> dict[str, str]:
    """The server page's checklist: check id → state."""
    return dict(re.findall(r'data-check="([a-z]+)" data-state="([a-z]+)"', html))


async def test_a_server_that_answers_reads_active_everywhere(
    http: httpx.AsyncClient, ada: ApiUser, guild: FakeGuild
) -> None:
    server_id = await switched_on(http, ada, guild)
    await report(http, ada.id, "online", [guild])

    dashboard = (await http.get("/dashboard")).text
    assert states(dashboard) == [("active", "Active")]
    assert 'data-testid="active-count">1<' in dashboard
    assert 'data-testid="ready-count">1<' in dashboard
    assert 'data-state="active"' in dashboard.split('role="switch"')[1].split(">")[0]
    assert "Why the bot may stay silent" not in dashboard

    page = (await http.get(f"/dashboard/servers/{server_id}")).text
    assert states(page) == [("active", "Active")]
    assert set(checklist(page).values()) == {"ok"} and len(checklist(page)) == 7
    assert "The bot takes part in this server's conversations as" in text_of(page)


@pytest.mark.parametrize("huma_key", [None])
async def test_without_an_engine_the_pages_say_the_bot_is_not_answering_and_why(
    http: httpx.AsyncClient, ada: ApiUser, guild: FakeGuild
) -> None:
    server_id = await switched_on(http, ada, guild)
    await report(http, ada.id, "online", [guild])

    dashboard = (await http.get("/dashboard")).text
    [(kind, text)] = states(dashboard)
    assert kind == "not_answering"
    assert text.startswith("On, but not answering: HUMA is not set up on this install")
    assert 'data-testid="active-count">1<' in dashboard
    assert 'data-testid="ready-count">0<' in dashboard
    # The switch is on, but not green (its colour follows the state).
    switch = dashboard.split('role="switch"')[1].split(">")[0]
    assert 'aria-checked="true"' in switch and 'data-state="not_answering"' in switch
    # The Discord card says it at the account level, too.
    assert "Why the bot may stay silent" in dashboard
    assert "Agent engine: HUMA is not set up" in text_of(dashboard)

    page = (await http.get(f"/dashboard/servers/{server_id}")).text
    assert states(page)[0][0] == "not_answering"
    assert checklist(page)["engine"] == "problem"
    assert checklist(page)["token"] == checklist(page)["channels"] == "ok"
    assert "cannot answer here yet: fix what is marked ✗ below" in text_of(page)
    assert "HUMA_API_KEY is missing" in page


async def test_while_connecting_the_pages_say_checking(
    http: httpx.AsyncClient, ada: ApiUser, guild: FakeGuild
) -> None:
    server_id = await switched_on(http, ada, guild)
    await report(http, ada.id, "connecting", [], detail="starting")
    assert states((await http.get("/dashboard")).text) == [("checking", "On — checking…")]
    page = (await http.get(f"/dashboard/servers/{server_id}")).text
    assert checklist(page)["gateway"] == "unknown"
    assert "checking that" in text_of(page)


async def test_intent_missing_reads_on_the_card_and_the_discord_card(
    http: httpx.AsyncClient, ada: ApiUser, guild: FakeGuild
) -> None:
    await switched_on(http, ada, guild)
    await report(
        http, ada.id, "connecting", [], detail="gateway connection lost; resuming",
        reason="intent_missing",
    )  # fmt: skip
    dashboard = (await http.get("/dashboard")).text
    [(kind, text)] = states(dashboard)
    assert kind == "not_answering"
    assert "Discord refused the message content intent" in text
    assert "Message content intent: Discord refused" in text_of(dashboard)


async def test_a_server_switched_off_reads_off(
    http: httpx.AsyncClient, ada: ApiUser, guild: FakeGuild
) -> None:
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    assert states((await http.get("/dashboard")).text) == [("off", "Off")]
    page = (await http.get(f"/dashboard/servers/{server['serverId']}")).text
    assert states(page) == [("off", "Off")]
    assert checklist(page)["active"] == "problem"
    assert "When on, the bot takes part" in text_of(page)


@pytest.mark.parametrize("huma_key", [None])
async def test_the_chat_page_knows_why_the_bot_would_not_answer(
    http: httpx.AsyncClient, ada: ApiUser, guild: FakeGuild
) -> None:
    await connect(http, ada)
    await add_server(http, ada, guild)
    html = (await http.get("/chat")).text
    data = json.loads(re.search(r'id="chat-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    [server] = data["servers"]
    assert server["botActive"] is False
    engine = next(c for c in server["readiness"]["checks"] if c["id"] == "engine")
    assert engine["state"] == "problem" and "HUMA_API_KEY" in engine["message"]
    assert 'id="chat-readiness"' in html
