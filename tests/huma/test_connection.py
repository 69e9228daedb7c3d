"""Connection health over real sockets: reconnects, backoff, recreation, wrong keys, logs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from neonrain.huma import AgentSession, HumaAuthError
from neonrain.huma.runtime import REASON_DISCONNECTED
from tests.fakes.fake_huma import FakeHuma, ManualClock

from .conftest import API_KEY, RecordingHost, RecordingListener, SessionFactory, context_for


def _agent(session: AgentSession) -> str:
    assert session.agent_id is not None
    return session.agent_id


def _accepted(fake: FakeHuma) -> list[str | None]:
    return [c.agent_id for c in fake.connections if c.accepted]


@pytest.mark.parametrize("abrupt", [False, True])
async def test_dropped_connection_reconnects_to_the_same_agent(
    fake_huma: FakeHuma, make_session: SessionFactory, abrupt: bool
) -> None:
    clock = ManualClock(auto=True)
    listener = RecordingListener()
    session = await make_session(clock=clock, listener=listener)
    agent_id = _agent(session)
    assert await fake_huma.drop_connections(agent_id, abrupt=abrupt) == 1
    await fake_huma.wait_until(lambda: len(_accepted(fake_huma)) == 2)
    await fake_huma.wait_until(lambda: session.state == "connected")
    assert _accepted(fake_huma) == [agent_id, agent_id]
    assert len(fake_huma.created) == 1  # no new remote agent
    assert session.agent_id == agent_id
    assert len(clock.sleeps) == 1 and 0.8 <= clock.sleeps[0] <= 1.0  # 1 s with jitter
    assert listener.states == ["connected", "reconnecting", "connected"]


async def test_backoff_doubles_while_huma_is_down_and_resets_after(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    clock = ManualClock(auto=True)
    session = await make_session(clock=clock)
    agent_id = _agent(session)
    fake_huma.refuse_connections(3)  # transient refusals: HUMA is "down"
    await fake_huma.drop_connections(agent_id)
    await fake_huma.wait_until(lambda: len(_accepted(fake_huma)) == 2)
    assert [c.accepted for c in fake_huma.connections] == [True, False, False, False, True]
    delays = clock.sleeps
    assert len(delays) == 4
    for delay, base in zip(delays, [1, 2, 4, 8], strict=True):
        assert 0.8 * base <= delay <= base
    # after a successful reconnect the next drop starts again at about 1 s
    await fake_huma.wait_until(lambda: session.state == "connected")
    await fake_huma.drop_connections(agent_id)
    await fake_huma.wait_until(lambda: len(_accepted(fake_huma)) == 3)
    assert 0.8 <= clock.sleeps[4] <= 1.0
    assert len(fake_huma.created) == 1


async def test_forgotten_agent_is_recreated(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    listener = RecordingListener()
    session = await make_session(listener=listener)
    old_id = _agent(session)
    await fake_huma.forget_agent(old_id)
    new_agent = await fake_huma.wait_for_agent(2)
    await fake_huma.wait_until(lambda: session.state == "connected")
    assert session.agent_id == new_agent.id != old_id
    assert new_agent.request == fake_huma.created[0].request  # same name and metadata
    refused = [c for c in fake_huma.connections if not c.accepted]
    assert [(c.agent_id, c.code) for c in refused] == [(old_id, "AGENT_NOT_FOUND")]
    assert listener.created == [(old_id, None), (new_agent.id, old_id)]
    # and it works: the next context update reaches the new agent
    assert await session.send_context(context_for(host), "after recreation")
    event = await fake_huma.wait_for_event(lambda e: e.is_context_update)
    assert event.agent_id == new_agent.id


async def test_expired_agent_is_recreated(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    session = await make_session()
    old_id = _agent(session)
    await fake_huma.expire_agent(old_id)
    new_agent = await fake_huma.wait_for_agent(2)
    await fake_huma.wait_until(lambda: session.state == "connected")
    assert session.agent_id == new_agent.id
    assert [c.code for c in fake_huma.connections if not c.accepted] == ["AGENT_EXPIRED"]


async def test_stored_agent_id_that_is_gone_is_recreated_at_start(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    session = await make_session(agent_id="agent-that-never-was")
    await fake_huma.wait_until(lambda: session.state == "connected")
    assert len(fake_huma.created) == 1
    assert session.agent_id == fake_huma.created[0].id


async def test_agent_not_found_error_event_recreates_the_agent(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    session = await make_session()
    old_id = _agent(session)
    await fake_huma.forget_agent(old_id, drop=False)
    await fake_huma.emit_error(old_id, "Agent not found", "AGENT_NOT_FOUND")
    new_agent = await fake_huma.wait_for_agent(2)
    await fake_huma.wait_until(lambda: session.state == "connected")
    assert session.agent_id == new_agent.id
    assert fake_huma.connected_sids(old_id) == []


async def test_wrong_key_at_start_is_a_clear_error(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    listener = RecordingListener()
    with pytest.raises(HumaAuthError) as caught:
        await make_session(api_key="wrong-key", listener=listener)
    assert caught.value.status == 401
    assert "wrong-key" not in str(caught.value)
    assert fake_huma.created == [] and fake_huma.connections == []
    assert listener.states == ["failed"]
    assert listener.errors[0][0] == "UNAUTHORIZED"


async def test_wrong_key_on_the_socket_is_not_retried(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    agent_id = _agent(await make_session())
    clock = ManualClock(auto=True)
    with pytest.raises(HumaAuthError) as caught:
        await make_session(agent_id=agent_id, api_key="wrong-key", clock=clock)
    assert "Invalid API key" in str(caught.value) and agent_id in str(caught.value)
    assert "wrong-key" not in str(caught.value)
    await asyncio.sleep(0.2)
    refused = [c for c in fake_huma.connections if not c.accepted]
    assert [(c.agent_id, c.code) for c in refused] == [(agent_id, "UNAUTHORIZED")]
    assert clock.sleeps == []


async def test_key_rejected_on_reconnect_stops_without_a_retry_storm(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock(auto=True)
    listener = RecordingListener()
    session = await make_session(clock=clock, listener=listener)
    fake_huma.api_key = "rotated-key"
    await fake_huma.drop_connections()
    await fake_huma.wait_until(lambda: session.state == "failed")
    await asyncio.sleep(0.3)  # with an instant clock a retry storm would show up right away
    assert [c.code for c in fake_huma.connections if not c.accepted] == ["UNAUTHORIZED"]
    assert len(clock.sleeps) == 1
    assert isinstance(session.error, HumaAuthError)
    assert listener.states[-1] == "failed"
    assert listener.errors[-1][0] == "UNAUTHORIZED"
    assert await session.send_context(context_for(host), "nobody will hear this") is False


async def test_newest_context_is_delivered_on_reconnect(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock()
    session = await make_session(clock=clock)
    agent_id = _agent(session)
    await fake_huma.drop_connections(agent_id)
    await clock.wait_for_sleepers(1)  # waiting for the backoff delay
    assert session.state == "reconnecting"
    assert await session.send_context(context_for(host), "older message") is False
    assert await session.send_context(context_for(host), "newest message") is False
    await clock.advance(1)
    update = await fake_huma.wait_for_event(lambda e: e.is_context_update)
    assert update.content["description"] == "newest message"
    assert update.agent_id == agent_id
    await fake_huma.emit_status(agent_id, "ok")
    assert [e.content["description"] for e in fake_huma.context_updates()] == ["newest message"]


async def test_pending_message_is_canceled_locally_when_the_connection_dies(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock()
    listener = RecordingListener()
    session = await make_session(clock=clock, listener=listener)
    agent_id = _agent(session)
    call_id = await fake_huma.send_message(agent_id, "c1", "typing when the line drops")
    await clock.wait_for_sleepers(1)
    await fake_huma.drop_connections(agent_id)
    await fake_huma.wait_until(lambda: bool(listener.canceled))
    assert listener.canceled == [(call_id, "c1", REASON_DISCONNECTED)]
    await clock.advance(60)  # typing delay and backoff both pass: reconnect, nothing sent
    await fake_huma.wait_until(lambda: session.state == "connected")
    assert host.sent == []
    assert fake_huma.tool_results(call_id) == []


async def test_huma_down_at_start_retries_in_background(
    fake_huma: FakeHuma, make_session: SessionFactory, host: RecordingHost
) -> None:
    clock = ManualClock()
    fake_huma.fail_rest(503, count=1)
    session = await make_session(clock=clock)
    assert session.state == "reconnecting"
    assert fake_huma.created == []
    assert await session.send_context(context_for(host), "kept for later") is False
    await clock.wait_for_sleepers(1)
    await clock.advance(1)
    update = await fake_huma.wait_for_event(lambda e: e.is_context_update)
    assert update.content["description"] == "kept for later"
    assert len(fake_huma.created) == 1


async def test_clean_close_does_not_reconnect(
    fake_huma: FakeHuma, make_session: SessionFactory
) -> None:
    clock = ManualClock(auto=True)
    session = await make_session(clock=clock)
    await session.close()
    await fake_huma.wait_until(lambda: not fake_huma.connected_sids())
    await asyncio.sleep(0.2)
    assert len(fake_huma.connections) == 1
    assert clock.sleeps == []
    assert session.state == "closed"
    assert not fake_huma.agents[fake_huma.created[0].id].deleted  # kept unless asked


async def test_api_key_is_never_logged(
    fake_huma: FakeHuma, make_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock(auto=True)
    session = await make_session(clock=clock)
    agent_id = _agent(session)
    fake_huma.refuse_connections(1)
    await fake_huma.drop_connections(agent_id, abrupt=True)
    await fake_huma.wait_until(lambda: len(_accepted(fake_huma)) == 2)
    await fake_huma.wait_until(lambda: session.state == "connected")
    fake_huma.api_key = "another"
    await fake_huma.drop_connections(agent_id)
    await fake_huma.wait_until(lambda: session.state == "failed")
    assert caplog.records, "the session logs what it does"
    assert any(agent_id in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in str(record.exc_info or "")
        assert "apiKey" not in record.getMessage()
