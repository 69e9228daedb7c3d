"""ASGI middleware and server limits: body size, header size and count, trusted proxies."""

from __future__ import annotations

import json
from typing import Any, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

MAX_BODY_BYTES = 1024 * 1024
#: The request line and headers together (h11 refuses a longer head with 400 before the app
#: runs; :class:`HeaderLimits` checks the same for servers started some other way).
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_COUNT = 100
#: A WebSocket message (the chat's frames are at most 32,000 characters, 4 bytes each at most).
MAX_WEBSOCKET_MESSAGE_BYTES = 128 * 1024


def server_options() -> dict[str, Any]:
    """uvicorn options of every server the product starts (``neonrain serve``/``web``).

    h11 rather than httptools: httptools has no limit on the size of a request's head (a 64 MB
    header was read and answered). Proxy headers are left to :class:`TrustedProxyHeaders`.
    """
    return {
        "http": "h11",
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "ws_max_size": MAX_WEBSOCKET_MESSAGE_BYTES,
        "proxy_headers": False,
    }


class TrustedProxyHeaders:
    """``X-Forwarded-For``/``-Proto`` are believed only from the peers in ``FORWARDED_ALLOW_IPS``
    (addresses, networks or ``*``); with none configured they are ignored, so a client cannot
    choose the address that rate limits count it under. Done here rather than by uvicorn so it
    holds however the app is served; uvicorn's implementation does the parsing."""

    def __init__(self, app: ASGIApp, trusted: str = "") -> None:
        hosts = "*" if trusted == "*" else trusted.split(",")
        # uvicorn types the ASGI interface more narrowly than Starlette; they are the same.
        self._inner: Any = ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._inner(scope, receive, send)


class HeaderLimits:
    """Refuses requests with more than :data:`MAX_HEADER_COUNT` headers or more than
    :data:`MAX_HEADER_BYTES` of them with 431 (a WebSocket handshake is refused)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = scope.get("headers", [])
            size = sum(len(name) + len(value) + 4 for name, value in headers)
            if len(headers) > MAX_HEADER_COUNT or size > MAX_HEADER_BYTES:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await _send_error(
                    send,
                    431,
                    "HEADERS_TOO_LARGE",
                    f"The request has too many or too large headers (at most {MAX_HEADER_COUNT}, "
                    f"{MAX_HEADER_BYTES // 1024} KiB in all).",
                )
                return
        await self.app(scope, receive, send)


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": message, "code": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses request bodies over 1 MiB with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.limit
                except ValueError:
                    too_large = False
                if too_large:
                    await self._refuse(send)
                    return
        received = 0
        overflowed = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    overflowed = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The framework may turn the read error into its own 400; answer 413 instead.
            nonlocal refused
            if overflowed:
                if not refused:
                    refused = True
                    await self._refuse(send)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if not refused:
                refused = True
                await self._refuse(send)

    @staticmethod
    async def _refuse(send: Send) -> None:
        await _send_error(send, 413, "PAYLOAD_TOO_LARGE", "The request body is larger than 1 MiB.")
