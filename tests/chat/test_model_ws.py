"""The chat WebSocket answered by an OpenAI-compatible model (the server's engine is ``openai``),
end to end through the fake model server, on both databases."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.chat.conftest import ChatEnv, ChatSocket, chat_env
from tests.conftest import ApiUser
from tests.fakes.fake_openai import FakeOpenAI, send_message, text
from tests.webapp import free_port

KEY = "sk-chat-Xr4Tq9Wm2Lp7Zc1"


@contextlib.asynccontextmanager
async def model_env(
    database_url: str, tmp_path: Path, *, api_key: str | None = KEY, **settings: Any
) -> AsyncIterator[tuple[ChatEnv, FakeOpenAI]]:
    """The chat harness and a fake model server; accounts may use loopback endpoints."""
    values: dict[str, Any] = {"NEONRAIN_ALLOW_PRIVATE_URLS": "true", **settings}
    async with (
        FakeOpenAI(api_key=api_key) as fake,
        chat_env(database_url, tmp_path, **values) as env,
    ):
        yield env, fake


async def set_engine(env: ChatEnv, user: ApiUser, fake: FakeOpenAI, key: str | None = KEY) -> None:
    body: dict[str, Any] = {"baseUrl": fake.base_url, "model": "chat-model", "apiKey": key}
    response = await env.http.put("/api/engine/openai", json=body, headers=user.headers)
    assert response.status_code == 200, response.text


async def model_server(env: ChatEnv, user: ApiUser, **config: Any) -> str:
    server_id = await env.server(user, **config)
    response = await env.http.put(
        f"/api/servers/{server_id}", json={"engine": "openai"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return server_id


async def open_chat(env: ChatEnv, user: ApiUser, server_id: str) -> tuple[str, ChatSocket]:
    group = await env.group(user, server_id)
    conversation_id: str = group["conversations"][0]["id"]
    return conversation_id, await env.ready(user, conversation_id)


async def stored_roles(env: ChatEnv, user: ApiUser, conversation_id: str) -> list[str]:
    response = await env.http.get(
        f"/api/chat/conversations/{conversation_id}/messages", headers=user.headers
    )
    return [m["role"] for m in response.json()["messages"]]


async def test_the_model_answers_through_the_websocket(database_url: str, tmp_path: Path) -> None:
    async with model_env(database_url, tmp_path) as (env, fake):
        ada = await env.user()
        await set_engine(env, ada, fake)
        server_id = await model_server(
            env, ada, bot_name="Nova", personality="Speaks like a pirate.", rules="No spoilers."
        )
        conversation_id, socket = await open_chat(env, ada, server_id)
        channel = f"webchat-{conversation_id}"
        fake.queue(send_message(channel, "Ahoy, **matey**!"), text(""))

        await socket.say("hello Nova")
        echo = await socket.next("chat:message")
        assert echo["data"]["role"] == "user" and echo["data"]["content"] == "hello Nova"
        reply = await socket.next("chat:message", timeout=10)
        assert reply["data"]["role"] == "assistant"
        assert reply["data"]["content"] == "Ahoy, **matey**!"
        assert reply["data"]["senderName"] == "Nova"
        assert "<strong>matey</strong>" in reply["data"]["contentHtml"]
        typing = [f["data"]["isTyping"] for f in socket.frames if f["type"] == "chat:typing"]
        assert typing[:1] == [True]  # typed like a person before it arrives
        off = await socket.next("chat:typing")
        assert off["data"] == {"isTyping": False}

        first = await fake.wait_for_request(0)
        assert first.bearer == KEY and first.body["model"] == "chat-model"
        assert "Nova" in first.system and "Speaks like a pirate." in first.system
        assert "No spoilers." in first.system
        assert f"Current channel: #general (id {channel})" in first.system
        assert first.tool_names == ["send_message"]  # the web chat has no other channel
        assert first.messages[1:] == [{"role": "user", "content": "ada: hello Nova"}]
        follow_up = await fake.wait_for_request(1)
        assert follow_up.messages[-1]["role"] == "tool"
        assert follow_up.messages[-1]["content"] == "Message sent successfully"
        assert await stored_roles(env, ada, conversation_id) == ["user", "assistant"]
        assert env.fake.created == []  # no HUMA agent was made

        # The stored conversation is the history of the next turn, the bot's lines its own.
        fake.queue(send_message(channel, "Still here."), text(""))
        await socket.say("are you still there?", sender_name="Captain")
        await socket.next("chat:message")
        assert (await socket.next("chat:message", timeout=10))["data"]["content"] == "Still here."
        third = await fake.wait_for_request(2)
        assert third.messages[1:] == [
            {"role": "user", "content": "ada: hello Nova"},
            {"role": "assistant", "content": "Ahoy, **matey**!"},
            {"role": "user", "content": "Captain: are you still there?"},
        ]


async def test_a_refused_key_is_agent_unavailable_and_the_message_is_kept(
    database_url: str, tmp_path: Path
) -> None:
    wrong = "sk-wrong-Pz8Rk3Vb6Ny1"
    async with model_env(database_url, tmp_path) as (env, fake):
        ada = await env.user()
        await set_engine(env, ada, fake, key=wrong)
        server_id = await model_server(env, ada)
        conversation_id, socket = await open_chat(env, ada, server_id)

        await socket.say("hello?")
        assert (await socket.next("chat:message"))["data"]["content"] == "hello?"
        error = await socket.next("chat:error", timeout=10)
        assert error["data"]["code"] == "AGENT_UNAVAILABLE"
        message = error["data"]["message"]
        assert "Incorrect API key provided: ***" in message  # the provider's words, no key
        assert "Your message is saved" in message
        assert wrong not in str(socket.frames)
        assert await stored_roles(env, ada, conversation_id) == ["user"]
        status = (await env.http.get("/api/discord/status", headers=ada.headers)).json()
        assert status["engines"]["openai"]["state"] == "error"
        assert "Incorrect API key provided" in status["engines"]["openai"]["detail"]
        assert wrong not in str(status)

        # The same credentials are not tried again; the pane is told at once.
        await socket.say("anyone?")
        await socket.next("chat:message")
        again = await socket.next("chat:error")
        assert "refused the credentials" in again["data"]["message"]
        assert len(fake.chat_requests) == 1
        assert await stored_roles(env, ada, conversation_id) == ["user", "user"]

        # New credentials make a new agent, which sees everything that was written.
        await set_engine(env, ada, fake)
        fake.queue(send_message(f"webchat-{conversation_id}", "Sorry, I am back."), text(""))
        await socket.say("now?")
        await socket.next("chat:message")
        reply = await socket.next("chat:message", timeout=10)
        assert reply["data"]["content"] == "Sorry, I am back."
        answered = fake.chat_requests[1]
        assert answered.bearer == KEY
        assert [m["content"] for m in answered.messages[1:]] == [
            "ada: hello?",
            "ada: anyone?",
            "ada: now?",
        ]


async def test_the_install_engine_answers_accounts_without_their_own(
    database_url: str, tmp_path: Path
) -> None:
    fake = FakeOpenAI(port=free_port())  # a local server without a key, as Ollama is
    async with (
        fake,
        chat_env(
            database_url,
            tmp_path,
            NEONRAIN_OPENAI_BASE_URL=fake.base_url,  # loopback: fine for the operator's engine
            NEONRAIN_OPENAI_MODEL="install-model",
        ) as env,
    ):
        ada = await env.user()
        server_id = await model_server(env, ada, bot_name="Ferris")
        conversation_id, socket = await open_chat(env, ada, server_id)
        fake.queue(send_message(f"webchat-{conversation_id}", "Hello from the install!"))
        await socket.say("hi")
        await socket.next("chat:message")
        reply = await socket.next("chat:message", timeout=10)
        assert reply["data"]["content"] == "Hello from the install!"
        assert fake.chat_requests[0].body["model"] == "install-model"
        assert fake.chat_requests[0].bearer == "no-api-key"


async def test_an_endpoint_refused_since_it_was_saved_is_not_called(
    database_url: str, tmp_path: Path
) -> None:
    async with model_env(database_url, tmp_path) as (env, fake):
        ada = await env.user()
        await set_engine(env, ada, fake)
        server_id = await model_server(env, ada)
        group = await env.group(ada, server_id)
    # The same database, served by an app that refuses private addresses.
    async with model_env(database_url, tmp_path, NEONRAIN_ALLOW_PRIVATE_URLS="false") as (
        env,
        fake,
    ):
        conversation_id = group["conversations"][0]["id"]
        socket = await env.ready(ada, conversation_id)
        await socket.say("hello")
        await socket.next("chat:message")
        error = await socket.next("chat:error")
        assert error["data"]["code"] == "AGENT_UNAVAILABLE"
        assert "loopback" in error["data"]["message"]
        assert "Your message is saved" in error["data"]["message"]
        assert await stored_roles(env, ada, conversation_id) == ["user"]


async def test_without_an_engine_the_pane_says_so(database_url: str, tmp_path: Path) -> None:
    async with model_env(database_url, tmp_path) as (env, fake):
        ada = await env.user()
        await set_engine(env, ada, fake)
        server_id = await model_server(env, ada)
        response = await env.http.delete("/api/engine/openai", headers=ada.headers)
        assert response.status_code == 204
        conversation_id, socket = await open_chat(env, ada, server_id)
        await socket.say("hello")
        await socket.next("chat:message")
        error = await socket.next("chat:error")
        assert error["data"]["code"] == "AGENT_UNAVAILABLE"
        assert "Settings → Agent engine" in error["data"]["message"]
        assert await stored_roles(env, ada, conversation_id) == ["user"]
        assert fake.chat_requests == []


async def test_stop_cancels_the_models_reply_being_typed(database_url: str, tmp_path: Path) -> None:
    async with model_env(database_url, tmp_path, NEONRAIN_TYPING_WPM=60) as (env, fake):
        ada = await env.user()
        await set_engine(env, ada, fake)
        server_id = await model_server(env, ada)
        conversation_id, socket = await open_chat(env, ada, server_id)
        fake.queue(send_message(f"webchat-{conversation_id}", " ".join(["word"] * 20)))
        await socket.say("tell me a story")
        await socket.next("chat:message")
        assert (await socket.next("chat:typing", timeout=10))["data"] == {"isTyping": True}
        await socket.send("chat:cancel", {})
        assert (await socket.next("chat:typing"))["data"] == {"isTyping": False}
        later = await socket.collect(1.0)
        assert not [f for f in later if f["type"] == "chat:message"]
        assert await stored_roles(env, ada, conversation_id) == ["user"]
