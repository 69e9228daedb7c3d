"""The worker's harness: the real web app served over HTTP, the real worker, fake Discord and
fake HUMA — all in the test's event loop, on loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from neonrain.config import Settings
from tests.conftest import TEST_INTERNAL_KEY, make_settings
from tests.fakes.fake_discord import FakeDiscord, FakeGuild
from tests.fakes.fake_huma import FakeHuma
from tests.webapp import WebApp

HUMA_KEY = "huma-test-key"
PASSWORD = "correct horse battery"


@dataclass
class Account:
    """A dashboard user driving the public API (Bearer token)."""

    http: httpx.AsyncClient
    user_id: str
    token: str
    servers: dict[str, str] = field(default_factory=dict)  # guild id -> serverId

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, path, headers=self.headers, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response

    async def connect(self, bot_token: str) -> None:
        await self.call("POST", "/api/discord/connect", json={"token": bot_token})

    async def add_server(self, guild: FakeGuild, **config: Any) -> str:
        response = await self.call("POST", "/api/servers", json={"guildId": str(guild.id)})
        server_id = str(response.json()["serverId"])
        self.servers[str(guild.id)] = server_id
        if config:
            await self.configure(guild, **config)
        return server_id

    async def configure(self, guild: FakeGuild, **config: Any) -> None:
        await self.call("PUT", f"/api/servers/{self.servers[str(guild.id)]}", json=config)

    async def server(self, guild: FakeGuild) -> dict[str, Any]:
        response = await self.call("GET", f"/api/servers/{self.servers[str(guild.id)]}")
        body: dict[str, Any] = response.json()
        return body


@dataclass
class Harness:
    discord: FakeDiscord
    huma: FakeHuma
    web: WebApp
    http: httpx.AsyncClient
    settings: Settings
    workers: list[Any] = field(default_factory=list)
    spool_file: Path | None = None

    async def account(self, email: str) -> Account:
        response = await self.http.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        self.http.cookies.clear()
        return Account(self.http, body["user"]["id"], body["token"])

    def worker(self, **overrides: Any) -> Any:
        from neonrain.worker.manager import Worker

        options: dict[str, Any] = {
            "backend_url": self.web.url,
            "api_key": TEST_INTERNAL_KEY,
            "huma_api_url": self.huma.url,
            "huma_api_key": HUMA_KEY,
            "typing_wpm": self.settings.typing_wpm,
            "discord_api_url": self.discord.api_url,
            "discord_gateway_url": self.discord.gateway_url,
            "flush_seconds": 0.2,
            # One spool for every worker of the test, as for a worker restarted in place.
            "spool_file": self.spool_file,
        }
        options.update(overrides)
        worker = Worker(**options)
        self.workers.append(worker)
        return worker

    async def start_worker(self, **overrides: Any) -> Any:
        worker = self.worker(**overrides)
        await worker.start()
        await asyncio.wait_for(worker.sync.synced.wait(), 10)
        return worker

    async def wait_until(self, condition: Any, timeout: float = 10.0, what: str = "") -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def harness(database_url: str, tmp_path: Any) -> AsyncIterator[Harness]:
    async with FakeDiscord() as discord, FakeHuma(api_key=HUMA_KEY) as huma:
        settings = make_settings(
            database_url,
            tmp_path,
            DISCORD_API_URL=discord.api_url,
            HUMA_API_URL=huma.url,
            HUMA_API_KEY=HUMA_KEY,
        )
        web = WebApp(settings)
        await web.start()
        async with httpx.AsyncClient(base_url=web.url, timeout=30) as http:
            harness = Harness(
                discord, huma, web, http, settings, spool_file=tmp_path / "worker-spool.json"
            )
            try:
                yield harness
            finally:
                for worker in harness.workers:
                    with contextlib.suppress(Exception):
                        await worker.stop()
                await web.stop()
