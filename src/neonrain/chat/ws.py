"""``/ws/chat/:conversationId`` — the web chat's WebSocket (``api.md`` § Chat).

Authenticated by the session cookie or ``?token=``; the ``Origin`` must be the site's own (a
browser always sends it; a client without one must use ``?token=``). A refused origin is refused
at the handshake; a missing sign-in or someone else's conversation gets a ``chat:error`` and the
close codes 4401 / 4404 (so a page knows not to reconnect).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketState

from neonrain.accounts import service as accounts_service
from neonrain.accounts.clerk import looks_like_jwt
from neonrain.accounts.deps import SESSION_COOKIE
from neonrain.accounts.models import User
from neonrain.accounts.ratelimit import SlidingWindowLimiter, reserve
from neonrain.chat import service
from neonrain.chat.hub import (
    CLOSE_NO_SERVER,
    CLOSE_NOT_FOUND,
    NO_SERVER_ERROR,
    Client,
    Room,
)
from neonrain.chat.schemas import ClientMessage
from neonrain.errors import ApiError
from neonrain.state import AppState, get_ws_state

log = logging.getLogger(__name__)

router = APIRouter()

RATE_LIMIT: Final = 20
RATE_WINDOW_SECONDS: Final = 10.0
#: Frames per user in the same window, whatever the number of sockets (room for "send to all"
#: across five panes a few times).
USER_RATE_LIMIT: Final = 30
MAX_FRAME_CHARS: Final = 32_000
#: Arrays/objects inside each other; a frame needs 2. Deeper JSON made the parser recurse until
#: it raised RecursionError (31,000 ``[`` were enough).
MAX_NESTING: Final = 16
CLOSE_UNAUTHENTICATED: Final = 4401

#: Frames per user over every socket of this process. In process memory: with several web
#: replicas a user's sockets on different replicas are counted apart.
_frames_by_user = SlidingWindowLimiter(limit=USER_RATE_LIMIT, window_seconds=RATE_WINDOW_SECONDS)


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"]+")


class RedactTokens(logging.Filter):
    """Uvicorn logs a WebSocket's path with its query string: hide ``?token=`` values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.error", "uvicorn.access"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in target.filters):
            target.addFilter(RedactTokens())


install_log_redaction()


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds (sliding window)."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._times: collections.deque[float] = collections.deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def nesting_exceeds(text: str, limit: int = MAX_NESTING) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``limit`` deep (brackets in
    strings do not count). Checked before parsing, which would recurse that deep."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped_at = -1  # the position of a character escaped by a backslash in a string
    for match in _STRUCTURE.finditer(text):
        at, char = match.start(), match.group()
        if in_string:
            if at == escaped_at:
                continue
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
        elif char == '"':
            in_string = True
    return False


def origin_allowed(websocket: WebSocket, *, via_token: bool) -> bool:
    """The ``Origin`` is this site: its host is the request's ``Host`` (or, behind a proxy, the
    ``X-Forwarded-Host`` it set; a page on another site cannot set that header)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return via_token  # not a browser: only a token can authenticate it
    parts = urlsplit(origin)
    hosts = {websocket.headers.get("host", "").lower()}
    forwarded = websocket.headers.get("x-forwarded-host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip().lower())
    hosts.discard("")
    return parts.scheme in ("http", "https") and parts.netloc.lower() in hosts


async def _authenticate(db: AsyncSession, state: AppState, websocket: WebSocket) -> User | None:
    token = websocket.query_params.get("token") or websocket.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if state.clerk is not None and looks_like_jwt(token):
        clerk_user_id = await state.clerk.verify(token)
        if clerk_user_id is None:
            return None
        return await accounts_service.user_for_clerk_id(db, clerk_user_id)
    resolved = await accounts_service.resolve_session(db, token)
    return resolved[0] if resolved is not None else None


def _frame(kind: str, data: Mapping[str, Any]) -> str:
    return json.dumps({"type": kind, "data": dict(data)}, ensure_ascii=False)


@router.websocket("/ws/chat/{conversation_id}")
async def chat_socket(websocket: WebSocket, conversation_id: str) -> None:
    state = get_ws_state(websocket)
    if not origin_allowed(websocket, via_token="token" in websocket.query_params):
        await websocket.close(code=1008)  # before accept: the handshake is refused (403)
        return
    send_lock = asyncio.Lock()
    open_ = True

    async def send(kind: str, data: Mapping[str, Any]) -> None:
        nonlocal open_
        if not open_:
            return
        try:
            async with send_lock:
                await websocket.send_text(_frame(kind, data))
        except Exception as exc:  # the socket went away; the room forgets it on leave
            open_ = False
            log.info(
                "web chat frame not delivered, socket closed conversation_id=%s type=%s error=%s",
                conversation_id,
                kind,
                type(exc).__name__,
            )

    async def close(code: int) -> None:
        nonlocal open_
        if websocket.client_state == WebSocketState.CONNECTED:
            try:
                async with send_lock:
                    await websocket.close(code=code)
            except Exception:
                log.debug("web chat socket already closed", exc_info=True)
        open_ = False

    async with state.sessionmaker() as db:
        user = await _authenticate(db, state, websocket)
        await websocket.accept()
        if user is None:
            await send("chat:error", {"code": "UNAUTHENTICATED", "message": "Sign in to chat."})
            await close(CLOSE_UNAUTHENTICATED)
            return
        try:
            conversation, group = await service.get_conversation(db, user.id, conversation_id)
        except ApiError as exc:
            await send("chat:error", {"code": exc.code, "message": exc.message})
            await close(CLOSE_NOT_FOUND)
            return
        config = await service.load_server_config(db, user.id, group.server_id)
        room_fields: dict[str, Any] = {
            "conversation_id": conversation.id,
            "group_id": group.id,
            "user_id": user.id,
            "user_name": service.user_display_name(user),
            "server_id": group.server_id,
            "agent_id": conversation.huma_agent_id,
            "agent_fingerprint": conversation.huma_agent_fingerprint,
            "agent_expires_at": conversation.huma_agent_expires_at,
        }
        title = group.title
    if config is None:
        await send("chat:error", NO_SERVER_ERROR)
        await close(CLOSE_NO_SERVER)
        return

    client = Client(send, close)
    hub = state.chat_hub
    room = await hub.join(client, **room_fields)
    room.bot_name = config.bot_name
    try:
        await send(
            "chat:ready",
            {
                "conversationId": conversation_id,
                "title": title,
                "botName": config.bot_name,
                "serverName": config.server_name,
            },
        )
        await room.welcome(client)
        await _serve(websocket, room, client, room_fields["user_id"])
    finally:
        await hub.leave(room, client)


async def _serve(websocket: WebSocket, room: Room, client: Client, user_id: str) -> None:
    limiter = RateLimiter()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if not limiter.allow():
            await _rate_limited(client, f"at most {RATE_LIMIT} messages per")
            continue
        if reserve((_frames_by_user, user_id)) is not None:
            await _rate_limited(client, f"at most {USER_RATE_LIMIT} messages across your chats per")
            continue
        problem = await _handle(room, client, message.get("text"))
        if problem is not None:
            await client.send("chat:error", {"code": "INVALID_MESSAGE", "message": problem})


async def _rate_limited(client: Client, limit: str) -> None:
    await client.send(
        "chat:error",
        {"code": "RATE_LIMITED", "message": f"Slow down: {limit} {RATE_WINDOW_SECONDS:g} seconds."},
    )


async def _handle(room: Room, client: Client, text: str | None) -> str | None:
    """Handle one client frame; returns what was wrong with it, if anything."""
    if text is None or len(text) > MAX_FRAME_CHARS:
        return "Send JSON text frames of at most 32,000 characters."
    if nesting_exceeds(text):
        return f"The frame nests arrays or objects more than {MAX_NESTING} deep."
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return "The frame is not valid JSON."
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return 'A frame is {"type": ..., "data": {...}}.'
    data = frame.get("data") if frame.get("data") is not None else {}
    if not isinstance(data, dict):
        return "The frame's data must be an object."
    kind = frame["type"]
    if kind == "chat:cancel":
        await room.cancel()
        return None
    if kind != "chat:message":
        return f"Unknown frame type {kind[:40]!r}."
    try:
        body = ClientMessage.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "data"
        return f"{where}: {first.get('msg', 'invalid')}"
    content = body.content.strip()
    if not content:
        return "content: the message is empty."
    await room.handle_message(client, content, body.sender_name or None)
    return None
