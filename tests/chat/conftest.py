"""The chat's harness: the real app on a loopback port (uvicorn, in the test's event loop), the
fake HUMA, and WebSocket clients (the ``websockets`` library)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from neonrain.servers.models import Server, UserServerConfig
from neonrain.state import AppState
from neonrain.websites.models import ServerWebsite, WebsiteScrape
from tests.conftest import ApiUser, make_settings, register_user
from tests.fakes.fake_huma import FakeHuma
from tests.webapp import WebApp

HUMA_KEY = "chat-huma-key"
_guilds = iter(range(1_300_000_000_000_000_001, 1_400_000_000_000_000_000))


async def add_server(
    state: AppState,
    user_id: str,
    guild_name: str,
    *,
    bot_name: str = "Nova",
    personality: str = "",
    rules: str = "",
    information: str = "",
    bot_active: bool = False,
    website: tuple[str, str] | None = None,
) -> str:
    """A configured server for ``user_id`` (rows inserted directly); returns the server id."""
    async with state.sessionmaker() as db:
        server = Server(guild_id=str(next(_guilds)), guild_name=guild_name, guild_icon=None)
        db.add(server)
        await db.flush()
        config = UserServerConfig(
            user_id=user_id,
            server_id=server.id,
            bot_name=bot_name,
            personality=personality,
            rules=rules,
            information=information,
            bot_active=bot_active,
        )
        db.add(config)
        await db.flush()
        if website is not None:
            site = ServerWebsite(user_server_config_id=config.id, url=website[0], name="Wiki")
            db.add(site)
            await db.flush()
            db.add(
                WebsiteScrape(
                    website_id=site.id,
                    markdown_content=website[1],
                    content_length=len(website[1]),
                    status_code=200,
                )
            )
        await db.commit()
        return server.id


class ChatSocket:
    """A client of ``/ws/chat/:id`` that records every frame."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def send(self, kind: str, data: Any) -> None:
        await self.ws.send(json.dumps({"type": kind, "data": data}))

    async def say(self, content: str, sender_name: str | None = None) -> None:
        data: dict[str, Any] = {"content": content}
        if sender_name is not None:
            data["senderName"] = sender_name
        await self.send("chat:message", data)

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame (of ``kind``); skipped frames are still recorded in ``frames``."""
        async with asyncio.timeout(timeout):
            while True:
                frame: dict[str, Any] = json.loads(await self.ws.recv())
                self.frames.append(frame)
                if kind is None or frame["type"] == kind:
                    return frame

    async def collect(self, seconds: float) -> list[dict[str, Any]]:
        """Every frame arriving within ``seconds``."""
        got: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            async with asyncio.timeout(seconds):
                while True:
                    frame = json.loads(await self.ws.recv())
                    self.frames.append(frame)
                    got.append(frame)
        return got

    async def close(self) -> None:
        await self.ws.close()


@dataclass
class ChatEnv:
    fake: FakeHuma
    web: WebApp
    http: httpx.AsyncClient
    sockets: list[ChatSocket] = field(default_factory=list)

    @property
    def state(self) -> AppState:
        state: AppState = self.web.app.state.neonrain
        return state

    async def user(self, email: str = "ada@example.com") -> ApiUser:
        return await register_user(self.http, email)

    async def server(self, user: ApiUser, guild_name: str = "Rust Lovers", **config: Any) -> str:
        return await add_server(self.state, user.id, guild_name, **config)

    async def group(self, user: ApiUser, server_id: str, panes: int = 1) -> dict[str, Any]:
        response = await self.http.post(
            "/api/chat/groups",
            json={"serverId": server_id, "paneCount": panes},
            headers=user.headers,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def connect(
        self, user: ApiUser | None, conversation_id: str, *, origin: str | None = "same"
    ) -> ChatSocket:
        query = f"?token={user.token}" if user is not None else ""
        url = f"ws://127.0.0.1:{self.web.port}/ws/chat/{conversation_id}{query}"
        headers = {}
        if origin == "same":
            headers["Origin"] = self.web.url
        elif origin is not None:
            headers["Origin"] = origin
        ws = await connect(url, additional_headers=headers, open_timeout=5)
        socket = ChatSocket(ws)
        self.sockets.append(socket)
        return socket

    async def ready(self, user: ApiUser, conversation_id: str) -> ChatSocket:
        socket = await self.connect(user, conversation_id)
        frame = await socket.next()
        assert frame["type"] == "chat:ready", frame
        return socket


@contextlib.asynccontextmanager
async def chat_env(database_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[ChatEnv]:
    async with FakeHuma(api_key=HUMA_KEY) as fake:
        values: dict[str, Any] = {"HUMA_API_URL": fake.url, "HUMA_API_KEY": HUMA_KEY}
        values.update(overrides)
        web = WebApp(make_settings(database_url, tmp_path, **values))
        await web.start()
        async with httpx.AsyncClient(base_url=web.url, timeout=30) as http:
            env = ChatEnv(fake, web, http)
            try:
                yield env
            finally:
                for socket in env.sockets:
                    with contextlib.suppress(Exception):
                        await socket.close()
                await web.stop()


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[ChatEnv]:
    async with chat_env(database_url, tmp_path) as environment:
        yield environment
