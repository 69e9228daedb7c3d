"""The model client: the real SDK against the fake server, our retry policy, error texts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from openai.types.chat import ChatCompletionMessageParam

from neonrain.huma import Backoff
from neonrain.openai_engine import (
    EngineAuthError,
    EngineTimeoutError,
    EngineUnavailableError,
    ModelClient,
    OpenAIEndpoint,
    function_tools,
    new_http_client,
)
from neonrain.openai_engine.client import retry_after_seconds
from tests.fakes.fake_huma import ManualClock
from tests.fakes.fake_openai import FakeOpenAI, Reply, ToolCall, send_message, text
from tests.webapp import free_port

from .conftest import API_KEY, MODEL

HELLO: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "alice: hi"},
]


def client_for(fake: FakeOpenAI, clock: ManualClock | None = None, **kwargs) -> ModelClient:
    clock = clock or ManualClock(auto=True)
    endpoint = OpenAIEndpoint(fake.base_url, MODEL, kwargs.pop("api_key", API_KEY))
    return ModelClient(endpoint, sleep=clock.sleep, **kwargs)


async def test_request_and_reply_shapes(fake: FakeOpenAI) -> None:
    fake.queue(
        Reply(
            content="thinking out loud",
            tool_calls=[ToolCall("send_message", {"channel_id": "c1", "message": "Hi!"}, "call_9")],
        )
    )
    client = client_for(fake)
    try:
        reply = await client.complete(HELLO, function_tools("discord"))
    finally:
        await client.aclose()
    assert reply.content == "thinking out loud"
    assert reply.finish_reason == "tool_calls"
    assert reply.model == MODEL
    [call] = reply.tool_calls
    assert (call.id, call.name) == ("call_9", "send_message")
    assert call.arguments == '{"channel_id": "c1", "message": "Hi!"}'
    request = fake.chat_requests[0]
    assert request.body["messages"] == HELLO
    assert request.body["tool_choice"] == "auto"
    assert request.tool_names == ["send_message", "fetch_channel_messages"]
    assert request.bearer == API_KEY
    assert reply.assistant_message() == {
        "role": "assistant",
        "content": "thinking out loud",
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "send_message", "arguments": call.arguments},
            }
        ],
    }


async def test_retry_after_is_honoured(fake: FakeOpenAI) -> None:
    clock = ManualClock(auto=True)
    fake.fail(429, retry_after=3)
    fake.fail(503, retry_after="1.5")
    fake.queue(text("ok"))
    client = client_for(fake, clock)
    try:
        reply = await client.complete(HELLO)
    finally:
        await client.aclose()
    assert reply.content == "ok"
    assert clock.sleeps == [3.0, 1.5]
    assert [r.status for r in fake.chat_requests] == [429, 503, 200]


async def test_without_retry_after_the_backoff_grows(fake: FakeOpenAI) -> None:
    clock = ManualClock(auto=True)
    fake.fail(500, times=3)
    client = client_for(fake, clock, backoff=lambda: Backoff(jitter=0.0))
    try:
        with pytest.raises(EngineUnavailableError) as caught:
            await client.complete(HELLO)
    finally:
        await client.aclose()
    assert clock.sleeps == [1.0, 2.0]  # retried twice, then given up
    assert len(fake.chat_requests) == 3
    assert caught.value.code == "server_error" and caught.value.status == 500
    assert str(caught.value) == "The server had an error while processing your request."


async def test_a_wait_longer_than_worth_it_gives_up_at_once(fake: FakeOpenAI) -> None:
    clock = ManualClock(auto=True)
    fake.fail(429, retry_after=3600)
    client = client_for(fake, clock)
    try:
        with pytest.raises(EngineUnavailableError) as caught:
            await client.complete(HELLO)
    finally:
        await client.aclose()
    assert caught.value.code == "rate_limited"
    assert "asked to wait 3600 s" in str(caught.value)
    assert clock.sleeps == [] and len(fake.chat_requests) == 1


async def test_other_client_errors_are_not_retried(fake: FakeOpenAI) -> None:
    fake.fail(404, message="The model `test-model` does not exist")
    client = client_for(fake)
    try:
        with pytest.raises(EngineUnavailableError) as caught:
            await client.complete(HELLO)
    finally:
        await client.aclose()
    assert (caught.value.code, caught.value.status) == ("refused", 404)
    assert str(caught.value) == "The model `test-model` does not exist"
    assert len(fake.chat_requests) == 1


async def test_a_malformed_tool_loop_is_refused_by_the_fake_like_the_api(fake: FakeOpenAI) -> None:
    client = client_for(fake)
    orphan: list[ChatCompletionMessageParam] = [
        *HELLO,
        {"role": "tool", "tool_call_id": "nope", "content": "result"},
    ]
    try:
        with pytest.raises(EngineUnavailableError) as caught:
            await client.complete(orphan)
    finally:
        await client.aclose()
    assert caught.value.status == 400
    assert "must be a response to a preceding message with 'tool_calls'" in str(caught.value)


async def test_refused_key_is_terminal_and_redacted(fake: FakeOpenAI) -> None:
    key = "sk-wrong-0123456789abcdef"
    client = client_for(fake, api_key=key)
    try:
        with pytest.raises(EngineAuthError) as caught:
            await client.complete(HELLO)
    finally:
        await client.aclose()
    assert caught.value.status == 401
    assert str(caught.value) == "Incorrect API key provided: ***."
    assert key not in repr(caught.value.args)
    assert len(fake.chat_requests) == 1


async def test_timeout_abandons_the_request(fake: FakeOpenAI) -> None:
    fake.hang()
    client = client_for(fake, timeout=0.3)
    try:
        with pytest.raises(EngineTimeoutError) as caught:
            await client.complete(HELLO)
    finally:
        await client.aclose()
    assert caught.value.code == "timeout"
    assert str(caught.value) == "the model did not answer within 0.3 s"
    await fake.wait_until(fake.chat_requests[0].abandoned.is_set)
    assert len(fake.chat_requests) == 1


async def test_an_unreachable_server_is_retried_then_reported() -> None:
    clock = ManualClock(auto=True)
    endpoint = OpenAIEndpoint(f"http://127.0.0.1:{free_port()}/v1", MODEL)
    client = ModelClient(endpoint, sleep=clock.sleep, timeout=5)
    try:
        with pytest.raises(EngineUnavailableError) as caught:
            await client.complete(HELLO)
    finally:
        await client.aclose()
    assert caught.value.code == "connection"
    assert str(caught.value).startswith("cannot reach the model server")
    assert len(clock.sleeps) == 2


async def test_a_shared_http_client_is_left_open(fake: FakeOpenAI) -> None:
    http = new_http_client()
    try:
        clients = [client_for(fake, http_client=http) for _ in range(2)]
        fake.queue(send_message("c1", "one"), send_message("c1", "two"))
        replies = await asyncio.gather(*(c.complete(HELLO) for c in clients))
        for client in clients:
            await client.aclose()
        assert not http.is_closed
        assert sorted(r.tool_calls[0].arguments for r in replies) == sorted(
            ['{"channel_id": "c1", "message": "one"}', '{"channel_id": "c1", "message": "two"}']
        )
    finally:
        await http.aclose()


async def test_probe_reports_the_model_and_latency(fake: FakeOpenAI) -> None:
    client = client_for(fake)
    try:
        model, latency = await client.probe()
    finally:
        await client.aclose()
    assert model == MODEL and latency > 0
    assert "tools" not in fake.chat_requests[0].body


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    moment = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
    header = {"retry-after": format_datetime(moment, usegmt=True)}
    assert retry_after_seconds(header, now=moment.timestamp() - 30) == 30.0
    assert retry_after_seconds(header, now=moment.timestamp() + 5) == 0.0
    for nonsense in ("soon", "-1", "nan", "inf"):
        assert retry_after_seconds({"retry-after": nonsense}) is None
    assert retry_after_seconds({}) is None


async def test_nothing_from_the_process_environment_reaches_the_endpoint(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK would add the operator's OpenAI organisation, project and custom headers to every
    request; an endpoint (often an account's own provider) must get none of them."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator-own-key")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-operator")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-operator")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-operator")
    monkeypatch.setenv(
        "OPENAI_CUSTOM_HEADERS", "X-Operator-Secret: s3cret\nAuthorization: Bearer sk-ambient"
    )
    for api_key in (API_KEY, None):
        fake.api_key = api_key  # a local server needs none
        shared = new_http_client()
        for http in (None, shared):
            client = client_for(fake, api_key=api_key, http_client=http)
            try:
                await client.complete(HELLO)
                await client.probe()
            finally:
                await client.aclose()
        await shared.aclose()
    assert len(fake.chat_requests) == 8
    for request in fake.chat_requests:
        headers = {name.lower(): value for name, value in request.headers.items()}
        assert "openai-organization" not in headers and "openai-project" not in headers
        assert "x-operator-secret" not in headers
        assert request.bearer in (API_KEY, "no-api-key")
        assert "operator" not in repr(request.headers) and "ambient" not in repr(request.headers)


async def test_a_redirect_is_not_followed() -> None:
    """An endpoint that redirects could bounce the request (and its answer) to an address the
    configuration check never saw: the call fails instead."""
    from aiohttp import web

    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPTemporaryRedirect("http://127.0.0.1:9/v1/chat/completions")

    port = free_port()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    http = new_http_client()
    try:
        for shared in (None, http):
            endpoint = OpenAIEndpoint(f"http://127.0.0.1:{port}/v1", MODEL)
            client = ModelClient(endpoint, retries=0, http_client=shared)
            try:
                with pytest.raises(EngineUnavailableError) as caught:
                    await client.probe()
            finally:
                await client.aclose()
            assert caught.value.status == 307 and caught.value.code == "refused"
    finally:
        await http.aclose()
        await runner.cleanup()
    assert hits == ["/v1/chat/completions"] * 2


@pytest.mark.parametrize(
    "answer",
    [
        ("text/html", "<html><body>Welcome to my blog</body></html>"),
        ("application/json", "{not json"),
        ("application/json", '{"choices": [{"message": "hi"}]}'),
        ("application/json", '{"choices": "none"}'),
        ("application/json", '{"object": "list", "data": []}'),
    ],
)
async def test_an_answer_that_is_not_a_completion_is_a_bad_response(
    answer: tuple[str, str],
) -> None:
    """A base URL that points at something else (a web page, another API) is an engine error,
    never an unexpected exception."""
    from aiohttp import web

    content_type, body = answer

    async def reply(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type=content_type)

    port = free_port()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", reply)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = ModelClient(OpenAIEndpoint(f"http://127.0.0.1:{port}/v1", MODEL), retries=0)
    try:
        with pytest.raises(EngineUnavailableError) as caught:
            await client.complete(HELLO)
    finally:
        await client.aclose()
        await runner.cleanup()
    assert caught.value.code == "bad_response"
