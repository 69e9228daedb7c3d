"""Fixtures of the page tests: the app against the fake Discord, a client whose cookie jar signs
in as Ada, and small helpers."""

from __future__ import annotations

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

BOT_TOKEN = "MTIzNDU2Nzg5.fake-bot-token.secret-part-that-must-never-leak"
INTERNAL = {"X-API-Key": TEST_INTERNAL_KEY}


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as discord:
        discord.add_bot(BOT_TOKEN, "Rainbot")
        yield discord


@pytest.fixture
async def web_app(database_url: str, tmp_path: Path, fake: FakeDiscord) -> AsyncIterator[FastAPI]:
    settings = make_settings(database_url, tmp_path, DISCORD_API_URL=fake.api_url)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(web_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(web_app) as client:
        yield client


@pytest.fixture
async def ada(http: httpx.AsyncClient) -> ApiUser:
    # Registering through the client leaves the session cookie in its jar: pages see Ada.
    return await register_user(http)


async def connect(http: httpx.AsyncClient, user: ApiUser) -> None:
    response = await http.post(
        "/api/discord/connect", json={"token": BOT_TOKEN}, headers=user.headers
    )
    assert response.status_code == 200, response.text


async def add_server(http: httpx.AsyncClient, user: ApiUser, guild: FakeGuild) -> dict[str, Any]:
    response = await http.post(
        "/api/servers", json={"guildId": str(guild.id)}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def text_of(html: str) -> str:
    """The page's text, roughly (tags removed, whitespace collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
