"""``GET /healthz``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from neonrain.app import create_app
from tests.conftest import api_client, assert_error, make_settings
from tests.fakes.fake_postgres import RefusingPostgres


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


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("53300", "sorry, too many clients already"),
        ("53200", "out of memory"),
        ("57P03", "the database system is starting up"),
        ("57P01", "terminating connection due to administrator command"),
        ("08004", "server rejected the connection"),
    ],
)
async def test_a_database_refusing_connections_is_503_not_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sqlstate: str, message: str
) -> None:
    async with RefusingPostgres(sqlstate, message) as fake:
        app = create_app(make_settings(fake.url, tmp_path))
        async with api_client(app) as http:
            login = await http.post(
                "/api/auth/login", json={"email": "ada@example.com", "password": "whatever it is"}
            )
            me = await http.get("/api/auth/me", headers={"Authorization": "Bearer nrs_x"})
            health = await http.get("/healthz")
        await app.state.neonrain.engine.dispose()
    assert fake.refused >= 3
    for response in (login, me):
        assert_error(response, 503, "DB_UNAVAILABLE")
        assert response.headers["Retry-After"] == "5"
    assert health.status_code == 503
    assert health.json() == {"status": "degraded", "database": "unavailable"}
    # One line for the operator, no traceback.
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert message in caplog.text
