"""The web app's PostgreSQL connection pool: sized for the app's concurrency without overflow
churn, and pinging only connections that sat idle (a restarted database leaves dead ones)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

import neonrain.db.engine
from tests.conftest import register_user


def _pool(app: FastAPI) -> Any:
    return app.state.neonrain.engine.sync_engine.pool


async def test_pool_keeps_its_connections_and_opens_no_overflow(app: FastAPI, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's connection pool (SQLite has none to size or ping)")
    assert _pool(app).size() == app.state.neonrain.settings.database_pool_size
    assert _pool(app)._max_overflow == 0


async def _terminate_pooled_connections(app: FastAPI) -> int:
    url = make_url(app.state.neonrain.settings.database_url)
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        return len(
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name = ''",
                url.database,
            )
        )
    finally:
        await admin.close()


async def test_a_connection_that_died_while_idle_is_replaced_before_use(
    app: FastAPI, client: httpx.AsyncClient, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's connection pool (SQLite has none to size or ping)")
    user = await register_user(client)
    assert (await client.get("/api/servers", headers=user.headers)).status_code == 200
    assert await _terminate_pooled_connections(app) >= 1
    monkeypatch.setattr(neonrain.db.engine, "PING_AFTER_IDLE_SECONDS", 0.0)
    for path in ("/api/servers", "/api/discord/status", "/api/auth/me"):
        assert (await client.get(path, headers=user.headers)).status_code == 200


async def test_connections_in_use_are_not_pinged(
    app: FastAPI, client: httpx.AsyncClient, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's connection pool (SQLite has none to size or ping)")
    pings: list[object] = []
    dialect = app.state.neonrain.engine.dialect
    original = dialect.do_ping

    def counting_ping(connection: object) -> bool:
        pings.append(connection)
        return bool(original(connection))

    monkeypatch.setattr(dialect, "do_ping", counting_ping)
    user = await register_user(client)
    for _ in range(5):
        assert (await client.get("/api/servers", headers=user.headers)).status_code == 200
    assert pings == []
    monkeypatch.setattr(neonrain.db.engine, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert (await client.get("/api/servers", headers=user.headers)).status_code == 200
    assert len(pings) == 1
