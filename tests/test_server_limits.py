"""Limits of the HTTP server itself, on a real uvicorn started with the product's options: the size
of a request's head, the number of headers, the size of a WebSocket message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from neonrain.chat.ws import MAX_FRAME_CHARS
from neonrain.middleware import MAX_HEADER_BYTES, MAX_WEBSOCKET_MESSAGE_BYTES
from tests.chat.conftest import add_server
from tests.conftest import assert_error, make_settings, register_user
from tests.webapp import served


async def raw_request(base: str, head: bytes, chunk: int = 16 * 1024) -> bytes:
    """Send ``head`` as it is, a chunk at a time, and read the answer until the server closes or
    5 s pass; b"" when the server reset the connection (it closed with data unread)."""
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        async with asyncio.timeout(5):
            for start in range(0, len(head), chunk):
                if reader.at_eof() or writer.is_closing():
                    break
                writer.write(head[start : start + chunk])
                await writer.drain()
                await asyncio.sleep(0)
            return await reader.read(65536)
    except ConnectionError:
        return b""
    finally:
        writer.close()


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[str]:
    async with served(make_settings(f"sqlite+aiosqlite:///{tmp_path}/n.db", tmp_path)) as web:
        yield web.url


async def test_an_oversized_request_head_is_refused(base: str) -> None:
    # Never finished: the server must stop reading on its own, not wait for the end of it.
    endless = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 * 1024 * 1024)
    answer = await raw_request(base, endless)
    # Refused once the limit is passed (or reset before the client could read the answer).
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:200]
    small_excess = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEADER_BYTES
    answer = await raw_request(base, small_excess + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"code": "HEADERS_TOO_LARGE"' in answer
    # A head just under the limit is fine.
    async with httpx.AsyncClient(base_url=base) as http:
        filler = "a" * (MAX_HEADER_BYTES - 2048)
        response = await http.get("/healthz", headers={"X-Filler": filler})
    assert response.status_code in (200, 503)  # answered by the app (the database is not set up)


async def test_too_many_headers_are_refused_with_431(base: str) -> None:
    many = {f"X-H{n}": "1" for n in range(150)}
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.get("/api/auth/me", headers=many)
        assert_error(response, 431, "HEADERS_TOO_LARGE")
        ordinary = await http.get("/api/auth/me", headers={f"X-H{n}": "1" for n in range(40)})
        assert_error(ordinary, 401, "UNAUTHENTICATED")


async def test_an_oversized_websocket_message_closes_the_socket(
    database_url: str, tmp_path: Path
) -> None:
    assert MAX_WEBSOCKET_MESSAGE_BYTES >= 4 * MAX_FRAME_CHARS  # a longest chat frame fits
    async with served(make_settings(database_url, tmp_path)) as web:
        async with httpx.AsyncClient(base_url=web.url) as http:
            user = await register_user(http)
            server_id = await add_server(web.app.state.neonrain, user.id, "Guild")
            group = await http.post(
                "/api/chat/groups", json={"serverId": server_id, "paneCount": 1},
                headers=user.headers,
            )  # fmt: skip
            conversation_id = group.json()["conversations"][0]["id"]
        ws_url = web.url.replace("http://", "ws://") + f"/ws/chat/{conversation_id}"
        async with connect(f"{ws_url}?token={user.token}", max_size=None) as socket:
            ready = json.loads(await asyncio.wait_for(socket.recv(), 5))
            assert ready["type"] == "chat:ready"
            await socket.send("x" * (MAX_WEBSOCKET_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big
