"""``/api/engine`` and the engine of each server configuration, against the fake model server:
the account's own OpenAI-compatible endpoint (SSRF rules, set / read / test / remove, the key
encrypted and never shown), ``engine`` on server configurations, ``openai`` in the worker's tokens
answer and ``engines`` in the dashboard status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from neonrain.app import create_app
from neonrain.engines import service as engines_service
from neonrain.engines.models import EngineCredential
from neonrain.errors import ApiError
from tests.api.conftest import (
    INTERNAL,
    World,
    add_server,
    connect,
    generation_of,
    state_of,
)
from tests.api.test_internal_api import count_queries
from tests.conftest import ApiUser, api_client, assert_error, make_settings, register_user
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_openai import FakeOpenAI
from tests.webapp import free_port

#: The account's key: distinctive, so that any leak is found by a plain substring search.
KEY = "sk-acct-Qm7ZtK2vLx9wPe4nRb6Hy3Jd"
MODEL = "acct-model"
INSTALL_URL = "http://127.0.0.1:9/v1"
INSTALL_KEY = "sk-install-Hc5Wq8Nf1Rz4"
ENGINE = "/api/engine"
OPENAI = "/api/engine/openai"
TEST = "/api/engine/openai/test"
TOKENS = "/api/discord/tokens"


@dataclass
class Env:
    app: FastAPI
    http: httpx.AsyncClient
    fake: FakeOpenAI

    async def user(self, email: str = "ada@example.com") -> ApiUser:
        return await register_user(self.http, email)

    async def put(self, user: ApiUser, body: dict[str, Any]) -> httpx.Response:
        return await self.http.put(OPENAI, json=body, headers=user.headers)

    async def set_engine(self, user: ApiUser, key: str | None = KEY, **extra: Any) -> Any:
        body: dict[str, Any] = {"baseUrl": self.fake.base_url, "model": MODEL, **extra}
        if key is not None:
            body["apiKey"] = key
        response = await self.put(user, body)
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, user: ApiUser) -> Any:
        response = await self.http.get(ENGINE, headers=user.headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def status(self, user: ApiUser) -> Any:
        response = await self.http.get("/api/discord/status", headers=user.headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def credential(self, user: ApiUser) -> EngineCredential | None:
        async with state_of(self.app).sessionmaker() as session:
            row: EngineCredential | None = await session.scalar(
                select(EngineCredential).where(EngineCredential.user_id == user.id)
            )
            return row


@contextlib.asynccontextmanager
async def engine_env(
    database_url: str, tmp_path: Path, discord: FakeDiscord, **env: Any
) -> AsyncIterator[Env]:
    """The app with ``env`` settings (private addresses allowed unless said otherwise, as the
    fake model server listens on loopback) and a fake model server that wants ``KEY``."""
    values: dict[str, Any] = {
        "DISCORD_API_URL": discord.api_url,
        "NEONRAIN_ALLOW_PRIVATE_URLS": "true",
    }
    values.update(env)
    app = create_app(make_settings(database_url, tmp_path, **values))
    async with (
        FakeOpenAI(api_key=KEY) as fake,
        app.router.lifespan_context(app),
        api_client(app) as http,
    ):
        yield Env(app, http, fake)


@pytest.fixture
async def env(database_url: str, tmp_path: Path, fake_discord: FakeDiscord) -> AsyncIterator[Env]:
    async with engine_env(database_url, tmp_path, fake_discord) as environment:
        yield environment


# ------------------------------------------------------------------------------- SSRF rules


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:{port}/v1",
        "http://localhost:{port}/v1",  # a name that resolves to loopback
        "http://10.1.2.3:8000/v1",
        "http://192.168.1.20:11434/v1",
        "http://169.254.169.254/latest",  # cloud metadata
        "http://[::1]:{port}/v1",
        "http://[::ffff:127.0.0.1]:{port}/v1",
        "http://0.0.0.0:{port}/v1",
        "http://100.64.0.1/v1",
        "https://api.example.com:22/v1",  # a port outside 80, 443, 1024–65535
    ],
)
async def test_an_accounts_base_url_on_a_private_address_is_refused(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord, base_url: str
) -> None:
    async with engine_env(
        database_url, tmp_path, fake_discord, NEONRAIN_ALLOW_PRIVATE_URLS="false"
    ) as env:
        ada = await env.user()
        url = base_url.format(port=env.fake.port)
        response = await env.put(ada, {"baseUrl": url, "model": MODEL, "apiKey": KEY})
        body = assert_error(response, 400, "INVALID_URL")
        assert "refused" in body["error"]
        assert KEY not in response.text
        assert (await env.get(ada))["openai"]["available"] is False
        assert await env.credential(ada) is None
        assert env.fake.requests == []  # nothing was sent to the address


async def test_private_addresses_are_accepted_with_allow_private_urls(env: Env) -> None:
    ada = await env.user()
    body = await env.set_engine(ada, baseUrl=f"http://127.0.0.1:{env.fake.port}/v1")
    assert body["openai"]["baseUrl"] == f"http://127.0.0.1:{env.fake.port}/v1"
    response = await env.http.post(TEST, headers=ada.headers)
    assert response.status_code == 200, response.text


async def test_a_saved_base_url_is_checked_again_before_a_test(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord
) -> None:
    """An endpoint saved while private addresses were allowed (or whose name now resolves to
    one) is refused when it is called, not only when it is saved."""
    async with engine_env(database_url, tmp_path, fake_discord) as env:
        ada = await env.user()
        await env.set_engine(ada)
    async with engine_env(
        database_url, tmp_path, fake_discord, NEONRAIN_ALLOW_PRIVATE_URLS="false"
    ) as env:
        body = assert_error(await env.http.post(TEST, headers=ada.headers), 400, "INVALID_URL")
        assert "loopback" in body["error"]
        assert env.fake.requests == []


@pytest.mark.parametrize(
    "base_url",
    ["ftp://models.example/v1", "not a url", "http://", "https://user:pass@api.example.com/v1"],
)
async def test_a_base_url_that_is_not_http_is_invalid(env: Env, base_url: str) -> None:
    ada = await env.user()
    response = await env.put(ada, {"baseUrl": base_url, "model": MODEL})
    assert_error(response, 400, "INVALID_URL")


# ---------------------------------------------------------------------------- round trips


async def test_set_read_test_change_and_remove_the_engine(env: Env) -> None:
    ada = await env.user()
    assert await env.get(ada) == {
        "huma": {"available": False},
        "openai": {
            "available": False, "source": None, "baseUrl": None, "model": None,
            "hasApiKey": False,
        },
    }  # fmt: skip
    assert_error(await env.http.post(TEST, headers=ada.headers), 409, "ENGINE_NOT_CONFIGURED")

    before = await generation_of(env.app)
    response = await env.put(
        ada, {"baseUrl": f"  {env.fake.base_url}  ", "model": f" {MODEL} ", "apiKey": KEY}
    )
    assert response.status_code == 200, response.text
    assert KEY not in response.text
    expected = {
        "available": True, "source": "account", "baseUrl": env.fake.base_url, "model": MODEL,
        "hasApiKey": True,
    }  # fmt: skip
    assert response.json()["openai"] == expected
    assert (await env.get(ada))["openai"] == expected
    assert await generation_of(env.app) > before
    row = await env.credential(ada)
    assert row is not None and row.api_key is not None
    assert KEY not in row.api_key  # encrypted at rest, like Discord tokens
    assert state_of(env.app).cipher.decrypt(row.api_key) == KEY
    assert row.state == "unchecked"

    response = await env.http.post(TEST, headers=ada.headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is True and result["model"] == MODEL
    assert isinstance(result["latencyMs"], int) and result["latencyMs"] >= 1
    request = env.fake.chat_requests[-1]
    assert request.bearer == KEY and request.body["model"] == MODEL
    assert "tools" not in request.body  # one minimal completion
    row = await env.credential(ada)
    assert row is not None and row.state == "ok"
    assert (await env.status(ada))["engines"]["openai"] == {
        "available": True, "state": "ok", "detail": "",
    }  # fmt: skip

    # Omitting the key keeps it; a new model resets the state.
    generation = await generation_of(env.app)
    response = await env.put(ada, {"baseUrl": env.fake.base_url, "model": "other-model"})
    assert response.status_code == 200 and response.json()["openai"]["hasApiKey"] is True
    assert await generation_of(env.app) > generation
    row = await env.credential(ada)
    assert row is not None and row.state == "unchecked" and row.model == "other-model"
    assert (await env.http.post(TEST, headers=ada.headers)).status_code == 200
    assert env.fake.chat_requests[-1].bearer == KEY

    # The same values again change nothing (no generation, the state stays).
    generation = await generation_of(env.app)
    await env.set_engine(ada, key=KEY, model="other-model")
    assert await generation_of(env.app) == generation
    row = await env.credential(ada)
    assert row is not None and row.state == "ok"

    # null removes the key: the provider (which wants one) then refuses the test.
    response = await env.put(ada, {"baseUrl": env.fake.base_url, "model": MODEL, "apiKey": None})
    assert response.status_code == 200 and response.json()["openai"]["hasApiKey"] is False
    row = await env.credential(ada)
    assert row is not None and row.api_key is None
    body = assert_error(await env.http.post(TEST, headers=ada.headers), 502, "ENGINE_UNAVAILABLE")
    assert "Incorrect API key provided: no-api-key" in body["error"]
    assert env.fake.chat_requests[-1].bearer == "no-api-key"  # never the process's own key
    # An empty key is no key too.
    await env.set_engine(ada, key="")
    assert (await env.get(ada))["openai"]["hasApiKey"] is False

    generation = await generation_of(env.app)
    response = await env.http.delete(OPENAI, headers=ada.headers)
    assert response.status_code == 204
    assert await generation_of(env.app) > generation
    assert (await env.get(ada))["openai"]["available"] is False
    assert await env.credential(ada) is None
    assert (await env.http.delete(OPENAI, headers=ada.headers)).status_code == 204
    assert_error(await env.http.post(TEST, headers=ada.headers), 409, "ENGINE_NOT_CONFIGURED")


async def test_a_refused_key_is_502_with_the_providers_message_without_the_key(env: Env) -> None:
    ada = await env.user()
    wrong = "sk-wrong-Vb3Kx8Lq2Zn5Tr7Yw1"
    await env.set_engine(ada, key=wrong)
    response = await env.http.post(TEST, headers=ada.headers)
    body = assert_error(response, 502, "ENGINE_UNAVAILABLE")
    # The fake echoes the key it was given, as some providers do.
    assert "Incorrect API key provided: ***" in body["error"]
    assert wrong not in response.text
    assert body["reason"] == "unauthorized" and body["providerStatus"] == 401
    engines = (await env.status(ada))["engines"]
    assert engines["openai"]["state"] == "error"
    assert "Incorrect API key provided" in engines["openai"]["detail"]
    assert wrong not in str(engines)
    row = await env.credential(ada)
    assert row is not None and row.state == "error" and wrong not in row.state_detail

    env.fake.fail(500, times=1)
    await env.set_engine(ada)  # the right key: the state starts over
    assert (await env.status(ada))["engines"]["openai"]["state"] is None
    body = assert_error(await env.http.post(TEST, headers=ada.headers), 502, "ENGINE_UNAVAILABLE")
    assert "server had an error" in body["error"]  # a test is one attempt, not retried
    assert (await env.http.post(TEST, headers=ada.headers)).status_code == 200


async def test_a_model_that_hangs_or_cannot_be_reached(env: Env) -> None:
    ada = await env.user()
    await env.set_engine(ada)
    state = state_of(env.app)
    env.fake.hang()
    async with state.sessionmaker() as session:
        with pytest.raises(ApiError) as caught:
            await engines_service.test_openai(
                session, state.cipher, state.install_engines, ada.id, state.model_http,
                timeout=0.3,
            )  # fmt: skip
    assert caught.value.status == 502 and caught.value.code == "ENGINE_UNAVAILABLE"
    assert "did not answer within 0.3 s" in caught.value.message
    await env.fake.wait_until(lambda: env.fake.chat_requests[-1].abandoned.is_set())

    await env.set_engine(ada, baseUrl=f"http://127.0.0.1:{free_port()}/v1")
    body = assert_error(await env.http.post(TEST, headers=ada.headers), 502, "ENGINE_UNAVAILABLE")
    assert "cannot reach the model server" in body["error"]


async def test_the_install_engine_is_shown_but_never_its_key(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord
) -> None:
    async with engine_env(
        database_url, tmp_path, fake_discord, HUMA_API_KEY="huma-key",
        NEONRAIN_OPENAI_BASE_URL="http://127.0.0.1:11434/v1", NEONRAIN_OPENAI_MODEL="install-m",
    ) as env:  # fmt: skip
        ada = await env.user()
        answer = await env.get(ada)
        assert answer == {
            "huma": {"available": True},
            "openai": {
                "available": True, "source": "install", "baseUrl": "http://127.0.0.1:11434/v1",
                "model": "install-m", "hasApiKey": False,
            },
        }  # fmt: skip
    async with engine_env(
        database_url, tmp_path, fake_discord, NEONRAIN_OPENAI_MODEL="fake-model",
        NEONRAIN_OPENAI_BASE_URL="http://127.0.0.1:1/v1", NEONRAIN_OPENAI_API_KEY=INSTALL_KEY,
    ) as env:  # fmt: skip
        grace = await env.user("grace@example.com")
        response = await env.http.get(ENGINE, headers=grace.headers)
        assert response.json()["openai"]["hasApiKey"] is True
        assert INSTALL_KEY not in response.text
        # The install's engine may be loopback (an operator's own server), and is what a test
        # calls for an account without its own.
        body = assert_error(
            await env.http.post(TEST, headers=grace.headers), 502, "ENGINE_UNAVAILABLE"
        )
        assert "cannot reach" in body["error"] and INSTALL_KEY not in str(body)
        # An account's own engine wins over the install's.
        await env.set_engine(grace)
        assert (await env.get(grace))["openai"]["source"] == "account"
        assert (await env.http.post(TEST, headers=grace.headers)).status_code == 200


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"baseUrl": "https://api.example.com/v1"},
        {"model": MODEL},
        {"baseUrl": "https://api.example.com/v1", "model": ""},
        {"baseUrl": "https://api.example.com/v1", "model": "   "},
        {"baseUrl": "https://api.example.com/v1", "model": "m" * 201},
        {"baseUrl": "https://api.example.com/" + "a" * 2048, "model": MODEL},
        {"baseUrl": "https://api.example.com/v1", "model": MODEL, "apiKey": "k" * 501},
        {"baseUrl": "https://api.example.com/v1", "model": MODEL, "apiKey": "two words"},
        {"baseUrl": "https://api.example.com/v1", "model": MODEL, "apiKey": "sk-\nheader"},
        {"baseUrl": "https://api.example.com/v1", "model": MODEL, "apiKey": "sk-ключ"},
        {"baseUrl": "https://api.example.com/v1", "model": MODEL, "apiKey": 12345},
        {"baseUrl": "https://api.example.com/v1", "model": "a\x00b"},
        {"baseUrl": ["https://api.example.com/v1"], "model": MODEL},
        {"baseUrl": "https://api.example.com/v1", "model": MODEL, "organization": "x"},
    ],
)
async def test_bad_bodies_are_400(env: Env, body: dict[str, Any]) -> None:
    ada = await env.user()
    response = await env.put(ada, body)
    assert_error(response, 400, "VALIDATION_ERROR")
    assert await env.credential(ada) is None


async def test_engine_routes_need_a_signed_in_account(env: Env) -> None:
    for method, path in (("GET", ENGINE), ("PUT", OPENAI), ("DELETE", OPENAI), ("POST", TEST)):
        assert_error(await env.http.request(method, path, json={}), 401, "UNAUTHENTICATED")


async def test_concurrent_first_saves_leave_one_engine(env: Env) -> None:
    ada = await env.user()
    bodies = [{"baseUrl": env.fake.base_url, "model": f"m{i}", "apiKey": KEY} for i in range(4)]
    responses = await asyncio.gather(*(env.put(ada, body) for body in bodies))
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    async with state_of(env.app).sessionmaker() as session:
        rows = (
            await session.scalars(
                select(EngineCredential).where(EngineCredential.user_id == ada.id)
            )
        ).all()
    assert len(rows) == 1 and rows[0].model in {"m0", "m1", "m2", "m3"}


async def test_each_account_has_its_own_engine(env: Env) -> None:
    ada = await env.user()
    grace = await env.user("grace@example.com")
    await env.set_engine(ada)
    assert (await env.get(grace))["openai"]["available"] is False
    assert (await env.http.delete(OPENAI, headers=grace.headers)).status_code == 204
    assert (await env.get(ada))["openai"]["source"] == "account"


# ------------------------------------------------------------------------ the key is secret


async def test_the_key_never_appears_in_an_answer_a_page_or_a_log_line(
    env: Env, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ada = await env.user()  # the client keeps the session cookie: pages see Ada
    await connect(env.http, ada)
    server = await add_server(env.http, ada, world.guild1)
    texts: list[str] = []
    saved = await env.put(ada, {"baseUrl": env.fake.base_url, "model": MODEL, "apiKey": KEY})
    texts.append(saved.text)
    env.fake.api_key = "sk-the-provider-wants-another-key"  # so that it echoes ours in a 401
    for method, path in (
        ("GET", ENGINE),
        ("POST", TEST),
        ("GET", "/api/discord/status"),
        ("GET", "/api/servers"),
        ("GET", f"/api/servers/{server['serverId']}"),
    ):
        texts.append((await env.http.request(method, path, headers=ada.headers)).text)
    switched = await env.http.put(
        f"/api/servers/{server['serverId']}", json={"engine": "openai"}, headers=ada.headers
    )
    texts.append(switched.text)
    for page in ("/settings", "/dashboard", f"/dashboard/servers/{server['serverId']}"):
        response = await env.http.get(page)
        assert response.status_code == 200, page
        texts.append(response.text)
    assert env.fake.chat_requests[-1].bearer == KEY  # it was sent to the provider, and only there
    assert "Incorrect API key provided: ***" in "".join(texts)
    for text in texts:
        assert KEY not in text
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()


# ---------------------------------------------------------------- engine of a server config


async def test_server_engine_validation_and_defaults(env: Env, world: World) -> None:
    ada = await env.user()
    await connect(env.http, ada)
    first = await add_server(env.http, ada, world.guild1)
    assert first["engine"] == "huma"  # nothing is configured: HUMA, the default
    path = f"/api/servers/{first['serverId']}"
    for engine in ("gpt", "", None, 1, "HUMA"):
        assert_error(
            await env.http.put(path, json={"engine": engine}, headers=ada.headers),
            400,
            "VALIDATION_ERROR",
        )
    body = assert_error(
        await env.http.put(path, json={"engine": "openai"}, headers=ada.headers),
        409,
        "ENGINE_NOT_CONFIGURED",
    )
    assert "Settings" in body["error"]
    response = await env.http.put(path, json={"engine": "huma"}, headers=ada.headers)
    assert response.status_code == 200 and response.json()["engine"] == "huma"

    await env.set_engine(ada)
    generation = await generation_of(env.app)
    response = await env.http.put(path, json={"engine": "openai"}, headers=ada.headers)
    assert response.status_code == 200, response.text
    assert response.json()["engine"] == "openai"
    assert await generation_of(env.app) > generation
    detail = (await env.http.get(path, headers=ada.headers)).json()
    assert detail["engine"] == "openai"
    # No HUMA key here: switching back is refused, and a new server starts on the model.
    body = assert_error(
        await env.http.put(path, json={"engine": "huma"}, headers=ada.headers),
        409,
        "ENGINE_NOT_CONFIGURED",
    )
    assert "HUMA_API_KEY" in body["error"]
    second = await add_server(env.http, ada, world.guild2)
    assert second["engine"] == "openai"
    # Removing the engine keeps the servers' choice (they are not runnable until one is set).
    assert (await env.http.delete(OPENAI, headers=ada.headers)).status_code == 204
    detail = (await env.http.get(path, headers=ada.headers)).json()
    assert detail["engine"] == "openai"


async def test_with_a_huma_key_new_servers_start_on_huma(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord, world: World
) -> None:
    async with engine_env(
        database_url, tmp_path, fake_discord, HUMA_API_KEY="huma-key",
        NEONRAIN_OPENAI_BASE_URL="http://127.0.0.1:1/v1", NEONRAIN_OPENAI_MODEL="install-m",
    ) as env:  # fmt: skip
        ada = await env.user()
        await connect(env.http, ada)
        server = await add_server(env.http, ada, world.guild1)
        assert server["engine"] == "huma"
        path = f"/api/servers/{server['serverId']}"
        for engine in ("openai", "huma"):  # both available: the install's model is enough
            response = await env.http.put(path, json={"engine": engine}, headers=ada.headers)
            assert response.status_code == 200 and response.json()["engine"] == engine


async def test_without_huma_the_install_model_is_the_default(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord, world: World
) -> None:
    async with engine_env(
        database_url, tmp_path, fake_discord,
        NEONRAIN_OPENAI_BASE_URL="http://127.0.0.1:1/v1", NEONRAIN_OPENAI_MODEL="install-m",
    ) as env:  # fmt: skip
        ada = await env.user()
        await connect(env.http, ada)
        assert (await add_server(env.http, ada, world.guild1))["engine"] == "openai"


# ---------------------------------------------------------------------- the tokens answer


async def tokens(http: httpx.AsyncClient, **params: Any) -> Any:
    response = await http.get(TOKENS, params=params, headers=INTERNAL)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_tokens_answer_carries_each_accounts_engine(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord, world: World
) -> None:
    async with engine_env(
        database_url, tmp_path, fake_discord, NEONRAIN_OPENAI_BASE_URL=INSTALL_URL,
        NEONRAIN_OPENAI_MODEL="install-model", NEONRAIN_OPENAI_API_KEY=INSTALL_KEY,
    ) as env:  # fmt: skip
        ada = await env.user()
        grace = await env.user("grace@example.com")
        await connect(env.http, ada)
        await connect(env.http, grace)
        await env.set_engine(ada)
        install = {"baseUrl": INSTALL_URL, "model": "install-model", "apiKey": INSTALL_KEY}
        own = {"baseUrl": env.fake.base_url, "model": MODEL, "apiKey": KEY}

        answer = await tokens(env.http)
        by_user = {t["userId"]: t for t in answer["tokens"]}
        assert by_user[ada.id]["openai"] == own  # the account's own beats the install's
        assert by_user[grace.id]["openai"] == install
        with count_queries(env.app) as queries:
            await tokens(env.http)
        assert len(queries) <= 4, queries  # the endpoints come with the accounts' query

        # A change of the credentials reaches the worker as a delta, with the whole entry.
        generation = answer["generation"]
        await env.set_engine(ada, key="sk-rotated-key", model="m2")
        delta = await tokens(env.http, since=generation)
        assert [t["userId"] for t in delta["tokens"]] == [ada.id]
        assert delta["tokens"][0]["openai"] == {**own, "model": "m2", "apiKey": "sk-rotated-key"}
        generation = delta["generation"]
        assert (await env.http.delete(OPENAI, headers=ada.headers)).status_code == 204
        delta = await tokens(env.http, since=generation)
        assert [t["userId"] for t in delta["tokens"]] == [ada.id]
        assert delta["tokens"][0]["openai"] == install  # back to the install's engine

        # An engine key the secret key cannot read: the account has no usable engine.
        await env.set_engine(ada)
        async with state_of(env.app).sessionmaker() as session:
            row = await session.scalar(
                select(EngineCredential).where(EngineCredential.user_id == ada.id)
            )
            assert row is not None
            row.api_key = "not a ciphertext of this key"
            await session.commit()
        by_user = {t["userId"]: t for t in (await tokens(env.http))["tokens"]}
        assert by_user[ada.id]["openai"] is None
        assert by_user[grace.id]["openai"] == install


# ------------------------------------------------------------------------------ the status


async def report_engine(
    http: httpx.AsyncClient, user_id: str, state: str | None, detail: str = ""
) -> None:
    response = await http.post(
        "/api/discord/worker-status",
        json={
            "tokens": [
                {"userId": user_id, "state": "online", "engineState": state, "engineDetail": detail}
            ]
        },
        headers=INTERNAL,
    )
    assert response.status_code == 204, response.text


async def test_status_engines_follow_the_worker_and_the_accounts_tests(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord, world: World
) -> None:
    async with engine_env(database_url, tmp_path, fake_discord, HUMA_API_KEY="huma-key") as env:
        ada = await env.user()
        await connect(env.http, ada)
        engines = (await env.status(ada))["engines"]
        assert engines == {
            "huma": {"available": True},
            "openai": {"available": False, "state": None, "detail": ""},
        }
        # Without an engine, a report of one is not shown.
        await report_engine(env.http, ada.id, "error", "stale")
        assert (await env.status(ada))["engines"]["openai"]["state"] is None

        await env.set_engine(ada)  # newer than the report: the report is about older settings
        assert (await env.status(ada))["engines"]["openai"] == {
            "available": True, "state": None, "detail": "",
        }  # fmt: skip
        await report_engine(env.http, ada.id, "error", "Incorrect API key provided: ***.")
        assert (await env.status(ada))["engines"]["openai"] == {
            "available": True, "state": "error", "detail": "Incorrect API key provided: ***.",
        }  # fmt: skip
        assert (await env.http.post(TEST, headers=ada.headers)).status_code == 200
        assert (await env.status(ada))["engines"]["openai"]["state"] == "ok"  # the newer test
        await report_engine(env.http, ada.id, "error", "The model is overloaded.")
        assert (await env.status(ada))["engines"]["openai"]["detail"] == (
            "The model is overloaded."
        )
        await report_engine(env.http, ada.id, "ok")
        assert (await env.status(ada))["engines"]["openai"] == {
            "available": True, "state": "ok", "detail": "",
        }  # fmt: skip
