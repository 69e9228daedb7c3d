"""Hostile WebSocket clients: deeply nested frames, and one user spreading frames over many
sockets to get around the per-socket rate limit."""

from __future__ import annotations

from sqlalchemy import func, select

from neonrain.chat.models import ChatMessage
from neonrain.chat.ws import MAX_NESTING, RATE_LIMIT, USER_RATE_LIMIT, nesting_exceeds
from tests.chat.conftest import ChatEnv


async def test_deeply_nested_frames_are_invalid_and_the_socket_stays_open(env: ChatEnv) -> None:
    ada = await env.user()
    group = await env.group(ada, await env.server(ada))
    socket = await env.ready(ada, group["conversations"][0]["id"])
    for frame in (
        "[" * 31_000,
        "{" * 31_000,
        '{"type": "chat:message", "data": ' + '{"a": ' * 5_000 + "1" + "}" * 5_001,
        '{"type": "chat:message", "data": {"content": "hi", "x": ' + "[" * 40 + "]" * 40 + "}}",
    ):
        await socket.ws.send(frame)
        error = await socket.next()
        assert error["type"] == "chat:error", error
        assert error["data"]["code"] == "INVALID_MESSAGE", error
    # Brackets inside a string are text, not nesting.
    await socket.say("[" * 1_000 + " {{{ " + "]" * 1_000)
    echo = await socket.next("chat:message")
    assert echo["data"]["content"].startswith("[[[")


def test_nesting_is_measured_outside_strings() -> None:
    assert not nesting_exceeds('{"a": [1, {"b": 2}]}')
    assert nesting_exceeds("[" * (MAX_NESTING + 1))
    assert not nesting_exceeds("[" * MAX_NESTING + "]" * MAX_NESTING)
    assert not nesting_exceeds('{"content": "' + "[" * 500 + '"}')
    assert not nesting_exceeds('{"content": "\\"' + "[" * 500 + '"}')  # an escaped quote
    assert nesting_exceeds('{"content": "\\\\"' + ", " + '"x": ' + "[" * 500 + "}")


async def test_the_rate_limit_is_per_user_across_sockets(env: ChatEnv) -> None:
    ada = await env.user()
    group = await env.group(ada, await env.server(ada), panes=5)
    sockets = [await env.ready(ada, c["id"]) for c in group["conversations"]]
    grace = await env.user("grace@example.com")
    graces_group = await env.group(grace, await env.server(grace))
    graces = await env.ready(grace, graces_group["conversations"][0]["id"])
    per_socket = RATE_LIMIT - 1  # under the limit of every single socket
    assert per_socket * len(sockets) > USER_RATE_LIMIT
    for n in range(per_socket):
        for index, socket in enumerate(sockets):
            await socket.say(f"flood {index}-{n}")
    limited = echoed = 0
    for socket in sockets:  # each frame is answered: an echo of the message, or an error
        for _ in range(per_socket):
            while True:
                frame = await socket.next(timeout=30)
                if frame["type"] == "chat:error" and frame["data"]["code"] == "RATE_LIMITED":
                    assert "your chats" in frame["data"]["message"]
                    limited += 1
                    break
                if frame["type"] == "chat:message" and frame["data"]["role"] == "user":
                    echoed += 1
                    break
    assert (echoed, limited) == (USER_RATE_LIMIT, per_socket * len(sockets) - USER_RATE_LIMIT)
    async with env.state.sessionmaker() as db:
        stored = await db.scalar(
            select(func.count()).select_from(ChatMessage).where(ChatMessage.role == "user")
        )
    assert stored == USER_RATE_LIMIT
    # Another user is not affected.
    await graces.say("hello")
    assert (await graces.next("chat:message"))["data"]["content"] == "hello"
