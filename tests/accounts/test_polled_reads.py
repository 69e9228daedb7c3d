"""The dashboard's polled reads (``GET /api/servers``, ``GET /api/discord/status``) sign in as
every route does, though they run outside FastAPI's dependencies (``neonrain.dashboard_reads``)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from neonrain.accounts.models import Session
from neonrain.db.base import utcnow
from tests.conftest import assert_error, register_user

POLLED = ("/api/servers", "/api/discord/status")


async def test_an_account_without_servers_reads_empty_totals(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    client.cookies.clear()
    servers = await client.get("/api/servers", headers=user.headers)
    assert servers.status_code == 200 and servers.json() == {"servers": []}
    status = (await client.get("/api/discord/status", headers=user.headers)).json()
    assert (status["serverCount"], status["activeServerCount"]) == (0, 0)
    assert (status["connected"], status["bot"]) == (False, None)


async def test_the_session_cookie_signs_in_without_a_csrf_token(client: httpx.AsyncClient) -> None:
    await register_user(client)  # keeps the session cookie
    for path in POLLED:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_no_or_unknown_credentials_are_401(client: httpx.AsyncClient) -> None:
    for path in POLLED:
        assert_error(await client.get(path), 401, "UNAUTHENTICATED")
        bad = {"Authorization": "Bearer not-a-session"}
        assert_error(await client.get(path, headers=bad), 401, "UNAUTHENTICATED")


async def test_an_expired_session_is_401_and_deleted(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register_user(client)
    client.cookies.clear()
    async with app.state.neonrain.sessionmaker() as db:
        await db.execute(
            update(Session).values(
                expires_at=utcnow() - timedelta(seconds=1),
                last_seen_at=utcnow() - timedelta(days=30),
            )
        )
        await db.commit()
    assert_error(await client.get("/api/servers", headers=user.headers), 401, "UNAUTHENTICATED")
    async with app.state.neonrain.sessionmaker() as db:
        assert (await db.scalars(select(Session))).all() == []
    assert_error(await client.get("/api/discord/status", headers=user.headers), 401)


async def test_only_get_is_answered(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    for path in POLLED:
        assert (await client.head(path, headers=user.headers)).status_code == 405
        assert_error(await client.delete(path, headers=user.headers), 405)
