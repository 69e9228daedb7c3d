"""The chat WebSocket against the fake HUMA, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from websockets.exceptions import InvalidStatus

from neonrain.chat.models import ChatConversation
from tests.chat.conftest import ChatEnv, chat_env


async def test_reply_arrives_after_typing_and_is_stored(env: ChatEnv) -> None:
    env.fake.script("hello", reply="Hi **there**!")
    ada = await env.user()
    server_id = await env.server(ada, bot_name="Nova")
    group = await env.group(ada, server_id)
    conversation_id = group["conversations"][0]["id"]
    socket = await env.connect(ada, conversation_id)
    ready = await socket.next()
    assert ready == {
        "type": "chat:ready",
        "data": {
            "conversationId": conversation_id,
            "title": "New chat",
            "botName": "Nova",
            "serverName": "Rust Lovers",
        },
    }
    await socket.say("hello Nova, how are you?")
    echo = await socket.next("chat:message")
    assert echo["data"]["role"] == "user"
    assert echo["data"]["content"] == "hello Nova, how are you?"
    assert echo["data"]["senderName"] is None
    assert echo["data"]["contentHtml"] is None
    title = await socket.next("chat:title-updated")
    assert title["data"] == {"title": "hello Nova, how are you?"}
    reply = await socket.next("chat:message")
    assert reply["data"]["role"] == "assistant"
    assert reply["data"]["content"] == "Hi **there**!"
    assert reply["data"]["senderName"] == "Nova"
    assert "<strong>there</strong>" in reply["data"]["contentHtml"]
    kinds = [f["type"] for f in socket.frames]
    typing_on = kinds.index("chat:typing")
    assert socket.frames[typing_on]["data"] == {"isTyping": True}
    assert typing_on < len(kinds) - 1  # typing before the reply
    off = await socket.next("chat:typing")
    assert off["data"] == {"isTyping": False}

    # Both messages are in the history (stored before they were sent), the group is titled.
    response = await env.http.get(f"/api/chat/groups/{group['id']}", headers=ada.headers)
    detail = response.json()
    assert detail["title"] == "hello Nova, how are you?"
    messages = detail["conversations"][0]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["id"] == reply["data"]["id"]
    assert messages[0]["id"] == echo["data"]["id"]

    # The agent was created for this conversation, with a TTL, and is remembered.
    agent = env.fake.created[0]
    assert agent.name == f"WebChat-{conversation_id}"
    assert agent.request["ttlSeconds"] == 24 * 3600
    assert [t["name"] for t in agent.request["metadata"]["tools"]] == ["send_message"]


async def test_each_server_has_its_own_agent_and_configuration(env: ChatEnv) -> None:
    env.fake.script("hi", reply="Hello!")
    ada = await env.user()
    rust = await env.server(
        ada,
        "Rust Lovers",
        bot_name="Ferris",
        personality="Speaks like a crab.",
        rules="No C++ talk.",
        information="We meet on Fridays.",
        website=("https://rust.example/wiki", "# Rust wiki\nThe borrow checker is your friend."),
    )
    cats = await env.server(
        ada, "Cat Cafe", bot_name="Whiskers", personality="Purrs a lot.", rules="Cats only."
    )
    rust_group = await env.group(ada, rust)
    cats_group = await env.group(ada, cats)
    rust_conv = rust_group["conversations"][0]["id"]
    cats_conv = cats_group["conversations"][0]["id"]
    rust_socket = await env.ready(ada, rust_conv)
    cats_socket = await env.ready(ada, cats_conv)
    await rust_socket.say("hi crab")
    await cats_socket.say("hi cat")
    assert (await rust_socket.next("chat:message"))["data"]["role"] == "user"
    assert (await rust_socket.next("chat:message"))["data"]["senderName"] == "Ferris"
    await cats_socket.next("chat:message")
    assert (await cats_socket.next("chat:message"))["data"]["senderName"] == "Whiskers"

    assert len(env.fake.created) == 2
    by_name = {a.name: a for a in env.fake.created}
    rust_agent = by_name[f"WebChat-{rust_conv}"]
    cats_agent = by_name[f"WebChat-{cats_conv}"]
    assert rust_agent.metadata["className"] == "Ferris"
    assert "Speaks like a crab." in rust_agent.metadata["personality"]
    assert "No C++ talk." in rust_agent.metadata["instructions"]
    assert cats_agent.metadata["className"] == "Whiskers"
    assert "Purrs a lot." in cats_agent.metadata["personality"]

    rust_context = env.fake.context_updates(rust_agent.id)[-1].content["context"]
    assert rust_context["guild"]["name"] == "Rust Lovers"
    assert rust_context["you"] == {"name": "Ferris"}
    assert rust_context["customRules"] == "No C++ talk."
    assert rust_context["customPersonality"] == "Speaks like a crab."
    assert rust_context["userInformation"] == "We meet on Fridays."
    assert rust_context["currentChannel"]["id"] == f"webchat-{rust_conv}"
    [site] = rust_context["importantWebsites"]
    assert site["url"] == "https://rust.example/wiki"
    assert "borrow checker" in site["content"]
    cats_context = env.fake.context_updates(cats_agent.id)[-1].content["context"]
    assert cats_context["guild"]["name"] == "Cat Cafe"
    assert cats_context["customRules"] == "Cats only."
    assert cats_context["importantWebsites"] == []

    # Texts are re-read on every message: an edit reaches the same agent's next context.
    response = await env.http.put(
        f"/api/servers/{cats}", json={"rules": "Dogs welcome too."}, headers=ada.headers
    )
    assert response.status_code == 200, response.text
    await cats_socket.say("hi again")
    await cats_socket.next("chat:message")
    await cats_socket.next("chat:message")
    latest = env.fake.context_updates(cats_agent.id)[-1].content["context"]
    assert latest["customRules"] == "Dogs welcome too."
    assert len(env.fake.created) == 2

    # A new bot name needs a new agent; the old one is deleted.
    response = await env.http.put(
        f"/api/servers/{cats}", json={"botName": "Mittens"}, headers=ada.headers
    )
    assert response.status_code == 200, response.text
    await cats_socket.say("hi once more")
    await cats_socket.next("chat:message")
    assert (await cats_socket.next("chat:message"))["data"]["senderName"] == "Mittens"
    assert len(env.fake.created) == 3
    assert env.fake.created[2].metadata["className"] == "Mittens"
    await env.fake.wait_until(lambda: env.fake.agents[cats_agent.id].deleted)


async def test_personas_are_authors_in_the_context(env: ChatEnv) -> None:
    env.fake.script("ahoy", reply="Ahoy!")
    ada = await env.user()
    server_id = await env.server(ada)
    response = await env.http.post(
        "/api/chat/personas", json={"nickname": "Captain"}, headers=ada.headers
    )
    assert response.status_code == 201
    group = await env.group(ada, server_id)
    socket = await env.ready(ada, group["conversations"][0]["id"])
    await socket.say("first as myself")
    echo = await socket.next("chat:message")
    assert echo["data"]["senderName"] is None
    await socket.say("ahoy from the ship", sender_name="Captain")
    echo = await socket.next("chat:message")
    assert echo["data"]["senderName"] == "Captain"
    await socket.next("chat:message")  # the reply
    update = env.fake.context_updates()[-1].content
    history = update["context"]["currentChannel"]["conversationHistory"]
    assert "] ada: first as myself\n" in history
    assert "] Captain: ahoy from the ship\n" in history
    assert update["description"].startswith("User Captain sent a new message in channel #general")
    # After the reply the agent's line carries its bot name.
    await env.fake.wait_until(lambda: bool(env.fake.tool_results()))
    result = env.fake.tool_results()[-1].content
    assert "] Nova: Ahoy!\n" in result["context"]["currentChannel"]["conversationHistory"]


async def test_stop_cancels_the_reply_being_typed(database_url: str, tmp_path: Path) -> None:
    async with chat_env(database_url, tmp_path, NEONRAIN_TYPING_WPM=60) as env:
        env.fake.script("story", reply=" ".join(["word"] * 20))  # 20 s of typing
        ada = await env.user()
        group = await env.group(ada, await env.server(ada))
        socket = await env.ready(ada, group["conversations"][0]["id"])
        await socket.say("tell me a story")
        await socket.next("chat:message")
        assert (await socket.next("chat:typing"))["data"] == {"isTyping": True}
        await socket.send("chat:cancel", {})
        assert (await socket.next("chat:typing"))["data"] == {"isTyping": False}
        canceled = await env.fake.wait_for_event(lambda e: e.is_canceled)
        assert canceled.content["error"] == "Stopped by user"
        later = await socket.collect(0.5)
        assert not [f for f in later if f["type"] == "chat:message"]
        response = await env.http.get(
            f"/api/chat/conversations/{group['conversations'][0]['id']}/messages",
            headers=ada.headers,
        )
        assert [m["role"] for m in response.json()["messages"]] == ["user"]


async def test_a_tab_opened_mid_reply_sees_the_agent_typing(
    database_url: str, tmp_path: Path
) -> None:
    async with chat_env(database_url, tmp_path, NEONRAIN_TYPING_WPM=60) as env:
        env.fake.script("story", reply=" ".join(["word"] * 20))  # 20 s of typing
        ada = await env.user()
        group = await env.group(ada, await env.server(ada))
        conversation_id = group["conversations"][0]["id"]
        first = await env.ready(ada, conversation_id)
        quiet = await env.ready(ada, conversation_id)
        assert not [f for f in await quiet.collect(0.2) if f["type"] == "chat:typing"]
        await first.say("tell me a story")
        assert (await first.next("chat:typing"))["data"] == {"isTyping": True}
        late = await env.ready(ada, conversation_id)
        assert (await late.next("chat:typing", timeout=1))["data"] == {"isTyping": True}
        await first.send("chat:cancel", {})
        assert (await late.next("chat:typing"))["data"] == {"isTyping": False}
        after = await env.ready(ada, conversation_id)
        assert not [f for f in await after.collect(0.3) if f["type"] == "chat:typing"]


async def test_a_newer_reply_supersedes_the_one_being_typed(
    database_url: str, tmp_path: Path
) -> None:
    async with chat_env(database_url, tmp_path, NEONRAIN_TYPING_WPM=60) as env:
        ada = await env.user()
        group = await env.group(ada, await env.server(ada))
        conversation_id = group["conversations"][0]["id"]
        socket = await env.ready(ada, conversation_id)
        await socket.say("hello")
        await socket.next("chat:message")
        agent = await env.fake.wait_for_agent()
        await env.fake.wait_for_event(lambda e: e.is_context_update)  # connected
        channel = f"webchat-{conversation_id}"
        first = await env.fake.send_message(agent.id, channel, " ".join(["slow"] * 20))
        assert (await socket.next("chat:typing"))["data"] == {"isTyping": True}
        await env.fake.send_message(agent.id, channel, "Second.")
        reply = await socket.next("chat:message")
        assert reply["data"]["content"] == "Second."
        result = await env.fake.wait_for_tool_result(first)
        assert result.is_canceled
        assert result.content["error"] == "Superseded by newer message"
        response = await env.http.get(
            f"/api/chat/conversations/{conversation_id}/messages", headers=ada.headers
        )
        assert [m["content"] for m in response.json()["messages"]] == ["hello", "Second."]


async def test_huma_down_says_so_and_keeps_the_message(env: ChatEnv) -> None:
    env.fake.refuse_connections(1000)
    ada = await env.user()
    group = await env.group(ada, await env.server(ada))
    conversation_id = group["conversations"][0]["id"]
    socket = await env.ready(ada, conversation_id)
    await socket.say("is anyone there?")
    echo = await socket.next("chat:message")
    error = await socket.next("chat:error")
    assert error["data"]["code"] == "AGENT_UNAVAILABLE"
    assert "saved" in error["data"]["message"]
    response = await env.http.get(
        f"/api/chat/conversations/{conversation_id}/messages", headers=ada.headers
    )
    assert [m["id"] for m in response.json()["messages"]] == [echo["data"]["id"]]
    # The socket stays open and usable.
    await socket.say("still here")
    assert (await socket.next("chat:message"))["data"]["content"] == "still here"


async def test_huma_not_configured(database_url: str, tmp_path: Path) -> None:
    async with chat_env(database_url, tmp_path, HUMA_API_KEY=None) as env:
        ada = await env.user()
        group = await env.group(ada, await env.server(ada))
        conversation_id = group["conversations"][0]["id"]
        socket = await env.ready(ada, conversation_id)
        await socket.say("hello?")
        await socket.next("chat:message")
        error = await socket.next("chat:error")
        assert error["data"]["code"] == "AGENT_UNAVAILABLE"
        assert "not configured" in error["data"]["message"]
        response = await env.http.get(
            f"/api/chat/conversations/{conversation_id}/messages", headers=ada.headers
        )
        assert [m["content"] for m in response.json()["messages"]] == ["hello?"]
        assert env.fake.created == []


async def test_rate_limit_and_invalid_frames(env: ChatEnv) -> None:
    ada = await env.user()
    group = await env.group(ada, await env.server(ada))
    socket = await env.ready(ada, group["conversations"][0]["id"])
    for frame in (
        "not json",
        '["a"]',
        '{"type": "chat:message", "data": {}}',
        '{"type": "chat:message", "data": {"content": ""}}',
        '{"type": "chat:message", "data": {"content": "   "}}',
        '{"type": "chat:message", "data": {"content": 5}}',
        '{"type": "chat:message", "data": {"content": "' + "x" * 4001 + '"}}',
        '{"type": "chat:message", "data": {"content": "hi", "senderName": "' + "n" * 33 + '"}}',
        '{"type": "chat:message", "data": {"content": "hi", "extra": 1}}',
        '{"type": "chat:message", "data": "hi"}',
        '{"type": "chat:dance", "data": {}}',
        '{"type": "chat:message", "data": {"content": "nul \\u0000"}}',
    ):
        await socket.ws.send(frame)
        error = await socket.next()
        assert error["type"] == "chat:error", (frame, error)
        assert error["data"]["code"] == "INVALID_MESSAGE", (frame, error)
    await socket.ws.send(b"binary")
    assert (await socket.next())["data"]["code"] == "INVALID_MESSAGE"
    # 13 frames so far; 7 more are allowed in this window, then RATE_LIMITED.
    for _ in range(7):
        await socket.send("chat:cancel", {})
    await socket.send("chat:cancel", {})
    error = await socket.next("chat:error")
    assert error["data"]["code"] == "RATE_LIMITED"
    # Still open: nothing was stored, the socket answers.
    await socket.send("chat:cancel", {})
    assert (await socket.next("chat:error"))["data"]["code"] == "RATE_LIMITED"


async def test_other_users_and_strangers_are_refused(env: ChatEnv) -> None:
    ada = await env.user()
    grace = await env.user("grace@example.com")
    group = await env.group(ada, await env.server(ada))
    conversation_id = group["conversations"][0]["id"]

    socket = await env.connect(grace, conversation_id)
    frame = await socket.next()
    assert frame["type"] == "chat:error"
    assert frame["data"]["code"] == "CONVERSATION_NOT_FOUND"
    await socket.ws.wait_closed()
    assert socket.ws.close_code == 4404

    for unknown in ("nope", "x" * 80):
        socket = await env.connect(ada, unknown)
        assert (await socket.next())["data"]["code"] == "CONVERSATION_NOT_FOUND"

    socket = await env.connect(None, conversation_id)
    assert (await socket.next())["data"]["code"] == "UNAUTHENTICATED"
    await socket.ws.wait_closed()
    assert socket.ws.close_code == 4401

    with pytest.raises(InvalidStatus) as refused:
        await env.connect(ada, conversation_id, origin="https://evil.example")
    assert refused.value.response.status_code == 403

    # A browser (cookie) must send its own origin.
    cookie = {"Cookie": f"neonrain_session={ada.token}"}
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{env.web.port}/ws/chat/{conversation_id}"
    with pytest.raises(InvalidStatus):
        await connect(url, additional_headers=cookie)
    async with connect(url, additional_headers={**cookie, "Origin": env.web.url}) as ws:
        assert '"chat:ready"' in str(await ws.recv())


async def test_reconnect_reuses_the_agent_and_delete_removes_it(env: ChatEnv) -> None:
    env.fake.script("hello", reply="Hi!")
    ada = await env.user()
    group = await env.group(ada, await env.server(ada), panes=3)
    conversation_id = group["conversations"][0]["id"]
    socket = await env.ready(ada, conversation_id)
    neighbour = await env.ready(ada, group["conversations"][1]["id"])
    await socket.say("hello")
    await socket.next("chat:message")
    await socket.next("chat:message")
    # Every open pane of the chat hears the new title.
    assert (await neighbour.next("chat:title-updated"))["data"] == {"title": "hello"}
    await neighbour.close()
    agent = env.fake.created[0]
    await socket.close()
    await env.fake.wait_until(lambda: not env.fake.connected_sids(agent.id))
    assert not agent.deleted

    socket = await env.ready(ada, conversation_id)
    await socket.say("hello again")
    await socket.next("chat:message")
    assert (await socket.next("chat:message"))["data"]["content"] == "Hi!"
    assert len(env.fake.created) == 1

    response = await env.http.delete(f"/api/chat/groups/{group['id']}", headers=ada.headers)
    assert response.status_code == 204
    await socket.ws.wait_closed()
    assert socket.ws.close_code == 4404
    await env.fake.wait_until(lambda: agent.deleted)


async def test_deleting_the_server_configuration_releases_its_chats_agents(
    env: ChatEnv,
) -> None:
    env.fake.script("hello", reply="Hi!")
    ada = await env.user()
    server_id = await env.server(ada)
    group = await env.group(ada, server_id, panes=3)
    open_pane, closed_pane = (c["id"] for c in group["conversations"][:2])
    closed = await env.ready(ada, closed_pane)
    await closed.say("hello")
    assert (await closed.next("chat:message"))["data"]["role"] == "user"
    assert (await closed.next("chat:message"))["data"]["content"] == "Hi!"
    await closed.close()
    socket = await env.ready(ada, open_pane)
    await socket.say("hello")
    await socket.next("chat:message")
    await socket.next("chat:message")
    agents = list(env.fake.created)
    assert len(agents) == 2 and not any(a.deleted for a in agents)

    response = await env.http.delete(f"/api/servers/{server_id}", headers=ada.headers)
    assert response.status_code == 204
    error = await socket.next("chat:error")
    assert error["data"]["code"] == "NO_SERVER_CONFIG"
    await socket.ws.wait_closed()
    assert socket.ws.close_code == 4410
    await env.fake.wait_until(lambda: all(a.deleted for a in agents))
    async with env.state.sessionmaker() as db:
        stored = (
            await db.scalars(
                select(ChatConversation.huma_agent_id).where(
                    ChatConversation.id.in_([open_pane, closed_pane])
                )
            )
        ).all()
    assert stored == [None, None]
    # The chat stays, read-only, with its messages.
    response = await env.http.get(
        f"/api/chat/conversations/{closed_pane}/messages", headers=ada.headers
    )
    assert [m["content"] for m in response.json()["messages"]] == ["hello", "Hi!"]


async def test_markdown_is_neutralised(env: ChatEnv) -> None:
    env.fake.script(
        "xss",
        reply="<script>alert(1)</script> [click](javascript:alert(1)) "
        '<img src=x onerror="alert(2)"> [ok](https://example.com)',
    )
    ada = await env.user()
    group = await env.group(ada, await env.server(ada))
    conversation_id = group["conversations"][0]["id"]
    socket = await env.ready(ada, conversation_id)
    await socket.say("xss please <b>bold</b>")
    echo = await socket.next("chat:message")
    assert echo["data"]["contentHtml"] is None
    reply = await socket.next("chat:message")
    response = await env.http.get(
        f"/api/chat/conversations/{conversation_id}/messages", headers=ada.headers
    )
    stored = response.json()["messages"][-1]["contentHtml"]
    for html in (reply["data"]["contentHtml"], stored):
        lowered = html.lower()
        assert "<script" not in lowered
        assert "<img" not in lowered
        assert 'href="javascript' not in lowered
        assert "<img" not in lowered
        assert "&lt;script&gt;" in lowered  # shown as text, never run
        link = '<a href="https://example.com" target="_blank" rel="noopener noreferrer nofollow">'
        assert link + "ok</a>" in html


def test_session_tokens_are_redacted_from_server_logs() -> None:
    import logging

    from neonrain.chat.ws import RedactTokens

    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/ws/chat/abc?token=secret-session-token&x=1"),
        None,
    )
    assert RedactTokens().filter(record)
    assert "secret-session-token" not in record.getMessage()
    assert "?token=[redacted]&x=1" in record.getMessage()
