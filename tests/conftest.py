"""Shared fixtures: a migrated database per test on SQLite and on PostgreSQL, the app, clients.

Every test that takes ``database_url`` (directly or through ``app``/``client``) runs twice: on a
SQLite file and on the local PostgreSQL server. Each test run creates its own throwaway
PostgreSQL database and migrates it once; tests then start from empty tables.

Without a reachable PostgreSQL the PostgreSQL variants are skipped with the reason, except under
CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from neonrain.app import create_app
from neonrain.config import Settings
from neonrain.crypto import TokenCipher
from neonrain.db.migrate import upgrade_database
from neonrain.db.models import Base
from tests import pg

TEST_SECRET_KEY = "test-secret-key-not-for-production"
TEST_INTERNAL_KEY = "test-internal-api-key"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_postgres() -> None:
    ok, reason = pg.postgres_available()
    if not ok:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(upgrade_database(f"sqlite+aiosqlite:///{path}", TokenCipher(TEST_SECRET_KEY)))
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    require_postgres()
    with pg.throwaway_database_sync() as name:
        asyncio.run(upgrade_database(pg.sqlalchemy_url(name), TokenCipher(TEST_SECRET_KEY)))
        yield name


async def _empty_postgres(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
            await connection.execute(
                text("INSERT INTO config_state (id, generation) VALUES (1, 0)")
            )
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> str:
    if backend == "sqlite":
        path = tmp_path / "neonrain.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    name = request.getfixturevalue("postgres_database")
    url = pg.sqlalchemy_url(name)
    asyncio.run(_empty_postgres(url))
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "NEONRAIN_SECRET_KEY": TEST_SECRET_KEY,
        "NEONRAIN_SECRET_KEY_FILE": str(tmp_path / "secret"),
        "INTERNAL_API_KEY": TEST_INTERNAL_KEY,
        "NEONRAIN_TYPING_WPM": 100000,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(app) as http:
        yield http


def api_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    )


@dataclass
class ApiUser:
    """A registered account and Bearer headers to act as it."""

    id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register_user(
    http: httpx.AsyncClient, email: str = "ada@example.com", password: str = "correct horse battery"
) -> ApiUser:
    response = await http.post("/api/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body = response.json()
    return ApiUser(id=body["user"]["id"], email=email, password=password, token=body["token"])


@pytest.fixture
async def user(client: httpx.AsyncClient) -> ApiUser:
    return await register_user(client)


@pytest.fixture
async def other_user(client: httpx.AsyncClient) -> ApiUser:
    return await register_user(client, email="grace@example.com")


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an API error of the documented shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("code"), str) and body["code"].isupper(), body
    if code is not None:
        assert body["code"] == code, body
    return body
