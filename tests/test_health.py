"""``GET /healthz``."""

from __future__ import annotations

import httpx

from neonrain.app import create_app
from tests.conftest import api_client, make_settings


async def test_healthz_reports_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_is_503_when_the_database_is_unreachable(tmp_path) -> None:
    # Nothing listens on port 9 of the loopback address.
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:9/none", tmp_path)
    app = create_app(settings)
    async with api_client(app) as http:
        response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": "unavailable"}


async def test_api_answers_503_not_500_when_the_database_is_down(tmp_path) -> None:
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:9/none", tmp_path)
    app = create_app(settings)
    async with api_client(app) as http:
        response = await http.post(
            "/api/auth/login", json={"email": "ada@example.com", "password": "whatever it is"}
        )
    assert response.status_code == 503
    assert response.json()["code"] == "DB_UNAVAILABLE"
