"""ASGI middleware and server limits: body size, header size and count, trusted proxies."""

from __future__ import annotations

import json
from typing import Any, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from neonrain.errors import STATUS_CODES

MAX_BODY_BYTES = 1024 * 1024
#: The request line and headers together (h11 refuses a longer head with 400 before the app
#: runs; :class:`HeaderLimits` checks the same for servers started some other way).
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_COUNT = 100
#: A WebSocket message (the chat's frames are at most 32,000 characters, 4 bytes each at most).
MAX_WEBSOCKET_MESSAGE_BYTES = 128 * 1024


def server_options() -> dict[str, Any]:
    """uvicorn options of every server the product starts (``neonrain serve``/``web``): request
    heads capped at :data:`MAX_HEADER_BYTES` while they are read, WebSocket messages at
    :data:`MAX_WEBSOCKET_MESSAGE_BYTES`; proxy headers are left to :class:`TrustedProxyHeaders`.

    httptools, which uvicorn picks by default, reads a request head of any size (a 64 MB header
    was read and answered); h11 has a limit, but parses in Python and cost a fifth more CPU per
    request. So the httptools protocol is kept, with the limit added (:class:`HeadLimitedHttp`).
    """
    return {
        "http": HeadLimitedHttp,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,  # should h11 be chosen instead
        "ws_max_size": MAX_WEBSOCKET_MESSAGE_BYTES,
        "proxy_headers": False,
    }


class HeadLimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request whose head (request line and headers)
    grows past :data:`MAX_HEADER_BYTES` with 431 and closing the connection, before more of it
    is buffered (at most one read beyond the limit)."""

    _head_bytes: int | None = 0  # None once the current request's headers are complete

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_bytes is not None and self._head_bytes > MAX_HEADER_BYTES:
            self._refuse_head()

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_bytes = 0

    def _refuse_head(self) -> None:
        if self.transport.is_closing():
            return
        self.logger.warning("Refused a request whose headers exceed %d bytes.", MAX_HEADER_BYTES)
        body = _error_body("HEADERS_TOO_LARGE", _HEADERS_TOO_LARGE)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()


class TrustedProxyHeaders:
    """``X-Forwarded-For``/``-Proto`` are believed only from the peers in ``FORWARDED_ALLOW_IPS``
    (addresses, networks or ``*``); with none configured they are ignored, so a client cannot
    choose the address that rate limits count it under. Done here rather than by uvicorn so it
    holds however the app is served; uvicorn's implementation does the parsing."""

    def __init__(self, app: ASGIApp, trusted: str = "") -> None:
        hosts = "*" if trusted == "*" else [h for h in trusted.split(",") if h.strip()]
        # uvicorn types the ASGI interface more narrowly than Starlette; they are the same.
        # With no trusted peer nothing is believed: the headers are then not even looked at.
        self._inner: Any = (
            ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=hosts) if hosts else app
        )

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
                await _send_error(send, 431, "HEADERS_TOO_LARGE", _HEADERS_TOO_LARGE)
                return
        await self.app(scope, receive, send)


_HEADERS_TOO_LARGE = (
    f"The request has too many or too large headers (at most {MAX_HEADER_COUNT}, "
    f"{MAX_HEADER_BYTES // 1024} KiB in all)."
)


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": message, "code": code}).encode()


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = _error_body(code, message)
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
        chunked = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.limit
                except ValueError:
                    too_large = False
                if too_large:
                    await self._refuse(send)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked:
            # The body is at most its Content-Length (checked above), or absent without one: the
            # server reads no more, so there is nothing to count (most requests are GETs).
            await self.app(scope, receive, send)
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
        await _send_error(send, 413, *STATUS_CODES[413])
