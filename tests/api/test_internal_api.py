"""The internal API: ``tokens`` (shape, ETag/304, long-poll, deltas, shards, query count),
``stats``, ``agent-actions`` and ``worker-status``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select

from neonrain.accounts.models import User
from neonrain.contract import ContractError, TokensAnswer, agent_config
from neonrain.db.base import utcnow
from neonrain.servers import service as servers_service
from neonrain.servers.models import AgentAction, Server, UserServerConfig
from neonrain.sharding import shard_of
from neonrain.websites.models import ServerWebsite, WebsiteScrape
from tests.api.conftest import (
    BOT_TOKEN,
    INTERNAL,
    OTHER_BOT_TOKEN,
    World,
    add_scrape,
    add_server,
    add_website,
    connect,
    post_stats,
    state_of,
)
from tests.conftest import ApiUser, assert_error, register_user

TOKENS = "/api/discord/tokens"


async def get_tokens(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await http.get(TOKENS, params=params, headers=INTERNAL)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def seed_accounts(app: FastAPI, count: int, *, servers: int = 3, websites: int = 2) -> None:
    """``count`` accounts with tokens, each with ``servers`` configurations of ``websites``
    scraped websites (written directly: registering through the API is slow by design)."""
    state = state_of(app)
    async with state.sessionmaker() as session:
        for index in range(count):
            user = User(
                email=f"seed{index}@example.com",
                password_hash="x",
                discord_token=state.cipher.encrypt(f"seed-token-{index}"),
                discord_token_status="valid",
                config_generation=1,
            )
            session.add(user)
            await session.flush()
            for number in range(servers):
                server = Server(
                    guild_id=f"9{index:06d}{number:03d}", guild_name=f"G{index}-{number}"
                )
                session.add(server)
                await session.flush()
                config = UserServerConfig(user_id=user.id, server_id=server.id, bot_active=True)
                session.add(config)
                await session.flush()
                for site in range(websites):
                    website = ServerWebsite(
                        user_server_config_id=config.id, url=f"https://e{site}.example/"
                    )
                    session.add(website)
                    await session.flush()
                    session.add(
                        WebsiteScrape(website_id=website.id, markdown_content="# x",
                                      content_length=3)
                    )  # fmt: skip
        await session.commit()


@contextmanager
def count_queries(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = state_of(app).engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# ------------------------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", TOKENS),
        ("POST", "/api/discord/stats"),
        ("POST", "/api/discord/agent-actions"),
        ("POST", "/api/discord/worker-status"),
    ],
)
async def test_internal_api_needs_the_key(
    client: httpx.AsyncClient, user: ApiUser, method: str, path: str
) -> None:
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, user.headers):
        response = await client.request(method, path, headers=headers, json={})
        assert_error(response, 401)


async def test_internal_routes_are_not_in_the_public_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    assert "/api/servers" in paths and "/api/discord/status" in paths
    for path in (TOKENS, "/api/discord/stats", "/api/discord/agent-actions",
                 "/api/discord/worker-status"):  # fmt: skip
        assert path not in paths


# ------------------------------------------------------------------------------------ tokens


async def test_tokens_has_the_seed_shape(
    app: FastAPI,
    client: httpx.AsyncClient,
    connected: ApiUser,
    other_user: ApiUser,
    world: World,
) -> None:
    third = await register_user(client, "nobody@example.com")  # no token: absent
    active = await add_server(client, connected, world.guild1)
    inactive = await add_server(client, connected, world.guild2)
    await client.put(
        f"/api/servers/{active['serverId']}",
        json={"botActive": True, "botName": "Helper", "personality": "p", "rules": "r",
              "information": "i"},
        headers=connected.headers,
    )  # fmt: skip
    site = await add_website(client, connected, active["serverId"], "https://example.com/", "Ex")
    never = await add_website(client, connected, active["serverId"], "https://never.example/")
    old = utcnow() - timedelta(hours=3)
    await add_scrape(app, site["id"], "# Old good", at=old)
    await add_scrape(app, site["id"], "# New good", at=old + timedelta(hours=1))
    await add_scrape(app, site["id"], "", error="boom", at=old + timedelta(hours=2))
    await add_scrape(app, never["id"], "", error="boom")

    response = await client.get(TOKENS, headers=INTERNAL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"]
    body = response.json()
    assert set(body) == {"tokens", "generation", "removedUserIds"}
    assert isinstance(body["generation"], int)
    assert body["removedUserIds"] == []
    assert [t["userId"] for t in body["tokens"]] == [connected.id]
    assert third.id not in response.text and other_user.id not in response.text
    (entry,) = body["tokens"]
    assert set(entry) == {"discordToken", "userId", "openai", "servers"}
    assert entry["discordToken"] == BOT_TOKEN
    assert entry["openai"] is None  # neither an engine of its own nor the install's
    by_guild = {s["guildId"]: s for s in entry["servers"]}
    assert by_guild[str(world.guild1.id)] == {
        "serverId": active["serverId"],
        "guildId": str(world.guild1.id),
        "guildName": "Gaming",
        "botActive": True,
        "botName": "Helper",
        "personality": "p",
        "rules": "r",
        "information": "i",
        # Where and when the bot speaks (behaviour.md) and its engine, at their defaults.
        "channelMode": "all",
        "channelIds": [],
        "replyMode": "auto",
        "maxRepliesPerHour": 0,
        "minSecondsBetweenReplies": 0,
        "engine": "huma",
        "websites": [
            {
                "url": "https://example.com/",
                "name": "Ex",
                "markdown": "# New good",
                "scrapedAt": by_guild[str(world.guild1.id)]["websites"][0]["scrapedAt"],
            }
        ],
    }
    assert by_guild[str(world.guild1.id)]["websites"][0]["scrapedAt"].endswith("Z")
    assert by_guild[str(world.guild2.id)]["botActive"] is False
    assert by_guild[str(world.guild2.id)]["serverId"] == inactive["serverId"]
    assert by_guild[str(world.guild2.id)]["websites"] == []


async def test_tokens_answer_is_the_contract_and_the_chat_reads_the_same_entry(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    """The worker parses the answer with the contract; the web chat's ``server_entry`` of the same
    server is the same entry, so both build the agent's configuration from identical input."""
    server = await add_server(client, connected, world.guild1)
    await client.put(
        f"/api/servers/{server['serverId']}",
        json={"botActive": True, "botName": "Nova", "personality": "calm", "rules": "no spam",
              "information": "We ship on Fridays."},
        headers=connected.headers,
    )  # fmt: skip
    site = await add_website(client, connected, server["serverId"], "https://example.com/", "Ex")
    await add_scrape(app, site["id"], "# Docs")

    answer = TokensAnswer.parse((await client.get(TOKENS, headers=INTERNAL)).content)
    (token_entry,) = answer.tokens
    (from_tokens,) = token_entry.servers
    async with state_of(app).sessionmaker() as session:
        from_chat = await servers_service.server_entry(session, connected.id, server["serverId"])
    assert from_chat == from_tokens
    assert from_tokens.agent == agent_config(from_tokens)
    assert from_tokens.agent.personality == "calm"
    assert [(w.name, w.content) for w in from_tokens.agent.websites] == [("Ex", "# Docs")]
    assert token_entry.active_guilds == {str(world.guild1.id): from_tokens}
    assert BOT_TOKEN not in repr(token_entry)


def test_a_malformed_answer_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match=r"tokens\.0\.discordToken"):
        TokensAnswer.parse(b'{"generation": 1, "tokens": [{"userId": "u"}]}')
    with pytest.raises(ContractError, match="generation"):
        TokensAnswer.parse(b'{"tokens": []}')


async def test_tokens_304_when_unchanged(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    first = await client.get(TOKENS, headers=INTERNAL)
    etag = first.headers["etag"]
    again = await client.get(TOKENS, headers={**INTERNAL, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = await client.get(TOKENS, headers={**INTERNAL, "If-None-Match": f'W/{etag}, "x"'})
    assert weak.status_code == 304
    await add_server(client, connected, world.guild1)
    changed = await client.get(TOKENS, headers={**INTERNAL, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    # A stats report is not a configuration change.
    stat = {"userId": connected.id, "guildId": str(world.guild1.id),
            "event": "message_received", "count": 1, "at": "2026-01-01T00:00:00Z"}  # fmt: skip
    await post_stats(client, [stat])
    after_stats = await client.get(
        TOKENS, headers={**INTERNAL, "If-None-Match": changed.headers["etag"]}
    )
    assert after_stats.status_code == 304


async def test_a_write_wakes_a_waiting_request(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    etag = (await client.get(TOKENS, headers=INTERNAL)).headers["etag"]

    started = time.monotonic()
    waiting = asyncio.create_task(
        client.get(TOKENS, params={"wait": 20}, headers={**INTERNAL, "If-None-Match": etag})
    )
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await client.put(
        f"/api/servers/{server['serverId']}", json={"botActive": True}, headers=connected.headers
    )
    response = await asyncio.wait_for(waiting, 5)
    assert response.status_code == 200
    assert time.monotonic() - started < 5
    assert response.json()["tokens"][0]["servers"][0]["botActive"] is True


async def test_a_waiting_request_times_out_with_304(
    client: httpx.AsyncClient, connected: ApiUser
) -> None:
    etag = (await client.get(TOKENS, headers=INTERNAL)).headers["etag"]
    started = time.monotonic()
    response = await client.get(
        TOKENS, params={"wait": 0.5}, headers={**INTERNAL, "If-None-Match": etag}
    )
    assert response.status_code == 304
    assert 0.4 < time.monotonic() - started < 5


async def test_since_returns_only_what_changed(
    app: FastAPI,
    client: httpx.AsyncClient,
    connected: ApiUser,
    other_user: ApiUser,
    world: World,
) -> None:
    await connect(client, other_user, OTHER_BOT_TOKEN)
    mine = await add_server(client, connected, world.guild1)
    await add_server(client, other_user, world.guild2)
    full = await get_tokens(client)
    assert {t["userId"] for t in full["tokens"]} == {connected.id, other_user.id}
    generation = full["generation"]

    nothing = await get_tokens(client, since=generation)
    assert nothing["tokens"] == [] and nothing["removedUserIds"] == []

    await client.put(
        f"/api/servers/{mine['serverId']}", json={"rules": "new"}, headers=connected.headers
    )
    delta = await get_tokens(client, since=generation)
    assert [t["userId"] for t in delta["tokens"]] == [connected.id]
    assert delta["tokens"][0]["servers"][0]["rules"] == "new"
    assert delta["generation"] > generation

    generation = delta["generation"]
    await client.post("/api/discord/disconnect", headers=other_user.headers)
    delta = await get_tokens(client, since=generation)
    assert delta["tokens"] == []
    assert delta["removedUserIds"] == [other_user.id]

    generation = delta["generation"]
    response = await client.request(
        "DELETE", "/api/auth/me", json={"confirmEmail": connected.email}, headers=connected.headers
    )
    assert response.status_code == 204, response.text
    delta = await get_tokens(client, since=generation)
    assert delta["removedUserIds"] == [connected.id]
    assert (await get_tokens(client))["tokens"] == []

    # A long-poll with since waits for the next change.
    started = time.monotonic()
    response = await client.get(
        TOKENS, params={"since": delta["generation"], "wait": 0.3}, headers=INTERNAL
    )
    assert response.status_code == 200 and response.json()["tokens"] == []
    assert time.monotonic() - started >= 0.25


async def test_shards_partition_the_tokens(app: FastAPI, client: httpx.AsyncClient) -> None:
    await seed_accounts(app, 12, servers=1, websites=1)
    full = await get_tokens(client)
    everyone = {t["userId"] for t in full["tokens"]}
    assert len(everyone) == 12
    seen: set[str] = set()
    for shard in range(3):
        response = await client.get(TOKENS, params={"shard": shard, "shards": 3}, headers=INTERNAL)
        assert response.status_code == 200
        ids = {t["userId"] for t in response.json()["tokens"]}
        assert all(shard_of(user_id, 3) == shard for user_id in ids)
        assert not ids & seen
        seen |= ids
        # Each shard's ETag is its own.
        assert (
            response.headers["etag"] != (await client.get(TOKENS, headers=INTERNAL)).headers["etag"]
        )
        for entry in response.json()["tokens"]:
            assert len(entry["servers"]) == 1 and len(entry["servers"][0]["websites"]) == 1
    assert seen == everyone
    one = await client.get(TOKENS, params={"shard": 0, "shards": 1}, headers=INTERNAL)
    assert {t["userId"] for t in one.json()["tokens"]} == everyone


@pytest.mark.parametrize(
    "params",
    [
        {"shard": 0},
        {"shards": 2},
        {"shard": 2, "shards": 2},
        {"shard": -1, "shards": 2},
        {"shard": 0, "shards": 0},
        {"wait": 31},
        {"wait": -1},
        {"wait": "x"},
        {"since": -1},
        {"since": "x"},
    ],
)
async def test_tokens_bad_parameters_are_400(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get(TOKENS, params=params, headers=INTERNAL)
    assert_error(response, 400, "VALIDATION_ERROR")


async def test_tokens_query_count_does_not_grow_with_users(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await seed_accounts(app, 2)
    first = (await get_tokens(client))["tokens"][0]["userId"]
    sharded = {"shard": shard_of(first, 2), "shards": 2}  # a shard that is not empty
    counts = {}
    for params in ({}, sharded, {"since": 0}):
        with count_queries(app) as small:
            assert len((await get_tokens(client, **params))["tokens"]) >= (0 if params else 2)
        counts[str(params)] = len(small)
    await seed_accounts_more(app)
    for params in ({}, sharded, {"since": 0}):
        with count_queries(app) as big:
            body = await get_tokens(client, **params)
        if params != sharded:
            assert len(body["tokens"]) == 22
            assert all(len(t["servers"]) == 3 for t in body["tokens"])
            assert all(len(s["websites"]) == 2 for t in body["tokens"] for s in t["servers"])
        assert len(big) == counts[str(params)], (params, big)
    assert counts["{}"] <= 4, counts
    print("tokens query counts", counts)
    # A 304 reads the generation only.
    etag = (await client.get(TOKENS, headers=INTERNAL)).headers["etag"]
    with count_queries(app) as unchanged:
        response = await client.get(TOKENS, headers={**INTERNAL, "If-None-Match": etag})
    assert response.status_code == 304
    assert len(unchanged) == 1


async def test_streamed_answer_puts_every_page_under_its_own_server(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is written in many small chunks while the pages are read from the database;
    each page must still land in its own configuration, also around a left-out account."""
    from neonrain.internal_api import service

    monkeypatch.setattr(service, "CHUNK_BYTES", 16)
    await seed_accounts(app, 3, servers=2, websites=2)
    state = state_of(app)
    async with state.sessionmaker() as session:
        rows = (
            await session.execute(
                select(WebsiteScrape, ServerWebsite.url, Server.guild_id)
                .join(ServerWebsite, ServerWebsite.id == WebsiteScrape.website_id)
                .join(UserServerConfig, UserServerConfig.id == ServerWebsite.user_server_config_id)
                .join(Server, Server.id == UserServerConfig.server_id)
            )
        ).all()
        for scrape, url, guild_id in rows:
            scrape.markdown_content = f"# page {url} of {guild_id}"
        users = (await session.scalars(select(User).order_by(User.id))).all()
        users[1].discord_token = "not a ciphertext of this key"  # left out of the answer
        await session.commit()

    answer = await service.tokens(
        state.sessionmaker,
        state.notifier,
        state.cipher,
        service.TokensRequest(),
        if_none_match=None,
        wait=0,
    )
    assert answer.body is not None
    chunks = [chunk async for chunk in answer.body]
    assert len(chunks) > 5
    body = json.loads(b"".join(chunks))
    assert body == await get_tokens(client)  # the route sends the same
    assert body["removedUserIds"] == [users[1].id]
    assert [t["userId"] for t in body["tokens"]] == [users[0].id, users[2].id]
    for token in body["tokens"]:
        assert len(token["servers"]) == 2
        for server in token["servers"]:
            assert sorted(w["markdown"] for w in server["websites"]) == [
                f"# page https://e{site}.example/ of {server['guildId']}" for site in range(2)
            ]


async def seed_accounts_more(app: FastAPI) -> None:
    state = state_of(app)
    async with state.sessionmaker() as session:
        existing = len((await session.scalars(select(User.id))).all())
    # Distinct e-mails and guilds from the first batch.
    async with state.sessionmaker() as session:
        for index in range(existing, existing + 20):
            user = User(
                email=f"more{index}@example.com",
                password_hash="x",
                discord_token=state.cipher.encrypt(f"more-token-{index}"),
                config_generation=1,
            )
            session.add(user)
            await session.flush()
            for number in range(3):
                server = Server(guild_id=f"8{index:06d}{number:03d}", guild_name="G")
                session.add(server)
                await session.flush()
                config = UserServerConfig(user_id=user.id, server_id=server.id)
                session.add(config)
                await session.flush()
                for site in range(2):
                    website = ServerWebsite(
                        user_server_config_id=config.id, url=f"https://m{site}.example/"
                    )
                    session.add(website)
                    await session.flush()
                    session.add(
                        WebsiteScrape(website_id=website.id, markdown_content="# m",
                                      content_length=3)
                    )  # fmt: skip
        await session.commit()


# ------------------------------------------------------------------------------------ stats


async def test_stats_are_added_in_sql_and_unknown_events_ignored(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    guild = str(world.guild1.id)
    result = await post_stats(
        client,
        [
            {"userId": connected.id, "guildId": guild, "event": "message_received", "count": 2,
             "at": "2026-01-09T10:00:00Z"},
            {"userId": connected.id, "guildId": guild, "event": "message_received", "count": 3,
             "at": "2026-01-09T09:00:00Z"},
            {"userId": connected.id, "guildId": guild, "event": "message_sent", "count": 1,
             "at": "2026-01-09T10:30:00+02:00"},
            {"userId": connected.id, "guildId": str(world.guild2.id), "event": "message_sent",
             "count": 1, "at": "2026-01-09T10:00:00Z"},
            {"userId": "someone-else", "guildId": guild, "event": "message_sent", "count": 1,
             "at": "2026-01-09T10:00:00Z"},
        ],
    )  # fmt: skip
    assert result == {"applied": 3, "ignored": 2}
    detail = (
        await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    ).json()
    assert detail["messagesReceivedCount"] == 5
    assert detail["messagesSentCount"] == 1
    assert detail["lastMessageReceivedAt"] == "2026-01-09T10:00:00.000Z"
    assert detail["lastMessageSentAt"] == "2026-01-09T08:30:00.000Z"
    # An older event does not move last-at back; counters keep adding.
    await post_stats(
        client,
        [{"userId": connected.id, "guildId": guild, "event": "message_received", "count": 1,
          "at": "2025-12-31T00:00:00Z"}],
    )  # fmt: skip
    detail = (
        await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    ).json()
    assert detail["messagesReceivedCount"] == 6
    assert detail["lastMessageReceivedAt"] == "2026-01-09T10:00:00.000Z"
    empty = await post_stats(client, [])
    assert empty == {"applied": 0, "ignored": 0}


async def test_concurrent_stats_reports_are_not_lost(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    event_ = {"userId": connected.id, "guildId": str(world.guild1.id),
              "event": "message_received", "count": 1, "at": utcnow().isoformat()}  # fmt: skip
    await asyncio.gather(*(post_stats(client, [event_, event_]) for _ in range(10)))
    detail = (
        await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    ).json()
    assert detail["messagesReceivedCount"] == 20
    days = (
        await client.get(f"/api/servers/{server['serverId']}/stats", headers=connected.headers)
    ).json()["days"]
    assert days[-1]["messagesReceived"] == 20


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"events": "x"},
        {"events": [{"userId": "u", "guildId": "1", "event": "other", "count": 1,
                     "at": "2026-01-01T00:00:00Z"}]},
        {"events": [{"userId": "u", "guildId": "1", "event": "message_sent", "count": 0,
                     "at": "2026-01-01T00:00:00Z"}]},
        {"events": [{"userId": "u", "guildId": "1", "event": "message_sent", "count": 1,
                     "at": "yesterday"}]},
        {"events": [{"userId": "u", "guildId": "x", "event": "message_sent", "count": 1,
                     "at": "2026-01-01T00:00:00Z"}]},
        {"events": [], "extra": 1},
    ],
)  # fmt: skip
async def test_stats_bad_input_is_400(client: httpx.AsyncClient, payload: Any) -> None:
    response = await client.post("/api/discord/stats", json=payload, headers=INTERNAL)
    assert_error(response, 400, "VALIDATION_ERROR")


# ------------------------------------------------------------------------------------ actions


async def test_agent_actions(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    await add_server(client, connected, world.guild1)
    payload: dict[str, Any] = {
        "userId": connected.id,
        "guildId": str(world.guild1.id),
        "channelId": "1300000000000000001",
        "channelName": "general",
        "agentMessage": "Hello!",
        "triggerDescription": "User ana in #general: hi",
        "messageHistory": {
            "preceding": [
                {"author": f"u{i}", "authorId": "1", "content": f"m{i}",
                 "timestamp": "2026-01-09T10:00:00Z"}
                for i in range(12)
            ],
            "agentResponse": {"content": "Hello!", "timestamp": "2026-01-09T10:00:01Z"},
        },
    }  # fmt: skip
    response = await client.post("/api/discord/agent-actions", json=payload, headers=INTERNAL)
    assert response.status_code == 201, response.text
    async with state_of(app).sessionmaker() as session:
        action = await session.get(AgentAction, response.json()["id"])
        assert action is not None
        assert len(action.message_history["preceding"]) == 10
        assert action.message_history["preceding"][-1]["content"] == "m11"
        assert action.message_history["agentResponse"]["content"] == "Hello!"
    unknown = await client.post(
        "/api/discord/agent-actions",
        json={**payload, "guildId": str(world.guild3.id)},
        headers=INTERNAL,
    )
    assert_error(unknown, 404, "SERVER_NOT_FOUND")
    for broken in ({**payload, "agentMessage": 5}, {**payload, "extra": 1},
                   {k: v for k, v in payload.items() if k != "channelId"}):  # fmt: skip
        response = await client.post("/api/discord/agent-actions", json=broken, headers=INTERNAL)
        assert_error(response, 400, "VALIDATION_ERROR")


# ------------------------------------------------------------------------------------ status


async def test_worker_status_ignores_unknown_users_and_refuses_bad_states(
    client: httpx.AsyncClient, connected: ApiUser
) -> None:
    response = await client.post(
        "/api/discord/worker-status",
        json={"tokens": [{"userId": "unknown", "state": "online", "detail": "", "guildIds": []}]},
        headers=INTERNAL,
    )
    assert response.status_code == 204
    response = await client.post(
        "/api/discord/worker-status",
        json={"tokens": [{"userId": connected.id, "state": "dancing"}]},
        headers=INTERNAL,
    )
    assert_error(response, 400, "VALIDATION_ERROR")
