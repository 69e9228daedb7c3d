"""The REST client against the fake HUMA server: payloads, errors, timeouts."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from neonrain.huma import (
    HumaAPIError,
    HumaAuthError,
    HumaRestClient,
    HumaTimeoutError,
    ServerConfig,
    build_agent_metadata,
)
from tests.fakes.fake_huma import FakeHuma

from .conftest import API_KEY


async def test_create_get_update_delete(fake_huma: FakeHuma) -> None:
    metadata = build_agent_metadata(ServerConfig(bot_name="Nova", server_name="S"))
    async with HumaRestClient(fake_huma.url, API_KEY) as rest:
        info = await rest.create_agent("Discord-S", metadata)
        assert info.id in fake_huma.agents
        assert info.name == "Discord-S" and info.agent_type == "HUMA-0.1"
        assert info.metadata == metadata
        request = fake_huma.rest_requests[0]
        assert (request.method, request.path, request.api_key) == ("POST", "/api/agents", API_KEY)
        assert request.body == {"name": "Discord-S", "agentType": "HUMA-0.1", "metadata": metadata}

        fetched = await rest.get_agent(info.id)
        assert fetched is not None and fetched.id == info.id

        updated = await rest.update_agent(info.id, {"metadata": {**metadata, "className": "X"}})
        assert updated.metadata["className"] == "X"

        assert await rest.delete_agent(info.id) is True
        assert fake_huma.agents[info.id].deleted
        assert await rest.delete_agent(info.id) is False  # a 404 on delete is fine
        assert await rest.get_agent(info.id) is None


async def test_ttl_is_sent_when_given(fake_huma: FakeHuma) -> None:
    async with HumaRestClient(fake_huma.url, API_KEY) as rest:
        await rest.create_agent("WebChat-1", {"className": "Nova"}, ttl_seconds=86400)
    assert fake_huma.created[0].request["ttlSeconds"] == 86400


async def test_server_error_carries_status_and_body(fake_huma: FakeHuma) -> None:
    fake_huma.fail_rest(503, {"error": "Unavailable", "message": "maintenance", "statusCode": 503})
    async with HumaRestClient(fake_huma.url, API_KEY) as rest:
        with pytest.raises(HumaAPIError) as caught:
            await rest.create_agent("Discord-S", {"className": "Nova"})
    assert caught.value.status == 503
    assert "maintenance" in caught.value.body
    assert caught.value.retryable
    assert "503" in str(caught.value)
    assert fake_huma.created == []


async def test_bad_request_is_not_retryable(fake_huma: FakeHuma) -> None:
    async with HumaRestClient(fake_huma.url, API_KEY) as rest:
        with pytest.raises(HumaAPIError) as caught:
            await rest.create_agent("", {"className": "Nova"})
    assert caught.value.status == 400
    assert not caught.value.retryable


async def test_wrong_key_is_an_auth_error(fake_huma: FakeHuma) -> None:
    async with HumaRestClient(fake_huma.url, "wrong-key") as rest:
        with pytest.raises(HumaAuthError) as caught:
            await rest.create_agent("Discord-S", {"className": "Nova"})
    assert caught.value.status == 401
    assert "Invalid API key" in caught.value.body
    assert "wrong-key" not in str(caught.value)


async def test_timeout_is_an_error_without_status(fake_huma: FakeHuma) -> None:
    fake_huma.rest_delay = 2.0
    async with HumaRestClient(fake_huma.url, API_KEY, timeout=0.2) as rest:
        with pytest.raises(HumaTimeoutError) as caught:
            await rest.create_agent("Discord-S", {"className": "Nova"})
    assert caught.value.status is None
    assert caught.value.retryable


async def test_unreachable_server_is_an_error() -> None:
    async with HumaRestClient("http://127.0.0.1:9", API_KEY, timeout=2) as rest:
        with pytest.raises(HumaAPIError) as caught:
            await rest.get_agent("a1")
    assert caught.value.status is None
    assert API_KEY not in str(caught.value)


async def test_non_json_answer_is_an_error(fake_huma: FakeHuma) -> None:
    fake_huma.fail_rest(200, "<html>proxy</html>")
    async with HumaRestClient(fake_huma.url, API_KEY) as rest:
        with pytest.raises(HumaAPIError) as caught:
            await rest.create_agent("Discord-S", {"className": "Nova"})
    assert caught.value.status == 200
    assert "proxy" in caught.value.body


async def test_requests_beyond_the_concurrency_limit_wait_their_turn() -> None:
    in_flight = most = created = 0

    async def handler(_request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most, created
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        created += 1
        return httpx.Response(201, json={"id": f"agent-{created}"})

    transport = httpx.MockTransport(handler)
    async with HumaRestClient(
        "http://huma.test", API_KEY, max_concurrency=4, transport=transport
    ) as rest:
        agents = await asyncio.gather(*(rest.create_agent(f"A{i}", {}) for i in range(40)))
    assert len({a.id for a in agents}) == 40
    assert most == 4


async def test_a_burst_of_creations_is_not_timed_out_by_its_own_queue(
    fake_huma: FakeHuma,
) -> None:
    """Only the time a request is on the wire counts against its timeout, not its wait."""
    fake_huma.rest_delay = 0.05
    async with HumaRestClient(fake_huma.url, API_KEY, timeout=1.0, max_concurrency=8) as rest:
        agents = await asyncio.gather(*(rest.create_agent(f"A{i}", {"c": 1}) for i in range(200)))
    assert len(agents) == 200 == len(fake_huma.created)
