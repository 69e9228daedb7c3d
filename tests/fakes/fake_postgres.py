"""A fake PostgreSQL server that refuses every connection with a chosen error, as a real one does
when it is full (``53300 too many clients``) or shutting down (``57P03``): it speaks just enough of
the protocol to decline TLS and answer the startup message with an ``ErrorResponse``."""

from __future__ import annotations

import asyncio
import struct
from types import TracebackType

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
PROTOCOL_3 = 196608


class RefusingPostgres:
    """``async with RefusingPostgres("53300", "sorry, too many clients already") as fake:`` —
    ``fake.url`` is an asyncpg URL for SQLAlchemy; ``fake.refused`` counts refused startups."""

    def __init__(self, sqlstate: str, message: str) -> None:
        self.sqlstate = sqlstate
        self.message = message
        self.refused = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/neonrain"

    async def __aenter__(self) -> RefusingPostgres:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _error_response(self) -> bytes:
        fields = b"".join(
            kind + value.encode() + b"\0"
            for kind, value in (
                (b"S", "FATAL"),
                (b"V", "FATAL"),
                (b"C", self.sqlstate),
                (b"M", self.message),
            )
        )
        body = fields + b"\0"
        return b"E" + struct.pack("!I", len(body) + 4) + body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!I", await reader.readexactly(4))
                payload = await reader.readexactly(length - 4)
                (code,) = struct.unpack("!I", payload[:4])
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    writer.write(b"N")  # no TLS, no GSSAPI: go on in plain text
                    await writer.drain()
                    continue
                if code == PROTOCOL_3:
                    self.refused += 1
                    writer.write(self._error_response())
                    await writer.drain()
                return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()
