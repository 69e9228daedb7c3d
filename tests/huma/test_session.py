"""The agent runtime over real sockets: creation, context updates, tool calls, typing, cancels."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from neonrain.huma import AgentSession, build_agent_metadata
from neonrain.huma.runtime import REASON_SUPERSEDED, SENT_OK
from tests.fakes.fake_huma import FakeHuma, ManualClock

from .conftest import (
    API_KEY,
    CONFIG,
    RecordingHost,
    RecordingListener,
    SessionFactory,
    context_for,
)


def _agent(session: AgentSession) -> str:
    assert session.agent_id is not None
    return session.agent_id


async def test_agent_creation_payload(fake_huma: FakeHuma, make_session: SessionFactory) -> None:
    listener = RecordingListener()
    session = await make_session(listener=listener)
    assert str(session.state) == "connected"
    assert len(fake_huma.created) == 1
    agent = fake_huma.created[0]
    assert session.agent_id == agent.id
    assert listener.created == [(agent.id, None)]
    assert agent.request == {
        "name": "Discord-Rust Lovers",
        "agentType": "HUMA-0.1",
        "metadata": build_agent_metadata(CONFIG),
    }
    metadata = agent.request["metadata"]
    assert metadata["className"] == "Nova"
    assert metadata["routerType"] == "conversational"
    assert [t["name"] for t in metadata["tools"]] == ["send_message", "fetch_channel_messages"]
    assert "## Custom Personality\n\nSpeaks like a pirate." in metadata["personality"]
    assert "## Custom Rules\n\nBe kind." in metadata["instructions"]
    assert fake_huma.rest_requests[0].api_key == API_KEY
    connection = await fake_huma.wait_for_connection()
    assert connection.agent_id == agent.id


async def test_webchat_agent_has_ttl_and_only_send_message(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    await make_session(platform="webchat", ttl_seconds=86400)
    request = fake_huma.created[0].request
    assert request["ttlSeconds"] == 86400
    assert [t["name"] for t in request["metadata"]["tools"]] == ["send_message"]


async def test_reuses_a_live_agent_instead_of_creating_one(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    first = await make_session()
    agent_id = _agent(first)
    await first.close()
    second = await make_session(agent_id=agent_id)
    assert second.agent_id == agent_id
    assert len(fake_huma.created) == 1
    assert [c.agent_id for c in fake_huma.connections] == [agent_id, agent_id]


async def test_context_update_shape(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    session = await make_session()
    context = context_for(host)
    description = 'User alice sent a new message in channel #general: "hello bot". ...'
    assert await session.send_context(context, description) is True
    event = await fake_huma.wait_for_event(lambda e: e.is_context_update)
    assert event.agent_id == session.agent_id
    assert event.data == {
        "type": "huma-0.1-event",
        "content": {"name": "new-message", "context": context, "description": description},
    }
    assert event.content["context"]["customRules"] == "Be kind."
    assert event.content["context"]["userInformation"] == "The crate is ferrisbox."


async def test_send_context_starts_an_idle_session(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    session = await make_session(start=False)
    assert session.state == "idle"
    assert await session.send_context(context_for(host), "first message") is True
    event = await fake_huma.wait_for_event(lambda e: e.is_context_update)
    assert event.content["description"] == "first message"
    assert str(session.state) == "connected"


async def test_scripted_reply_is_typed_sent_and_answered(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock(auto=True)
    session = await make_session(clock=clock, typing_wpm=90)
    rule = fake_huma.script("hello", reply="Ahoy there, matey!")
    await session.send_context(context_for(host), "alice said hello bot")
    result = await fake_huma.wait_for_event(lambda e: e.is_tool_result)
    assert result.data["type"] == "huma-0.1-event"
    assert result.content == {
        "type": "tool-result",
        "toolCallId": rule.fired[0],
        "success": True,
        "result": SENT_OK,
        "skipImmediateProcessing": True,
        "context": {
            "currentChannel": {
                "id": "c1",
                "name": "general",
                "conversationHistory": "[2024-01-01T00:00:00Z] alice: hello bot\n"
                "[2024-01-01T00:00:05Z] Nova: Ahoy there, matey!\n",
            }
        },
    }
    assert host.sent == [("c1", "Ahoy there, matey!")]
    assert host.recorded == [("c1", "Ahoy there, matey!")]
    # 3 words at 90 wpm: 2 s of typing, indicator shown at once
    assert clock.sleeps == [2.0]
    assert host.typing == [("c1", 1000.0)]


async def test_typing_indicator_every_8_seconds_and_delay_capped(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock(auto=True)
    session = await make_session(clock=clock, typing_wpm=90)
    text = " ".join(["word"] * 60)  # 40 s at 90 wpm, capped to 30 s
    call_id = await fake_huma.send_message(_agent(session), "c1", text)
    result = await fake_huma.wait_for_tool_result(call_id)
    assert result.content["success"] is True
    assert clock.sleeps == [8.0, 8.0, 8.0, 6.0]
    assert [t for _, t in host.typing] == [1000.0, 1008.0, 1016.0, 1024.0]
    assert host.sent == [("c1", text)]


async def test_long_message_is_split(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    session = await make_session()
    paragraphs = ["First paragraph. " * 70, "Second paragraph. " * 70]
    text = "\n\n".join(p.strip() for p in paragraphs)
    call_id = await fake_huma.send_message(_agent(session), "c1", text)
    result = await fake_huma.wait_for_tool_result(call_id)
    assert result.content["success"] is True
    assert [t.split(".")[0] for _, t in host.sent] == ["First paragraph", "Second paragraph"]
    assert all(len(t) <= 2000 for _, t in host.sent)
    assert host.recorded == [("c1", text)]  # history records the whole message once


async def test_second_send_message_supersedes_the_first(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock()
    listener = RecordingListener()
    session = await make_session(clock=clock, listener=listener)
    agent_id = _agent(session)
    first = await fake_huma.send_message(agent_id, "c1", "first answer, typed slowly")
    await clock.wait_for_sleepers(1)  # the first message is being typed
    second = await fake_huma.send_message(agent_id, "c1", "second answer")
    canceled = await fake_huma.wait_for_tool_result(first)
    assert canceled.content == {
        "type": "tool-result",
        "toolCallId": first,
        "status": "canceled",
        "success": False,
        "error": REASON_SUPERSEDED,
        "skipImmediateProcessing": True,
    }
    await clock.wait_for_sleepers(1)  # now the second one is being typed
    await clock.advance(60)
    delivered = await fake_huma.wait_for_tool_result(second)
    assert delivered.content["success"] is True
    assert host.sent == [("c1", "second answer")]
    assert len(fake_huma.tool_results(first)) == 1  # the canceled call got exactly one answer
    assert listener.canceled == [(first, "c1", REASON_SUPERSEDED)]


async def test_cancel_tool_call_stops_a_pending_message(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock()
    session = await make_session(clock=clock)
    agent_id = _agent(session)
    call_id = await fake_huma.send_message(agent_id, "c1", "this will never be sent")
    await clock.wait_for_sleepers(1)
    assert session.pending_tool_call_id == call_id
    await fake_huma.cancel_tool_call(agent_id, call_id, "The user left")
    canceled = await fake_huma.wait_for_tool_result(call_id)
    assert canceled.content["status"] == "canceled"
    assert canceled.content["error"] == "The user left"
    assert canceled.content["skipImmediateProcessing"] is True
    await clock.advance(60)
    assert host.sent == []
    assert len(fake_huma.tool_results(call_id)) == 1
    assert session.pending_tool_call_id is None


async def test_local_stop_cancels_the_pending_message(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock()
    session = await make_session(clock=clock)
    call_id = await fake_huma.send_message(_agent(session), "c1", "stop me")
    await clock.wait_for_sleepers(1)
    assert await session.cancel_pending() is True
    canceled = await fake_huma.wait_for_tool_result(call_id)
    assert canceled.content["error"] == "Stopped by user"
    assert await session.cancel_pending() is False  # nothing pending any more
    await clock.advance(60)
    assert host.sent == []


async def test_cancel_of_a_finished_call_is_ignored(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    session = await make_session()
    agent_id = _agent(session)
    call_id = await fake_huma.send_message(agent_id, "c1", "quick")
    await fake_huma.wait_for_tool_result(call_id)
    await fake_huma.cancel_tool_call(agent_id, call_id)
    await fake_huma.emit_status(agent_id, "idle")  # a later event proves the cancel was handled
    follow_up = await fake_huma.send_message(agent_id, "c1", "again")
    await fake_huma.wait_for_tool_result(follow_up)
    assert [e.content["success"] for e in fake_huma.tool_results(call_id)] == [True]


@pytest.mark.parametrize(
    ("tool", "arguments", "error"),
    [
        ("delete_server", {}, "Unknown tool: delete_server"),
        ("send_message", {"channel_id": "c1"}, "Missing or invalid message"),
        ("send_message", {"channel_id": "c1", "message": "   "}, "Missing or invalid message"),
        ("send_message", {"message": "hi"}, "Missing or invalid channel_id"),
        ("send_message", {"channel_id": ["c1"], "message": "hi"}, "Missing or invalid channel_id"),
        ("send_message", ["c1", "hi"], "Invalid arguments: expected an object"),
        ("send_message", "{not json", "Invalid arguments: expected an object"),
        ("send_message", {"channel_id": "c999", "message": "hi"}, "Channel c999 is not in"),
        ("fetch_channel_messages", {}, "Missing or invalid channel_id"),
        ("fetch_channel_messages", {"channel_id": "c2", "limit": 500}, "Invalid limit"),
        ("fetch_channel_messages", {"channel_id": "c2", "limit": "lots"}, "Invalid limit"),
        ("fetch_channel_messages", {"channel_id": "c2", "limit": True}, "Invalid limit"),
    ],
)
async def test_bad_tool_calls_are_answered_with_an_error(
    fake_huma: FakeHuma,
    make_session: SessionFactory,
    host: RecordingHost,
    tool: str,
    arguments: Any,
    error: str,
) -> None:
    session = await make_session()
    call_id = await fake_huma.call_tool(_agent(session), tool, arguments)
    result = await fake_huma.wait_for_tool_result(call_id)
    assert result.content["success"] is False
    assert result.content["error"].startswith(error)
    assert set(result.content) == {"type", "toolCallId", "success", "error"}
    assert host.sent == [] and host.typing == []


async def test_unknown_tool_for_a_webchat_agent(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    session = await make_session(platform="webchat")
    call_id = await fake_huma.call_tool(_agent(session), "fetch_channel_messages", {})
    result = await fake_huma.wait_for_tool_result(call_id)
    assert result.content["error"] == "Unknown tool: fetch_channel_messages"


async def test_host_refusal_and_crash_are_answered(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    session = await make_session()
    agent_id = _agent(session)
    host.fail_send = "Discord refused the message: Missing Permissions"
    refused = await fake_huma.send_message(agent_id, "c1", "hello")
    result = await fake_huma.wait_for_tool_result(refused)
    assert result.content["success"] is False
    assert result.content["error"] == "Discord refused the message: Missing Permissions"
    host.fail_send = None
    host.crash_send = True
    crashed = await fake_huma.send_message(agent_id, "c1", "hello")
    result = await fake_huma.wait_for_tool_result(crashed)
    assert result.content == {
        "type": "tool-result",
        "toolCallId": crashed,
        "success": False,
        "error": "send_message failed: RuntimeError",
    }
    assert host.recorded == []


async def test_fetch_channel_messages(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    session = await make_session()
    await session.send_context(context_for(host, "c1"), "context first")
    call_id = await fake_huma.call_tool(
        _agent(session), "fetch_channel_messages", {"channel_id": "c2", "limit": "2"}
    )
    result = await fake_huma.wait_for_tool_result(call_id)
    assert result.content["success"] is True
    text = result.content["result"]
    lines = text.splitlines()
    assert "#random" in lines[0] and "reference only" in lines[0]
    assert lines[1:3] == [
        "[2024-01-01T00:00:01Z] bob: line 1",
        "[2024-01-01T00:00:02Z] bob: line 2",
    ]
    assert "#general" in lines[-1] and "c1" in lines[-1]
    assert "skipImmediateProcessing" not in result.content


async def test_error_and_status_events(fake_huma: FakeHuma, make_session: SessionFactory) -> None:
    listener = RecordingListener()
    session = await make_session(listener=listener)
    agent_id = _agent(session)
    await fake_huma.emit_status(agent_id, "thinking")
    await fake_huma.emit_error(agent_id, "Rate limit exceeded", "RATE_LIMITED")
    await fake_huma.wait_until(lambda: bool(listener.errors))
    assert listener.errors == [("RATE_LIMITED", "Rate limit exceeded")]
    assert session.state == "connected"  # an ordinary error does not end the connection


async def test_every_tool_call_gets_exactly_one_answer(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    session = await make_session()
    agent_id = _agent(session)
    calls = [
        await fake_huma.send_message(agent_id, "c1", "one"),
        await fake_huma.call_tool(agent_id, "nope", {}),
        await fake_huma.call_tool(agent_id, "send_message", {}),
        await fake_huma.call_tool(agent_id, "fetch_channel_messages", {"channel_id": "c2"}),
    ]
    for call_id in calls:
        await fake_huma.wait_for_tool_result(call_id)
    await fake_huma.emit_status(agent_id, "done")
    assert sorted(e.tool_call_id for e in fake_huma.tool_results()) == sorted(calls)


async def test_close_cancels_the_pending_message_and_can_delete_the_agent(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock()
    session = await make_session(clock=clock)
    agent_id = _agent(session)
    call_id = await fake_huma.send_message(agent_id, "c1", "not yet")
    await clock.wait_for_sleepers(1)
    await session.close(delete_agent=True)
    canceled = await fake_huma.wait_for_tool_result(call_id)
    assert canceled.content["error"] == "Agent shutting down"
    assert fake_huma.agents[agent_id].deleted
    await fake_huma.wait_until(lambda: not fake_huma.connected_sids())
    assert session.state == "closed"
    await clock.advance(60)
    assert host.sent == []


async def test_close_lets_a_message_already_being_sent_go_out_and_be_recorded(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    session = await make_session(clock=ManualClock(auto=True))
    host.hold_send = asyncio.Event()
    await fake_huma.send_message(_agent(session), "c1", "on its way")
    await asyncio.wait_for(host.sending.wait(), 10)
    closing = asyncio.create_task(session.close(delete_agent=True))
    await asyncio.sleep(0.1)
    assert not closing.done()  # it waits for the message in flight
    host.hold_send.set()
    await asyncio.wait_for(closing, 10)
    assert host.sent == [("c1", "on its way")]
    assert host.recorded == [("c1", "on its way")]  # counted, as Discord has it


async def test_a_recreated_agent_may_reuse_tool_call_ids(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    """Ids are unique within one agent only: a new agent's ``call-1`` is a new call."""
    session = await make_session()
    first = _agent(session)
    await fake_huma.call_tool(first, "send_message", {"channel_id": "c1", "message": "one"},
                              tool_call_id="call-1")  # fmt: skip
    await fake_huma.wait_for_tool_result("call-1")
    await fake_huma.forget_agent(first)  # HUMA lost it: the session makes a new one
    await fake_huma.wait_for_agent(2)
    await session.wait_connected()
    second = _agent(session)
    assert second != first
    await fake_huma.call_tool(second, "send_message", {"channel_id": "c1", "message": "two"},
                              tool_call_id="call-1")  # fmt: skip
    await fake_huma.wait_until(lambda: len(fake_huma.tool_results("call-1")) == 2)
    assert [text for _channel, text in host.sent] == ["one", "two"]


async def test_a_repeated_tool_call_gets_its_answer_again(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    session = await make_session()
    agent_id = _agent(session)
    arguments = {"channel_id": "c1", "message": "once"}
    await fake_huma.call_tool(agent_id, "send_message", arguments, tool_call_id="call-9")
    first = await fake_huma.wait_for_tool_result("call-9")
    await fake_huma.call_tool(agent_id, "send_message", arguments, tool_call_id="call-9")
    await fake_huma.wait_until(lambda: len(fake_huma.tool_results("call-9")) == 2)
    assert fake_huma.tool_results("call-9")[1].content == first.content
    assert host.sent == [("c1", "once")]  # carried out once
