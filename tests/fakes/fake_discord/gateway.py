"""Gateway sessions and connections of the fake Discord.

A *session* is what Discord keeps per IDENTIFY: a sequence number and the events dispatched to it,
so that a client that lost its connection can RESUME and get what it missed. A *connection* is one
WebSocket; it has its own outgoing queue so that every send happens in order from one writer task,
and so that the test-facing API can dispatch events synchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .models import JSON, FakeBot

_log = logging.getLogger(__name__)

ZLIB_SUFFIX = b"\x00\x00\xff\xff"


class Op:
    """Gateway opcodes."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class CloseCode:
    """Gateway close codes (Discord's numbering)."""

    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014


@dataclass
class GatewaySession:
    """One IDENTIFY'd session; survives its connection so that it can be resumed."""

    id: str
    bot: FakeBot
    intents: int
    shard: tuple[int, int] = (0, 1)
    seq: int = 0
    buffer: deque[JSON] = field(default_factory=lambda: deque(maxlen=2000))
    connection: GatewayConnection | None = None
    invalidated: bool = False

    def has_intent(self, intent: int) -> bool:
        return bool(self.intents & intent)

    def covers_guild(self, guild_id: int) -> bool:
        shard_id, shard_count = self.shard
        return (guild_id >> 22) % shard_count == shard_id

    def dispatch(self, event: str, data: JSON) -> None:
        """Number the event, keep it for a RESUME, and send it if a connection is attached."""
        self.seq += 1
        payload: JSON = {"op": Op.DISPATCH, "t": event, "s": self.seq, "d": data}
        self.buffer.append(payload)
        if self.connection is not None and not self.connection.closed:
            self.connection.send(payload)

    def replay_after(self, seq: int) -> list[JSON] | None:
        """The events after ``seq``, or None when some of them are no longer kept."""
        if seq > self.seq or seq < 0:
            return None
        missed = [p for p in self.buffer if p["s"] > seq]
        if len(missed) != self.seq - seq:
            return None
        return missed


@dataclass
class _Send:
    payload: JSON


@dataclass
class _Close:
    code: int
    reason: str


@dataclass
class _Abort:
    pass


@dataclass
class _Call:
    callback: Callable[[], None]


_Outgoing = _Send | _Close | _Abort | _Call


class GatewayConnection:
    """One WebSocket connection to the fake gateway."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        zlib_stream: bool,
        zlib_chunk_size: int | None,
    ) -> None:
        self.ws = ws
        self.request = request
        self.zlib_stream = zlib_stream
        self._zlib_chunk_size = zlib_chunk_size
        self._compressor = zlib.compressobj() if zlib_stream else None
        self._queue: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self.session: GatewaySession | None = None
        #: The bot an IDENTIFY named, even when it was refused (4014 for that bot).
        self.identified_bot: FakeBot | None = None
        self.closed = False
        #: Set when the fake (not the client) ended the connection, with the code it used.
        self.server_close_code: int | None = None
        self.heartbeats = 0
        self.online = False
        self._writer = asyncio.create_task(self._write_loop())

    # The queue API: everything the server sends goes through here, in order.
    def send(self, payload: JSON) -> None:
        self._queue.put_nowait(_Send(payload))

    def close(self, code: int, reason: str = "") -> None:
        self._queue.put_nowait(_Close(code, reason))

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network failure)."""
        self._queue.put_nowait(_Abort())

    def call_when_flushed(self, callback: Callable[[], None]) -> None:
        self._queue.put_nowait(_Call(callback))

    async def flush(self, timeout: float = 5.0) -> None:
        if self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    async def _write_loop(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if not self.closed:
                    await self._write(item)
            except (ConnectionError, RuntimeError) as exc:
                _log.debug("fake gateway: write failed (%s)", exc)
                self.closed = True
            finally:
                self._queue.task_done()

    async def _write(self, item: _Outgoing) -> None:
        if isinstance(item, _Send):
            await self._send_frame(item.payload)
        elif isinstance(item, _Close):
            self.server_close_code = item.code
            self.closed = True
            await self.ws.close(code=item.code, message=item.reason.encode())
        elif isinstance(item, _Abort):
            self.server_close_code = 1006
            self.closed = True
            transport = self.request.transport
            if transport is not None:
                transport.abort()
        else:
            item.callback()

    async def _send_frame(self, payload: JSON) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        if self._compressor is None:
            await self.ws.send_str(text)
            return
        data = self._compressor.compress(text.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        for chunk in _split_zlib(data, self._zlib_chunk_size):
            await self.ws.send_bytes(chunk)

    def finish(self) -> None:
        """The connection ended: stop writing and release anyone waiting on ``flush``."""
        self.closed = True
        self._writer.cancel()
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()


def _split_zlib(data: bytes, chunk_size: int | None) -> list[bytes]:
    """Split one compressed message over several frames.

    Only the last frame may end in the Z_SYNC_FLUSH suffix, and it carries the whole suffix:
    clients (discord.py among them) look for it in the frame they just received.
    """
    body, suffix = data[: -len(ZLIB_SUFFIX)], data[-len(ZLIB_SUFFIX) :]
    if not chunk_size or len(data) <= chunk_size or suffix != ZLIB_SUFFIX:
        return [data]
    chunks: list[bytes] = []
    start = 0
    while start < len(body):
        end = min(start + chunk_size, len(body))
        while end < len(body) and body[start:end].endswith(ZLIB_SUFFIX):
            end += 1
        chunks.append(body[start:end])
        start = end
    chunks[-1] += suffix
    return chunks


def parse_payload(raw: str) -> JSON | None:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
