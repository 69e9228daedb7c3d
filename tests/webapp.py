"""The web app on a real loopback port, in the caller's event loop (tests and benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from neonrain.app import create_app
from neonrain.config import Settings
from neonrain.middleware import server_options


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebApp:
    """The web app on a real port (the worker reaches it over HTTP, as in production)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.app = create_app(settings)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                timeout_graceful_shutdown=1,
            )
        )
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server.should_exit = False
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
        self.server = uvicorn.Server(self.server.config)


@dataclass
class Served:
    url: str
    app: FastAPI


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[Served]:
    """The app on a real loopback port with the uvicorn options ``neonrain serve``/``web`` use
    (h11, header and WebSocket limits)."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1,
            **server_options(),
        )
    )  # fmt: skip
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.02)
        yield Served(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await task
