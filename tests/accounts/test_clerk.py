"""Signing in with a Clerk session token when CLERK_JWKS_URL is set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy import select

from neonrain.accounts.models import User
from neonrain.app import create_app
from tests.clerk import ISSUER, FakeClerk
from tests.conftest import api_client, assert_error, make_settings


@pytest.fixture
async def clerk() -> AsyncIterator[FakeClerk]:
    fake = FakeClerk()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def clerk_app(database_url: str, tmp_path, clerk: FakeClerk) -> AsyncIterator[FastAPI]:
    app = create_app(
        make_settings(database_url, tmp_path, CLERK_JWKS_URL=clerk.jwks_url, CLERK_ISSUER=ISSUER)
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(clerk_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(clerk_app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_signs_in_and_creates_the_account_once(
    http: httpx.AsyncClient, clerk: FakeClerk, clerk_app: FastAPI
) -> None:
    first = await http.get("/api/auth/me", headers=bearer(clerk.token("user_2abc")))
    second = await http.get("/api/auth/me", headers=bearer(clerk.token("user_2abc")))
    assert first.status_code == 200, first.text
    assert first.json() == second.json()
    assert first.json()["user"]["email"] is None
    async with clerk_app.state.neonrain.sessionmaker() as db:
        users = (await db.scalars(select(User))).all()
    assert [u.clerk_user_id for u in users] == ["user_2abc"]


async def test_an_existing_clerk_user_is_found_by_clerk_id(
    http: httpx.AsyncClient, clerk: FakeClerk, clerk_app: FastAPI
) -> None:
    async with clerk_app.state.neonrain.sessionmaker() as db:
        legacy = User(clerk_user_id="user_legacy", email="old@example.com")
        db.add(legacy)
        await db.commit()
    response = await http.get("/api/auth/me", headers=bearer(clerk.token("user_legacy")))
    assert response.json() == {"user": {"id": legacy.id, "email": "old@example.com"}}


async def test_concurrent_first_sign_ins_create_one_account(
    http: httpx.AsyncClient, clerk: FakeClerk, clerk_app: FastAPI
) -> None:
    import asyncio

    token = clerk.token("user_race")
    responses = await asyncio.gather(
        *(http.get("/api/auth/me", headers=bearer(token)) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["user"]["id"] for r in responses}) == 1


async def test_bad_tokens_are_refused(http: httpx.AsyncClient, clerk: FakeClerk) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (
        clerk.token("user_x", expires_in=-60),
        clerk.token("user_x", issuer="https://evil.example.com"),
        clerk.token("user_x", key=stranger),
        clerk.token("user_x")[:-4] + "AAAA",
    ):
        assert_error(await http.get("/api/auth/me", headers=bearer(token)), 401, "UNAUTHENTICATED")


async def test_clerk_writes_need_no_csrf(http: httpx.AsyncClient, clerk: FakeClerk) -> None:
    response = await http.post("/api/auth/logout", headers=bearer(clerk.token("user_w")))
    assert response.status_code == 204


async def test_without_clerk_a_jwt_is_just_an_unknown_session(
    client: httpx.AsyncClient, clerk: FakeClerk
) -> None:
    assert_error(await client.get("/api/auth/me", headers=bearer(clerk.token("user_x"))), 401)


async def test_jwks_unreachable_is_a_401_not_a_500(database_url: str, tmp_path) -> None:
    app = create_app(
        make_settings(
            database_url,
            tmp_path,
            CLERK_JWKS_URL="http://127.0.0.1:9/.well-known/jwks.json",
            CLERK_ISSUER=ISSUER,
        )
    )
    fake = FakeClerk()
    async with app.router.lifespan_context(app), api_client(app) as http:
        response = await http.get("/api/auth/me", headers=bearer(fake.token("user_x")))
        assert_error(response, 401, "UNAUTHENTICATED")


async def test_the_polled_dashboard_reads_accept_clerk_tokens(
    http: httpx.AsyncClient, clerk: FakeClerk
) -> None:
    headers = bearer(clerk.token("user_2poll"))
    servers = await http.get("/api/servers", headers=headers)
    assert servers.status_code == 200, servers.text
    assert servers.json() == {"servers": []}
    status = await http.get("/api/discord/status", headers=headers)
    assert status.status_code == 200, status.text
    assert status.json()["serverCount"] == 0
    assert_error(await http.get("/api/servers", headers=bearer("a.b.c")), 401)
