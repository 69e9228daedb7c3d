"""A fake OpenAI-compatible model server speaking the Chat Completions API (non-streaming).

``POST /v1/chat/completions`` and ``GET /v1/models`` on an aiohttp application, faithful enough for
the official ``openai`` SDK: the response carries ``id``, ``object``, ``created``, ``model``,
``choices[0].message`` (``content`` and/or ``tool_calls`` with JSON-string ``arguments``),
``finish_reason`` and ``usage``; errors are ``{"error": {"message", "type", "code", "param"}}``.
Like the real API it refuses a conversation whose ``tool`` messages do not answer the preceding
assistant message's ``tool_calls``, so a client that gets the tool loop wrong fails here too::

    async with FakeOpenAI(api_key="sk-test") as fake:
        fake.queue(send_message("c1", "Hi there!"), text("done"))
        fake.fail(429, times=1, retry_after=2)  # then normal
        fake.hang()  # the next request never gets an answer
        ...  # point the code under test at fake.base_url
        request = await fake.wait_for_request()
        request.body["messages"], request.headers["Authorization"]

Replies come from the queue first, then from ``default`` (a function of the request), else an
empty answer without tool calls (the model stays silent).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
_T = TypeVar("_T")

_CHANNEL_LINE = re.compile(r"^Current channel: #.* \(id (?P<id>[^)\s]+)\)$", re.MULTILINE)
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


# ------------------------------------------------------------------------------------ scripting


@dataclass(frozen=True)
class ToolCall:
    """A function call the fake model makes; ``arguments`` is sent as a JSON string (a ``str`` is
    sent as it is, to script malformed arguments)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def to_json(self) -> JSON:
        arguments = self.arguments
        if not isinstance(arguments, str):
            arguments = json.dumps(dict(arguments), ensure_ascii=False)
        return {
            "id": self.id or f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


@dataclass(frozen=True)
class Reply:
    """One answer of the fake model: text, tool calls, or both."""

    content: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None  # default: "tool_calls" when there are any, else "stop"


def text(content: str) -> Reply:
    """A plain-text answer without tool calls."""
    return Reply(content=content)


def send_message(channel_id: str, message: str, *, call_id: str | None = None) -> Reply:
    """An answer that calls ``send_message``."""
    return Reply(
        tool_calls=[
            ToolCall("send_message", {"channel_id": channel_id, "message": message}, call_id)
        ]
    )


def tool_call(
    name: str, arguments: Mapping[str, Any] | str, *, call_id: str | None = None
) -> Reply:
    """An answer that calls one tool."""
    return Reply(tool_calls=[ToolCall(name, arguments, call_id)])


ReplyFn = Callable[["ChatRequest"], Reply]


@dataclass
class Failure:
    """The next ``times`` requests fail: with ``status`` (and ``Retry-After``), or they hang."""

    status: int = 500
    times: int = 1
    retry_after: float | str | None = None
    message: str | None = None
    hang: bool = False


# ------------------------------------------------------------------------------------- records


@dataclass
class ChatRequest:
    """One request the fake received, as it arrived."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    at: float
    status: int | None = None  # what the fake answered (None while hanging)
    abandoned: asyncio.Event = field(default_factory=asyncio.Event)  # the client went away

    @property
    def messages(self) -> list[JSON]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []

    @property
    def tools(self) -> list[JSON]:
        if isinstance(self.body, dict) and isinstance(self.body.get("tools"), list):
            return list(self.body["tools"])
        return []

    @property
    def tool_names(self) -> list[str]:
        return [str((t.get("function") or {}).get("name")) for t in self.tools]

    @property
    def system(self) -> str:
        """The system message's text ("" when there is none)."""
        for message in self.messages:
            if message.get("role") in ("system", "developer"):
                return _text_of(message.get("content"))
        return ""

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value[7:] if value.startswith("Bearer ") else None

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""

    def current_channel_id(self) -> str | None:
        """The id of the system message's ``Current channel: #name (id …)`` line."""
        match = _CHANNEL_LINE.search(self.system)
        return match.group("id") if match else None


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def quoting_reply(request: ChatRequest) -> Reply:
    """The standalone server's behaviour: answer a conversation with a ``send_message`` call that
    quotes part of the last user message, and the follow-up call (after the tool result) with
    nothing, so the agent's turn ends."""
    messages = request.messages
    if messages and messages[-1].get("role") == "tool":
        return Reply(content="")
    channel_id = request.current_channel_id()
    if channel_id is None:
        return text("I cannot see which channel this is.")
    said = request.last_user_text()
    quote = said.split(": ", 1)[1] if ": " in said else said
    quote = quote if len(quote) <= 80 else quote[:79] + "…"
    return send_message(channel_id, f'You said: "{quote}"')


# -------------------------------------------------------------------------------------- server


def _error(
    status: int,
    message: str,
    type_: str,
    code: str | None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


_STATUS_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "permission_error", None),
    404: ("The model does not exist.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded.", "server_error", None),
}


class FakeOpenAI:
    """The fake server; ``api_key`` (optional) is the key clients must send as ``Bearer``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "fake-model",
        host: str = "127.0.0.1",
        port: int = 0,
        default: ReplyFn | None = None,
        delay: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.host = host
        self.port = port
        self.default = default
        self.delay = delay  # seconds before each answer
        self.requests: list[ChatRequest] = []
        self.replies: deque[Reply | ReplyFn] = deque()
        self.failures: deque[Failure] = deque()
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self._chat_completions)
        self.app.router.add_get("/v1/models", self._models)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle

    async def start(self) -> FakeOpenAI:
        self._runner = web.AppRunner(
            self.app, handle_signals=False, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        logger.info("fake OpenAI listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- scripting

    def queue(self, *replies: Reply | ReplyFn) -> None:
        """Answer the next requests with these replies, in order (a function gets the request)."""
        self.replies.extend(replies)

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (after the failures queued before)."""
        self.failures.append(Failure(status, times, retry_after, message))

    def hang(self, *, times: int = 1) -> None:
        """Never answer the next ``times`` requests; each is held until its client goes away."""
        self.failures.append(Failure(times=times, hang=True))

    # -- inspection

    @property
    def chat_requests(self) -> list[ChatRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def wait_for_request(self, index: int = 0, timeout: float = 5.0) -> ChatRequest:
        """The ``index``-th chat request (0 is the first), once it has arrived."""
        return await self._wait(
            lambda: self.chat_requests[index] if len(self.chat_requests) > index else None, timeout
        )

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        await self._wait(lambda: True if condition() else None, timeout)

    async def _wait(self, probe: Callable[[], _T | None], timeout: float) -> _T:
        async with asyncio.timeout(timeout):
            while True:
                found = probe()
                if found is not None:
                    return found
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.02)

    def _record(self, request: ChatRequest) -> None:
        self.requests.append(request)
        self._changed.set()

    # -- handlers

    def _authorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        header = request.headers.get("Authorization", "")
        if header == f"Bearer {self.api_key}":
            return None
        if not header.startswith("Bearer "):
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        else:  # some providers echo the key they were given: clients must not log this text
            message = f"Incorrect API key provided: {header[7:]}."
        return _error(401, message, "invalid_request_error", "invalid_api_key")

    async def _models(self, request: web.Request) -> web.StreamResponse:
        record = ChatRequest("GET", request.path, dict(request.headers), None, time.time())
        self._record(record)
        refused = self._authorized(request)
        response = refused or web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": self.model, "object": "model", "created": 1700000000, "owned_by": "fake"}
                ],
            }
        )
        record.status = response.status
        return response

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = ChatRequest("POST", request.path, dict(request.headers), body, time.time())
        self._record(record)
        response = await self._answer(request, record)
        record.status = response.status
        self._changed.set()
        return response

    async def _answer(self, request: web.Request, record: ChatRequest) -> web.StreamResponse:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        problem = _invalid(record.body)
        if problem is not None:
            return _error(400, problem, "invalid_request_error", None)
        if self.failures:
            failure = self.failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self.failures.popleft()
            if failure.hang:
                await self._hold(request, record)
                return _error(
                    503, "The fake stopped while holding this request.", "server_error", None
                )
            message, type_, code = _STATUS_ERRORS.get(failure.status, ("Error.", "error", None))
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            return _error(failure.status, failure.message or message, type_, code, headers)
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        reply = self._next_reply(record)
        return web.json_response(self._completion(record, reply))

    async def _hold(self, request: web.Request, record: ChatRequest) -> None:
        """Keep the request open until its client disconnects (then mark it abandoned)."""
        while not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                record.abandoned.set()
                self._changed.set()
                return
            await asyncio.sleep(0.01)

    def _next_reply(self, record: ChatRequest) -> Reply:
        if self.replies:
            reply = self.replies.popleft()
            return reply(record) if callable(reply) else reply
        if self.default is not None:
            return self.default(record)
        return Reply(content="")

    def _completion(self, record: ChatRequest, reply: Reply) -> JSON:
        calls = [call.to_json() for call in reply.tool_calls]
        message: JSON = {"role": "assistant", "content": reply.content, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        prompt_tokens = max(1, len(json.dumps(record.messages)) // 4)
        completion_tokens = max(1, len(json.dumps(message)) // 4)
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(record.body.get("model")) if isinstance(record.body, dict) else self.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": None,
        }


def _invalid(body: object) -> str | None:
    """Why the real API would refuse this request body with a 400, if it would."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    if body.get("stream"):
        return "The fake model server does not stream."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array."
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "'tools' must be an array."
        for tool in tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            if tool.get("type") != "function" or not isinstance(function, dict):
                return "Invalid tool: expected {type: 'function', function: {...}}."
            if not isinstance(function.get("name"), str):
                return "Invalid tool: missing function name."
            parameters = function.get("parameters")
            if parameters is not None and (
                not isinstance(parameters, dict) or parameters.get("type") != "object"
            ):
                return "Invalid schema for function parameters: must be an object schema."
    return _invalid_messages(messages)


def _invalid_messages(messages: list[Any]) -> str | None:
    waiting: set[str] = set()  # tool_call ids of the last assistant message, not answered yet
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return f"Invalid value for 'messages[{index}].role'."
        role = message["role"]
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in waiting:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'."
                )
            waiting.discard(call_id)
            if not isinstance(message.get("content"), str | list):
                return f"Missing 'messages[{index}].content'."
            continue
        if waiting:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'."
            )
        if role == "assistant":
            calls = message.get("tool_calls") or []
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                    return f"Invalid 'messages[{index}].tool_calls': arguments must be a string."
                waiting.add(str(call.get("id")))
            if not calls and message.get("content") is None:
                return f"Missing 'messages[{index}].content'."
        elif not isinstance(message.get("content"), str | list):
            return f"Missing 'messages[{index}].content'."
    if waiting:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'."
        )
    return None
