"""Fixtures of the API tests: the app pointed at a fake Discord running in the test's loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from neonrain.config import Settings
from neonrain.db.base import utcnow
from neonrain.db.changes import current_generation
from neonrain.state import AppState
from neonrain.websites.models import WebsiteScrape
from tests.conftest import TEST_INTERNAL_KEY, ApiUser, make_settings
from tests.fakes.fake_discord import FakeBot, FakeDiscord, FakeGuild

BOT_TOKEN = "ada-bot-token.XYZ"
OTHER_BOT_TOKEN = "grace-bot-token.XYZ"
INTERNAL = {"X-API-Key": TEST_INTERNAL_KEY}


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, tmp_path: Path, fake_discord: FakeDiscord) -> Settings:
    return make_settings(database_url, tmp_path, DISCORD_API_URL=fake_discord.api_url)


class World:
    """A fake Discord with two bots and a few guilds."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.bot: FakeBot = fake.add_bot(BOT_TOKEN, "Ada Bot", avatar="abc123")
        self.other_bot: FakeBot = fake.add_bot(OTHER_BOT_TOKEN, "Grace Bot")
        self.guild1: FakeGuild = fake.add_guild("Gaming", icon="icon1", bots=[self.bot])
        self.guild2: FakeGuild = fake.add_guild("Support", bots=[self.bot, self.other_bot])
        self.guild3: FakeGuild = fake.add_guild("Cooking", bots=[self.bot])
        self.foreign: FakeGuild = fake.add_guild("Elsewhere", bots=[self.other_bot])
        self.no_bot: FakeGuild = fake.add_guild("Nobody")


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return World(fake_discord)


async def connect(http: httpx.AsyncClient, user: ApiUser, token: str = BOT_TOKEN) -> Any:
    response = await http.post("/api/discord/connect", json={"token": token}, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def add_server(http: httpx.AsyncClient, user: ApiUser, guild: FakeGuild) -> dict[str, Any]:
    response = await http.post(
        "/api/servers", json={"guildId": str(guild.id)}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_website(
    http: httpx.AsyncClient, user: ApiUser, server_id: str, url: str, name: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"url": url}
    if name is not None:
        payload["name"] = name
    response = await http.post(
        f"/api/servers/{server_id}/websites", json=payload, headers=user.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def connected(client: httpx.AsyncClient, user: ApiUser, world: World) -> ApiUser:
    """``user`` with the Ada bot connected."""
    await connect(client, user)
    return user


def state_of(app: FastAPI) -> AppState:
    state: AppState = app.state.neonrain
    return state


async def generation_of(app: FastAPI) -> int:
    async with state_of(app).sessionmaker() as session:
        return await current_generation(session)


async def add_scrape(
    app: FastAPI,
    website_id: str,
    markdown: str,
    *,
    error: str | None = None,
    at: datetime | None = None,
    truncated: bool = False,
) -> None:
    """A finished scrape, as the scraper would store it."""
    async with state_of(app).sessionmaker() as session:
        session.add(
            WebsiteScrape(
                website_id=website_id,
                markdown_content=markdown,
                content_length=len(markdown),
                truncated=truncated,
                status_code=200 if error is None else 500,
                error_message=error,
                scraped_at=at or utcnow(),
            )
        )
        await session.commit()


async def report_worker(
    http: httpx.AsyncClient, user_id: str, state: str, detail: str = "", guild_ids: Any = ()
) -> None:
    response = await http.post(
        "/api/discord/worker-status",
        json={
            "tokens": [
                {"userId": user_id, "state": state, "detail": detail, "guildIds": list(guild_ids)}
            ]
        },
        headers=INTERNAL,
    )
    assert response.status_code == 204, response.text


async def post_stats(http: httpx.AsyncClient, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = await http.post("/api/discord/stats", json={"events": events}, headers=INTERNAL)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def post_action(
    http: httpx.AsyncClient, user_id: str, guild_id: str, message: str = "hello"
) -> str:
    response = await http.post(
        "/api/discord/agent-actions",
        json={
            "userId": user_id,
            "guildId": guild_id,
            "channelId": "1300000000000000001",
            "channelName": "general",
            "agentMessage": message,
            "triggerDescription": "User ana in #general: hi",
            "messageHistory": {
                "preceding": [
                    {
                        "author": "ana",
                        "authorId": "1400000000000000001",
                        "content": "hi",
                        "timestamp": "2026-01-09T10:00:00.000Z",
                    }
                ],
                "agentResponse": {"content": message},
            },
        },
        headers=INTERNAL,
    )
    assert response.status_code == 201, response.text
    action_id: str = response.json()["id"]
    return action_id
