"""The OpenAI-compatible agent end to end: the real SDK against the fake model server, a chat
surface double, and a manual clock for the delays the spec asks for."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from neonrain.agents.tools import REASON_STOPPED, SENT_OK
from neonrain.huma import ServerConfig
from neonrain.openai_engine import ChatLine, EngineAuthError
from neonrain.openai_engine.runtime import REASON_NEW_MESSAGE
from tests.fakes.fake_huma import ManualClock
from tests.fakes.fake_openai import FakeOpenAI, Reply, send_message, text, tool_call

from .conftest import API_KEY, MODEL, NOW, AgentFactory, RecordingListener, Surface, surface_with


async def test_scripted_send_message_is_typed_sent_and_recorded(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    agent = make_agent(surface, typing_wpm=90)
    fake.queue(send_message("c1", "Ahoy, the crate is ferrisbox!", call_id="call_1"), text(""))
    surface.say("c1", "alice", "what is the crate called, Nova?")
    agent.message("c1")
    await agent.wait_idle()

    # typing at once, then 5 words at 90 wpm = 3.33 s, then the text, then the record
    assert [c for c, _ in surface.typing] == ["c1"]
    assert surface.sent == [("c1", "Ahoy, the crate is ferrisbox!", surface.typing[0][1] + 10 / 3)]
    assert surface.recorded == [("c1", "Ahoy, the crate is ferrisbox!")]
    first, second = fake.chat_requests
    assert first.body["model"] == MODEL
    assert first.body["tool_choice"] == "auto"
    assert first.tool_names == ["send_message", "fetch_channel_messages"]
    assert first.bearer == API_KEY
    # the tool loop: the model's call and its result go back, then the model stops
    assert second.messages[-2]["role"] == "assistant"
    assert second.messages[-2]["tool_calls"][0]["id"] == "call_1"
    assert second.messages[-1] == {"role": "tool", "tool_call_id": "call_1", "content": SENT_OK}
    assert len(fake.chat_requests) == 2


async def test_the_request_carries_configuration_history_and_channel(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    surface.say("c1", "alice", "hi all")
    surface.history["c1"].append(ChatLine("Nova", "Hello alice!", NOW, from_agent=True))
    surface.say("c1", "bob", "Nova, which crate?")
    agent.message("c1")
    await agent.wait_idle()

    request = fake.chat_requests[0]
    system = request.system
    assert request.messages[0]["role"] == "system"
    for expected in (
        "You are Nova",
        "Rust Lovers",
        "Speaks like a pirate.",
        "No spam in #general.",
        "The crate is called ferrisbox.",
        '<page name="Docs" url="https://ferrisbox.dev/docs" read="2024-05-01T12:30:00Z">',
        "Install with cargo.",
        "Current time: 2024-05-01T12:30:00Z",
        "- #random (id c2)",
    ):
        assert expected in system
    assert system.splitlines()[-1] == "Current channel: #general (id c1)"
    assert request.messages[1:] == [
        {"role": "user", "content": "alice: hi all"},
        {"role": "assistant", "content": "Hello alice!"},
        {"role": "user", "content": "bob: Nova, which crate?"},
    ]
    assert surface.reads == [("c1", 50, surface.reads[0][2])]


async def test_configuration_edits_apply_to_the_next_turn(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    surface.say("c1", "alice", "one")
    agent.message("c1")
    await agent.wait_idle()
    surface.config = ServerConfig(bot_name="Nova", server_name="Rust Lovers", rules="Only English.")
    surface.say("c1", "alice", "two")
    agent.message("c1")
    await agent.wait_idle()
    first, second = fake.chat_requests
    assert "No spam in #general." in first.system
    assert "No spam in #general." not in second.system
    assert "Only English." in second.system


async def test_plain_text_is_never_posted(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    fake.queue(text("I would say hello, but this is not a tool call."))
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await agent.wait_idle()
    assert len(fake.chat_requests) == 1
    assert surface.sent == [] and surface.typing == [] and surface.recorded == []


async def test_a_burst_gets_one_model_call(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    clock = ManualClock()
    surface = surface_with(clock)
    agent = make_agent(surface)
    for i in range(3):
        surface.say("c1", "alice", f"message {i}")
        agent.message("c1")
        await clock.advance(1.0)  # each within 1.5 s of the previous one
    assert surface.reads == []  # still bursting: 1 s since the last message
    await clock.advance(0.5)
    request = await fake.wait_for_request(0)
    assert [m["content"] for m in request.messages[1:]] == [
        "alice: message 0",
        "alice: message 1",
        "alice: message 2",
    ]
    assert surface.reads[0][2] == 1000.0 + 3.5  # 1.5 s after the last message
    await agent.wait_idle()
    assert len(fake.chat_requests) == 1


async def test_a_long_burst_is_answered_after_at_most_5_seconds(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    clock = ManualClock()
    surface = surface_with(clock)
    agent = make_agent(surface)
    for i in range(5):  # a message every second: never 1.5 s of quiet
        surface.say("c1", "alice", f"message {i}")
        agent.message("c1")
        if i < 4:
            await clock.advance(1.0)
    assert surface.reads == []  # 4 s after the first message
    await clock.advance(1.0)
    request = await fake.wait_for_request(0)
    assert surface.reads[0][2] == 1000.0 + 5.0
    assert len(request.messages) == 1 + 5
    await agent.wait_idle()


async def test_channels_are_independent(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    clock = ManualClock()
    surface = surface_with(clock)
    agent = make_agent(surface)
    surface.say("c1", "alice", "in general")
    agent.message("c1")
    await clock.advance(1.0)
    surface.say("c2", "bob", "in random")
    agent.message("c2")  # does not delay or cancel the burst of c1
    await clock.advance(0.5)
    await fake.wait_for_request(0)
    assert [r[0] for r in surface.reads] == ["c1"]
    await clock.advance(1.0)
    await fake.wait_for_request(1)
    assert sorted(r.system.splitlines()[-1] for r in fake.chat_requests) == [
        "Current channel: #general (id c1)",
        "Current channel: #random (id c2)",
    ]
    await agent.wait_idle()


async def test_a_newer_message_abandons_the_running_request(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    fake.hang()
    fake.queue(send_message("c1", "Answering both."), text(""))
    surface.say("c1", "alice", "first")
    agent.message("c1")
    hanging = await fake.wait_for_request(0)
    surface.say("c1", "alice", "second")
    agent.message("c1")
    await fake.wait_until(hanging.abandoned.is_set)  # the HTTP request was given up
    await agent.wait_idle()
    assert len(fake.chat_requests) == 3
    retry = fake.chat_requests[1]
    assert [m["content"] for m in retry.messages[1:]] == ["alice: first", "alice: second"]
    assert [text for _, text, _ in surface.sent] == ["Answering both."]


async def test_a_newer_message_cancels_a_message_being_typed(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    clock = ManualClock()
    surface = surface_with(clock)
    listener = RecordingListener()
    agent = make_agent(surface, listener=listener)
    fake.queue(send_message("c1", "a slow answer to the first message", call_id="call_slow"))
    fake.queue(send_message("c1", "the answer to both", call_id="call_new"), text(""))
    surface.say("c1", "alice", "first")
    agent.message("c1")
    await clock.advance(1.5)
    await fake.wait_for_request(0)
    await clock.wait_for_sleepers(1)  # typing
    assert surface.typing == [("c1", 1001.5)]
    surface.say("c1", "alice", "second")
    agent.message("c1")
    await clock.advance(1.5)
    await fake.wait_for_request(1)
    await clock.wait_for_sleepers(1)
    await clock.advance(30)
    await agent.wait_idle()
    assert [text for _, text, _ in surface.sent] == ["the answer to both"]
    assert listener.canceled == [("call_slow", "c1", REASON_NEW_MESSAGE)]
    # the canceled turn's tool call never reached the model again: the new turn starts afresh
    assert all(m["role"] != "tool" for m in fake.chat_requests[1].messages)


async def test_stop_cancels_the_message_being_typed(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    clock = ManualClock()
    surface = surface_with(clock)
    listener = RecordingListener()
    agent = make_agent(surface, listener=listener)
    fake.queue(send_message("c1", "you will never read this", call_id="call_x"))
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await clock.advance(1.5)
    await fake.wait_for_request(0)
    await clock.wait_for_sleepers(1)
    assert await agent.cancel_pending() is True
    assert await agent.cancel_pending() is False
    await clock.advance(60)
    await agent.wait_idle()
    assert surface.sent == []
    assert listener.canceled == [("call_x", "c1", REASON_STOPPED)]
    assert len(fake.chat_requests) == 1  # the turn ended with the Stop


async def test_at_most_four_model_calls_per_turn(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    fake.default = lambda request: tool_call(
        "fetch_channel_messages", {"channel_id": "c2", "limit": 5}
    )
    surface.say("c1", "alice", "what happened in random?")
    agent.message("c1")
    await agent.wait_idle()
    assert len(fake.chat_requests) == 4
    assert len(surface.fetched) == 4
    last = fake.chat_requests[-1].messages
    assert [m["role"] for m in last[-6:]] == ["assistant", "tool"] * 3


async def test_tool_errors_go_back_to_the_model(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    fake.queue(
        Reply(
            tool_calls=[
                *tool_call("delete_server", {}, call_id="a").tool_calls,
                *tool_call("send_message", "{not json", call_id="b").tool_calls,
                *tool_call(
                    "send_message", {"channel_id": "c9", "message": "hi"}, call_id="c"
                ).tool_calls,
                *tool_call(
                    "fetch_channel_messages", {"channel_id": "c2", "limit": 500}, call_id="d"
                ).tool_calls,
            ]
        ),
        text(""),
    )
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await agent.wait_idle()
    results = {
        m["tool_call_id"]: m["content"]
        for m in fake.chat_requests[1].messages
        if m["role"] == "tool"
    }
    assert results == {
        "a": "Error: Unknown tool: delete_server",
        "b": "Error: Invalid arguments: expected an object",
        "c": "Error: Channel c9 is not a text channel of this server.",
        "d": "Error: Invalid limit: expected a number from 1 to 100",
    }
    assert surface.sent == []


async def test_fetch_channel_messages_result(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    surface.say("c2", "carol", "the release is on friday")
    surface.say("c1", "alice", "what did carol say in random?")
    fake.queue(tool_call("fetch_channel_messages", {"channel_id": "c2"}, call_id="f"), text(""))
    agent.message("c1")
    await agent.wait_idle()
    result = fake.chat_requests[1].messages[-1]
    assert result["tool_call_id"] == "f"
    lines = result["content"].splitlines()
    assert "#random" in lines[0] and "reference only" in lines[0]
    assert lines[1].endswith("carol: the release is on friday")
    assert (
        lines[-1]
        == "End of #random. If you answer, answer in the current channel #general (channel_id c1)."
    )
    assert surface.fetched == [("c2", 50)]


async def test_rate_limit_is_retried_after_the_wait_it_asks(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    fake.fail(429, retry_after=7)
    fake.queue(send_message("c1", "sorry for the wait"), text(""))
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await agent.wait_idle()
    assert [r.status for r in fake.chat_requests] == [429, 200, 200]
    assert 7.0 in surface.clock.sleeps
    assert [text for _, text, _ in surface.sent] == ["sorry for the wait"]


async def test_server_errors_are_retried_twice_then_the_turn_fails(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    listener = RecordingListener()
    agent = make_agent(surface, listener=listener)
    fake.fail(500, times=3)
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await agent.wait_idle()
    assert [r.status for r in fake.chat_requests] == [500, 500, 500]
    assert surface.sent == []
    [(channel_id, error)] = listener.failures
    assert channel_id == "c1" and error.code == "server_error" and error.status == 500
    assert agent.state == "ok"  # the next message gets a new turn
    fake.queue(send_message("c1", "back again"), text(""))
    surface.say("c1", "alice", "hello?")
    agent.message("c1")
    await agent.wait_idle()
    assert [text for _, text, _ in surface.sent] == ["back again"]


async def test_refused_credentials_put_the_engine_in_error(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    listener = RecordingListener()
    agent = make_agent(surface, listener=listener, api_key="sk-wrong-key")
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await agent.wait_idle()
    assert agent.state == "error"
    assert agent.error == "Incorrect API key provided: ***."
    assert listener.states == [("error", "Incorrect API key provided: ***.")]
    assert isinstance(listener.failures[0][1], EngineAuthError)
    surface.say("c1", "alice", "anyone?")
    agent.message("c1")
    await agent.wait_idle()
    assert len(fake.chat_requests) == 1  # not retried, and no more calls


async def test_forbidden_is_an_error_state_too(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    fake.fail(403, message="This key may not use test-model.")
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await agent.wait_idle()
    assert (agent.state, agent.error) == ("error", "This key may not use test-model.")


async def test_a_timeout_ends_the_turn(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    surface = surface_with()
    listener = RecordingListener()
    agent = make_agent(surface, listener=listener, timeout_seconds=0.3)
    fake.hang()
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await agent.wait_idle()
    assert len(fake.chat_requests) == 1  # a timeout is not retried
    assert [e.code for _, e in listener.failures] == ["timeout"]
    assert agent.state == "ok"
    await fake.wait_until(fake.chat_requests[0].abandoned.is_set)


async def test_failed_turns_are_logged_without_texts_or_key(
    fake: FakeOpenAI, make_agent: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = "sk-live-DistinctiveKey0042"
    fake.api_key = key
    surface = surface_with()
    agent = make_agent(surface, api_key=key)
    fake.fail(500)
    fake.queue(send_message("c1", "a reply with a secret word: marmalade"), text("plain musings"))
    surface.say("c1", "alice", "my private question about pineapples")
    agent.message("c1")
    await agent.wait_idle()
    fake.api_key = "sk-other"  # now the provider refuses it, and echoes the key it got
    surface.say("c1", "alice", "again")
    agent.message("c1")
    await agent.wait_idle()
    assert agent.state == "error"
    assert caplog.records, "the engine logs what it does"
    assert "openai turn done" in caplog.text and "openai turn failed" in caplog.text
    assert "reason=unauthorized status=401" in caplog.text
    for record in caplog.records:
        message = record.getMessage()
        assert key not in message
        assert "pineapples" not in message and "plain musings" not in message
    assert key not in (agent.error or "")


async def test_webchat_declares_only_send_message(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = Surface(ManualClock(auto=True), {"webchat-42": "general"})
    agent = make_agent(surface, platform="webchat")
    fake.queue(send_message("webchat-42", "Hi!"), text(""))
    surface.say("webchat-42", "owner", "hello Nova")
    agent.message("webchat-42")
    await agent.wait_idle()
    request = fake.chat_requests[0]
    assert request.tool_names == ["send_message"]
    assert request.system.splitlines()[-1] == "Current channel: #general (id webchat-42)"
    assert "Channels of this server" not in request.system
    assert "fetch_channel_messages" not in request.system
    assert [text for _, text, _ in surface.sent] == ["Hi!"]


async def test_a_keyless_endpoint_gets_a_placeholder_not_the_environment_key(
    fake: FakeOpenAI, make_agent: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator-secret")
    fake.api_key = None
    surface = surface_with()
    agent = make_agent(surface, api_key=None)
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await agent.wait_idle()
    assert fake.chat_requests[0].bearer == "no-api-key"


async def test_long_answers_are_split(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    surface = surface_with()
    agent = make_agent(surface)
    long = "\n\n".join(["First part. " * 100, "Second part. " * 100]).replace(" \n", "\n")
    fake.queue(send_message("c1", long), text(""))
    surface.say("c1", "alice", "tell me everything")
    agent.message("c1")
    await agent.wait_idle()
    assert [t.split(".")[0] for _, t, _ in surface.sent] == ["First part", "Second part"]
    assert surface.recorded == [("c1", long.strip())]


async def test_close_cancels_a_message_being_typed(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    clock = ManualClock()
    surface = surface_with(clock)
    listener = RecordingListener()
    agent = make_agent(surface, listener=listener)
    fake.queue(send_message("c1", "never sent", call_id="call_z"))
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await clock.advance(1.5)
    await fake.wait_for_request(0)
    await clock.wait_for_sleepers(1)
    await agent.close()
    assert listener.canceled == [("call_z", "c1", "Agent shutting down")]
    assert not agent.busy
    agent.message("c1")  # ignored once closed
    assert not agent.busy
    assert surface.sent == []


async def test_close_lets_a_message_already_being_sent_go_out_and_be_recorded(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    surface = surface_with()
    surface.hold_send = asyncio.Event()
    agent = make_agent(surface)
    fake.queue(send_message("c1", "on its way", call_id="call_s"), text(""))
    surface.say("c1", "alice", "hello")
    agent.message("c1")
    await asyncio.wait_for(surface.sending.wait(), 10)
    closing = asyncio.create_task(agent.close())
    await asyncio.sleep(0.1)
    assert not closing.done()  # it waits for the message in flight
    surface.hold_send.set()
    await asyncio.wait_for(closing, 10)
    assert [(c, t) for c, t, _at in surface.sent] == [("c1", "on its way")]
    assert surface.recorded == [("c1", "on its way")]


def test_model_arguments_stay_json_strings() -> None:
    """The fake sends arguments as JSON strings, as the API does."""
    call = tool_call("send_message", {"channel_id": "c1", "message": "é"}).tool_calls[0].to_json()
    assert json.loads(call["function"]["arguments"]) == {"channel_id": "c1", "message": "é"}
