"""The reporter: a poison item never stops the queue, the kinds travel independently, and what a
stopping worker could not deliver is replayed by the next one."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from neonrain.contract import AgentActionBody, MessageHistory, WorkerTokenState
from neonrain.worker.backend import BackendClient
from neonrain.worker.reporting import MAX_ATTEMPTS, Reporter


class WebApp:
    """A stand-in for the internal API that records what it accepted and refuses on demand."""

    def __init__(self) -> None:
        self.accepted: dict[str, list[Any]] = {}
        self.refuse: dict[str, int] = {}  # channel name of an action → status to answer
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        body = json.loads(request.content)
        path = request.url.path
        if path.endswith("/agent-actions") and body["channelName"] in self.refuse:
            status = self.refuse[body["channelName"]]
            return httpx.Response(status, json={"error": "no", "code": "NOPE"})
        self.accepted.setdefault(path.rsplit("/", 1)[-1], []).append(body)
        return httpx.Response(204 if path.endswith("worker-status") else 201, json={})

    def actions(self) -> list[str]:
        return [a["channelName"] for a in self.accepted.get("agent-actions", [])]


def action(name: str) -> AgentActionBody:
    return AgentActionBody(
        user_id="u1",
        guild_id="1",
        channel_id="2",
        channel_name=name,
        agent_message="hello",
        trigger_description="User a in #x: hi",
        message_history=MessageHistory(),
    )


def reporter_for(web: WebApp, spool: Path | None = None) -> tuple[Reporter, BackendClient]:
    backend = BackendClient("http://web", "key", transport=httpx.MockTransport(web.handle))
    return Reporter(backend, flush_seconds=0.05, spool_file=spool), backend


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_refused_action_is_dropped_and_the_rest_delivered(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    web = WebApp()
    web.refuse["poison"] = status
    reporter, backend = reporter_for(web)
    try:
        for name in ("poison", "good-1", "good-2"):
            reporter.agent_action(action(name))
        reporter.state(WorkerTokenState(user_id="u1", state="online"))
        with caplog.at_level(logging.WARNING, "neonrain.worker.reporting"):
            await reporter.flush()
    finally:
        await backend.aclose()
    assert web.actions() == ["good-1", "good-2"]
    assert web.accepted["worker-status"][0]["tokens"][0]["state"] == "online"
    assert reporter.dropped_actions == 1
    assert any("agent action dropped" in r.getMessage() for r in caplog.records)


async def test_a_failing_action_goes_behind_the_others_and_is_given_up_in_the_end() -> None:
    web = WebApp()
    web.refuse["flaky"] = 503
    reporter, backend = reporter_for(web)
    try:
        for name in ("flaky", "good-1", "good-2"):
            reporter.agent_action(action(name))
        reporter.state(WorkerTokenState(user_id="u1", state="online"))
        await reporter.flush()  # the status goes first, whatever the actions do
        assert "worker-status" in web.accepted
        for _ in range(MAX_ATTEMPTS + 2):
            for channel in reporter._channels.values():
                channel.not_before = 0.0  # skip the backoff
            await reporter.flush()
    finally:
        await backend.aclose()
    assert web.actions() == ["good-1", "good-2"]
    assert reporter.dropped_actions == 1
    assert not reporter._actions


async def test_undelivered_reports_are_spooled_and_replayed(tmp_path: Path) -> None:
    spool = tmp_path / "spool.json"
    web = WebApp()
    web.down = True
    first, backend = reporter_for(web, spool)
    try:
        first.count("u1", "1", "message_received")
        first.count("u1", "1", "message_received")
        first.count("u1", "1", "message_sent")
        first.agent_action(action("kept"))
        first.cursor("u1", "1", "2", "77")
        await first.stop()
    finally:
        await backend.aclose()
    assert spool.exists() and spool.stat().st_mode & 0o777 == 0o600
    web.down = False
    second, backend = reporter_for(web, spool)
    try:
        second.start()
        await second.stop()
    finally:
        await backend.aclose()
    assert not spool.exists()
    events = {e["event"]: e["count"] for e in web.accepted["stats"][0]["events"]}
    assert events == {"message_received": 2, "message_sent": 1}
    assert web.actions() == ["kept"]
    assert web.accepted["cursors"][0]["cursors"][0]["messageId"] == "77"
