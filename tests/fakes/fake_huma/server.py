"""A fake HUMA server speaking the real protocol over real sockets (``huma-protocol.md``).

REST ``/api/agents`` (create, get, update, delete) and a python-socketio server at ``/socket.io/``
on one aiohttp application. It checks the API key, records every agent creation, every connection
attempt and every event it receives, and plays scripted behaviour::

    async with FakeHuma(api_key="test-key") as fake:
        fake.script(contains="hello", reply="Hi there!", delay=0.5)
        ...  # point the code under test at fake.url with api key "test-key"
        result = await fake.wait_for_event(lambda e: e.is_tool_result)

Controls for failure cases: :meth:`FakeHuma.drop_connections`, :meth:`FakeHuma.forget_agent`,
:meth:`FakeHuma.expire_agent`, :meth:`FakeHuma.refuse_connections`, :meth:`FakeHuma.fail_rest`,
:attr:`FakeHuma.rest_delay`, and setting :attr:`FakeHuma.api_key` to reject the client's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs

import socketio
from aiohttp import web

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
_T = TypeVar("_T")


@dataclass
class FakeAgent:
    """An agent as the fake stores it; ``request`` is the exact JSON body of the creation."""

    id: str
    name: str
    agent_type: str
    metadata: JSON
    request: JSON
    created_at: str
    ttl_seconds: float | None = None
    expires_at: float | None = None
    forgotten: bool = False
    deleted: bool = False

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "agentType": self.agent_type,
            "metadata": self.metadata,
            "state": {},
            "createdAt": self.created_at,
        }


@dataclass
class ReceivedEvent:
    """One ``message`` event received from a client, with the agent it was connected as."""

    agent_id: str
    sid: str
    data: Any
    at: float

    @property
    def content(self) -> JSON:
        if isinstance(self.data, dict) and isinstance(self.data.get("content"), dict):
            return dict(self.data["content"])
        return {}

    @property
    def is_context_update(self) -> bool:
        return self.content.get("name") == "new-message"

    @property
    def is_tool_result(self) -> bool:
        return self.content.get("type") == "tool-result"

    @property
    def is_canceled(self) -> bool:
        return self.is_tool_result and self.content.get("status") == "canceled"

    @property
    def tool_call_id(self) -> Any:
        return self.content.get("toolCallId")


@dataclass
class ConnectionAttempt:
    """One Socket.IO connection attempt: accepted, or refused with ``code``."""

    agent_id: str | None
    accepted: bool
    code: str | None
    sid: str
    at: float


@dataclass
class RestRequest:
    method: str
    path: str
    api_key: str | None
    body: Any
    status: int


ScriptAction = Callable[["FakeHuma", str, JSON], Awaitable[None]]


@dataclass
class Rule:
    """A scripted reaction to ``new-message`` updates (see :meth:`FakeHuma.script`)."""

    contains: str | None = None
    match: Callable[[JSON], bool] | None = None
    reply: str | None = None
    tool: str | None = None
    arguments: JSON | None = None
    error: tuple[str, str] | None = None
    drop: bool = False
    action: ScriptAction | None = None
    delay: float = 0.0
    times: int | None = None
    fired: list[str] = field(default_factory=list)
    """The tool call ids this rule emitted (or the agent ids, for rules without a tool call)."""

    def matches(self, content: JSON) -> bool:
        if self.times is not None and len(self.fired) >= self.times:
            return False
        if self.match is not None and not self.match(content):
            return False
        if self.contains is not None:
            haystack = str(content.get("description", "")) + "\n" + _last_history_line(content)
            if self.contains.lower() not in haystack.lower():
                return False
        return True


def _last_history_line(content: JSON) -> str:
    context = content.get("context")
    if not isinstance(context, dict):
        return ""
    channel = context.get("currentChannel")
    if not isinstance(channel, dict):
        return ""
    history = str(channel.get("conversationHistory") or "").rstrip("\n")
    return history.rsplit("\n", 1)[-1]


def _current_channel_id(content: JSON) -> str | None:
    context = content.get("context")
    if isinstance(context, dict) and isinstance(context.get("currentChannel"), dict):
        channel_id = context["currentChannel"].get("id")
        return str(channel_id) if channel_id is not None else None
    return None


def last_message_text(content: JSON) -> str:
    """The text of the newest history line (``[ts] author: text`` → ``text``)."""
    line = _last_history_line(content)
    _, _, rest = line.partition("] ")
    _, _, text = rest.partition(": ")
    return text or rest


class FakeHuma:
    """A HUMA stand-in for tests and local development. Start it inside the running loop."""

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_events: bool = True,
    ):
        self.api_key = api_key
        self.host = host
        self.port = port
        self.agents: dict[str, FakeAgent] = {}
        self.created: list[FakeAgent] = []
        self.events: list[ReceivedEvent] = []
        #: Off for load tests: received events go to :attr:`event_listeners` only, so that
        #: hours of traffic do not pile up in memory (and in the garbage collector's scans).
        self.keep_events = keep_events
        #: Called with every received ``message`` event, as it arrives.
        self.event_listeners: list[Callable[[ReceivedEvent], None]] = []
        self.connections: list[ConnectionAttempt] = []
        self.rest_requests: list[RestRequest] = []
        self.emitted: list[tuple[str, JSON]] = []
        self.rules: list[Rule] = []
        #: Seconds every REST answer is held back (to provoke client timeouts).
        self.rest_delay = 0.0
        self._rest_failures: list[tuple[int, str]] = []
        self._refusals: list[tuple[str, str | None]] = []
        self._sid_agent: dict[str, str] = {}
        self._call_ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", cors_allowed_origins="*", logger=False, engineio_logger=False
        )
        self.app = web.Application()
        self.app.router.add_post("/api/agents", self._create_agent)
        self.app.router.add_get("/api/agents/{agent_id}", self._get_agent)
        self.app.router.add_put("/api/agents/{agent_id}", self._update_agent)
        self.app.router.add_delete("/api/agents/{agent_id}", self._delete_agent)
        self.sio.attach(self.app, socketio_path="socket.io")
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("message", self._on_message)

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeHuma:
        # No access log: the Socket.IO URL carries the client's API key in its query string.
        self._runner = web.AppRunner(
            self.app, handle_signals=False, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        logger.info("fake HUMA listening on %s", self.url)
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for sid in list(self._sid_agent):
            with contextlib.suppress(Exception):
                await self.sio.disconnect(sid)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeHuma:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- scripting

    def script(
        self,
        contains: str | None = None,
        *,
        match: Callable[[JSON], bool] | None = None,
        reply: str | None = None,
        tool: str | None = None,
        arguments: JSON | None = None,
        error: tuple[str, str] | None = None,
        drop: bool = False,
        action: ScriptAction | None = None,
        delay: float = 0.0,
        times: int | None = None,
    ) -> Rule:
        """React to ``new-message`` updates whose description or newest line contains
        ``contains`` (case-insensitive) and/or for which ``match(content)`` is true.

        After ``delay`` seconds: ``reply`` → a ``send_message`` tool call to the current channel;
        ``tool`` + ``arguments`` → any tool call; ``error`` = (message, code) → an ``error`` event;
        ``drop`` → drop the connection; ``action`` → ``await action(fake, agent_id, content)``.
        ``times`` limits how often the rule fires.
        """
        rule = Rule(
            contains=contains,
            match=match,
            reply=reply,
            tool=tool,
            arguments=arguments,
            error=error,
            drop=drop,
            action=action,
            delay=delay,
            times=times,
        )
        self.rules.append(rule)
        return rule

    async def call_tool(
        self, agent_id: str, tool_name: str, arguments: Any, *, tool_call_id: str | None = None
    ) -> str:
        """Emit a ``tool-call`` to the agent's connections; returns the tool call id."""
        call_id = tool_call_id or f"call-{next(self._call_ids)}"
        await self.emit_event(
            agent_id,
            {
                "type": "tool-call",
                "toolCallId": call_id,
                "toolName": tool_name,
                "arguments": arguments,
            },
        )
        return call_id

    async def send_message(self, agent_id: str, channel_id: str, message: str) -> str:
        return await self.call_tool(
            agent_id, "send_message", {"channel_id": channel_id, "message": message}
        )

    async def cancel_tool_call(
        self, agent_id: str, tool_call_id: str, reason: str = "Canceled by agent"
    ) -> None:
        await self.emit_event(
            agent_id, {"type": "cancel-tool-call", "toolCallId": tool_call_id, "reason": reason}
        )

    async def emit_error(self, agent_id: str, message: str, code: str = "INTERNAL_ERROR") -> None:
        await self.emit_event(agent_id, {"type": "error", "message": message, "code": code})

    async def emit_status(self, agent_id: str, status: str) -> None:
        await self.emit_event(agent_id, {"type": "status", "status": status})

    async def emit_event(self, agent_id: str, data: JSON) -> None:
        """Emit a raw ``event`` to every client connected as ``agent_id``."""
        self.emitted.append((agent_id, data))
        await self.sio.emit("event", data, room=agent_id)

    # -- failure controls

    def connected_sids(self, agent_id: str | None = None) -> list[str]:
        return [s for s, a in self._sid_agent.items() if agent_id is None or a == agent_id]

    async def drop_connections(self, agent_id: str | None = None, *, abrupt: bool = False) -> int:
        """Disconnect the clients of ``agent_id`` (all when ``None``).

        ``abrupt`` closes the Engine.IO transport without a Socket.IO goodbye, like a network cut.
        Returns how many connections were dropped.
        """
        sids = self.connected_sids(agent_id)
        for sid in sids:
            if abrupt:
                eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
                if eio_sid is not None:
                    await self.sio.eio.disconnect(eio_sid)
            else:
                await self.sio.disconnect(sid)
        return len(sids)

    async def forget_agent(self, agent_id: str, *, drop: bool = True) -> None:
        """HUMA lost the agent: later connections are refused with ``AGENT_NOT_FOUND``."""
        self.agents[agent_id].forgotten = True
        if drop:
            await self.drop_connections(agent_id)

    async def expire_agent(self, agent_id: str, *, drop: bool = True) -> None:
        """The agent's TTL ran out: later connections are refused with ``AGENT_EXPIRED``."""
        self.agents[agent_id].expires_at = time.monotonic() - 1
        if drop:
            await self.drop_connections(agent_id)

    def refuse_connections(
        self, count: int = 1, *, message: str = "Service unavailable", code: str | None = None
    ) -> None:
        """Refuse the next ``count`` connection attempts (transient unless ``code`` says so)."""
        self._refusals.extend([(message, code)] * count)

    def fail_rest(self, status: int = 503, body: str | JSON | None = None, count: int = 1) -> None:
        """Answer the next ``count`` REST calls with ``status`` and ``body``."""
        if body is None:
            body = {"error": "Unavailable", "message": "Try again later", "statusCode": status}
        text = body if isinstance(body, str) else json.dumps(body)
        self._rest_failures.extend([(status, text)] * count)

    # -- queries

    def context_updates(self, agent_id: str | None = None) -> list[ReceivedEvent]:
        return [
            e
            for e in self.events
            if e.is_context_update and (agent_id is None or e.agent_id == agent_id)
        ]

    def tool_results(self, tool_call_id: str | None = None) -> list[ReceivedEvent]:
        return [
            e
            for e in self.events
            if e.is_tool_result and (tool_call_id is None or e.tool_call_id == tool_call_id)
        ]

    async def wait_for_event(
        self, predicate: Callable[[ReceivedEvent], bool] | None = None, timeout: float = 5.0
    ) -> ReceivedEvent:
        """The first recorded event (past or future) for which ``predicate`` is true."""
        return await self._wait(lambda: self._first(self.events, predicate), timeout)

    async def wait_for_tool_result(self, tool_call_id: str, timeout: float = 5.0) -> ReceivedEvent:
        return await self.wait_for_event(
            lambda e: e.is_tool_result and e.tool_call_id == tool_call_id, timeout
        )

    async def wait_for_connection(
        self, predicate: Callable[[ConnectionAttempt], bool] | None = None, timeout: float = 5.0
    ) -> ConnectionAttempt:
        """The first connection attempt (past or future) for which ``predicate`` is true;
        by default the first accepted one."""
        pred = predicate or (lambda c: c.accepted)
        return await self._wait(lambda: self._first(self.connections, pred), timeout)

    async def wait_for_agent(self, count: int = 1, timeout: float = 5.0) -> FakeAgent:
        """Wait until ``count`` agents were created; returns the ``count``-th."""
        return await self._wait(
            lambda: self.created[count - 1] if len(self.created) >= count else None, timeout
        )

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        await self._wait(lambda: True if condition() else None, timeout)

    @staticmethod
    def _first(items: list[_T], predicate: Callable[[_T], bool] | None) -> _T | None:
        for item in items:
            if predicate is None or predicate(item):
                return item
        return None

    async def _wait(self, probe: Callable[[], _T | None], timeout: float) -> _T:
        """Re-check ``probe`` on every change of the fake, and every 20 ms for outside state."""
        async with asyncio.timeout(timeout):
            while True:
                found = probe()
                if found is not None:
                    return found
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.02)

    def _notify(self) -> None:
        self._changed.set()

    # -- REST handlers

    async def _rest(
        self, request: web.Request, body: Any, handler: Callable[[], tuple[int, Any]]
    ) -> web.Response:
        if self.rest_delay:
            await asyncio.sleep(self.rest_delay)
        key = request.headers.get("X-API-Key")
        if self._rest_failures:
            status, text = self._rest_failures.pop(0)
            payload: Any = text
        elif key != self.api_key:
            status, payload = 401, _error(401, "Unauthorized", "Invalid API key")
        else:
            status, payload = handler()
        self.rest_requests.append(RestRequest(request.method, request.path, key, body, status))
        self._notify()
        if isinstance(payload, str):
            return web.Response(status=status, text=payload, content_type="application/json")
        return web.json_response(payload, status=status)

    async def _create_agent(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None

        def handler() -> tuple[int, Any]:
            if not isinstance(body, dict):
                return 400, _error(400, "Bad Request", "Body must be a JSON object")
            name, metadata = body.get("name"), body.get("metadata")
            if not isinstance(name, str) or not name or not isinstance(metadata, dict):
                return 400, _error(400, "Bad Request", "name and metadata are required")
            ttl = body.get("ttlSeconds")
            agent = FakeAgent(
                id=f"agent-{uuid.uuid4().hex[:12]}",
                name=name,
                agent_type=str(body.get("agentType") or ""),
                metadata=metadata,
                request=body,
                created_at=datetime.now(UTC).isoformat(),
                ttl_seconds=float(ttl) if isinstance(ttl, int | float) else None,
                expires_at=time.monotonic() + float(ttl) if isinstance(ttl, int | float) else None,
            )
            self.agents[agent.id] = agent
            self.created.append(agent)
            return 201, agent.to_json()

        return await self._rest(request, body, handler)

    def _live_agent(self, agent_id: str) -> FakeAgent | None:
        agent = self.agents.get(agent_id)
        if agent is None or agent.forgotten or agent.deleted or self._expired(agent):
            return None
        return agent

    def _gone(self, agent_id: str) -> bool:
        agent = self.agents.get(agent_id)
        return agent is None or agent.forgotten or agent.deleted

    @staticmethod
    def _expired(agent: FakeAgent) -> bool:
        return agent.expires_at is not None and time.monotonic() >= agent.expires_at

    async def _get_agent(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]

        def handler() -> tuple[int, Any]:
            agent = self._live_agent(agent_id)
            if agent is None:
                return 404, _error(404, "Not Found", "Agent not found")
            return 200, agent.to_json()

        return await self._rest(request, None, handler)

    async def _update_agent(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        try:
            body = await request.json()
        except ValueError:
            body = None

        def handler() -> tuple[int, Any]:
            agent = self._live_agent(agent_id)
            if agent is None:
                return 404, _error(404, "Not Found", "Agent not found")
            if not isinstance(body, dict):
                return 400, _error(400, "Bad Request", "Body must be a JSON object")
            if isinstance(body.get("metadata"), dict):
                agent.metadata = body["metadata"]
            if isinstance(body.get("name"), str):
                agent.name = body["name"]
            return 200, agent.to_json()

        return await self._rest(request, body, handler)

    async def _delete_agent(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]

        def handler() -> tuple[int, Any]:
            agent = self._live_agent(agent_id)
            if agent is None:
                return 404, _error(404, "Not Found", "Agent not found")
            agent.deleted = True
            return 200, {"success": True}

        return await self._rest(request, None, handler)

    # -- Socket.IO handlers

    async def _on_connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        agent_id = query.get("agentId", [None])[0]
        key = query.get("apiKey", [None])[0]
        code: str | None
        message: str
        if self._refusals:
            message, code = self._refusals.pop(0)
        elif not agent_id:
            message, code = "agentId is required", "MISSING_AGENT_ID"
        elif key != self.api_key:
            message, code = "Invalid API key", "UNAUTHORIZED"
        elif self._gone(agent_id):
            message, code = "Agent not found", "AGENT_NOT_FOUND"
        elif self._expired(self.agents[agent_id]):
            message, code = "Agent expired", "AGENT_EXPIRED"
        else:
            assert agent_id is not None
            self._sid_agent[sid] = agent_id
            await self.sio.enter_room(sid, agent_id)
            self.connections.append(ConnectionAttempt(agent_id, True, None, sid, time.monotonic()))
            self._notify()
            return
        self.connections.append(ConnectionAttempt(agent_id, False, code, sid, time.monotonic()))
        self._notify()
        data: JSON = {"code": code} if code else {}
        raise socketio.exceptions.ConnectionRefusedError(message, data)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._sid_agent.pop(sid, None)
        self._notify()

    async def _on_message(self, sid: str, data: Any) -> None:
        agent_id = self._sid_agent.get(sid, "")
        event = ReceivedEvent(agent_id, sid, data, time.monotonic())
        if self.keep_events:
            self.events.append(event)
        for listener in self.event_listeners:
            listener(event)
        self._notify()
        if event.is_context_update:
            for rule in self.rules:
                if rule.matches(event.content):
                    rule.fired.append("")  # reserve the firing now so `times` holds
                    self._spawn(self._fire(rule, len(rule.fired) - 1, agent_id, event.content))

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def runner() -> None:
            try:
                await coro
            except Exception:
                logger.exception("fake HUMA script failed")

        task = asyncio.create_task(runner())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire(self, rule: Rule, index: int, agent_id: str, content: JSON) -> None:
        if rule.delay:
            await asyncio.sleep(rule.delay)
        marker = agent_id
        if rule.reply is not None:
            channel_id = _current_channel_id(content) or ""
            marker = await self.send_message(agent_id, channel_id, rule.reply)
        elif rule.tool is not None:
            marker = await self.call_tool(agent_id, rule.tool, rule.arguments or {})
        if rule.error is not None:
            await self.emit_error(agent_id, rule.error[0], rule.error[1])
        if rule.action is not None:
            await rule.action(self, agent_id, content)
        if rule.drop:
            await self.drop_connections(agent_id)
        rule.fired[index] = marker
        self._notify()


def _error(status: int, error: str, message: str) -> JSON:
    return {"error": error, "message": message, "statusCode": status}
