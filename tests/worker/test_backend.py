"""The worker's client of the internal API parses answers with the contract and fails loudly."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from neonrain.worker.backend import BackendClient, BackendError


def answering(body: bytes, status: int = 200) -> httpx.MockTransport:
    """A web app that answers every request with ``body``."""

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-API-Key"] == "key"
        return httpx.Response(
            status, content=body, headers={"ETag": '"7"', "Content-Type": "application/json"}
        )

    return httpx.MockTransport(handle)


async def test_a_good_answer_is_parsed() -> None:
    body = {
        "generation": 7,
        "removedUserIds": ["gone"],
        "tokens": [
            {
                "discordToken": "t0k3n",
                "userId": "u1",
                "servers": [
                    {
                        "serverId": "s1", "guildId": "42", "guildName": "G", "botActive": True,
                        "botName": "Nova", "personality": "", "rules": "", "information": "",
                        "websites": [{"url": "https://x/", "name": None, "markdown": "# x",
                                      "scrapedAt": "2026-01-01T00:00:00Z"}],
                        "aFieldOfANewerWebApp": 1,
                    }
                ],
            }
        ],
    }  # fmt: skip
    client = BackendClient("http://web", "key", transport=answering(json.dumps(body).encode()))
    try:
        read = await client.fetch_tokens(etag=None, since=None, wait=0, shard=None)
    finally:
        await client.aclose()
    assert read.etag == '"7"' and read.answer is not None
    assert read.answer.removed_user_ids == ("gone",)
    (server,) = read.answer.tokens[0].servers
    assert server.agent.websites[0].name == "https://x/"  # no name: the URL
    assert read.answer.tokens[0].active_guilds == {"42": server}


@pytest.mark.parametrize(
    "body",
    [
        b'{"generation": 1, "tokens": [{"userId": "u"}]}',
        b'{"generation": "soon", "tokens": []}',
        b"<html>proxy error</html>",
    ],
)
async def test_a_malformed_answer_is_an_error_logged_loudly(
    body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    client = BackendClient("http://web", "key", transport=answering(body))
    try:
        with (
            caplog.at_level(logging.ERROR, "neonrain.worker.backend"),
            pytest.raises(BackendError, match="does not match the contract"),
        ):
            await client.fetch_tokens(etag=None, since=None, wait=0, shard=None)
    finally:
        await client.aclose()
    assert any(
        r.levelno == logging.ERROR and "keeping the last configuration" in r.getMessage()
        for r in caplog.records
    )
