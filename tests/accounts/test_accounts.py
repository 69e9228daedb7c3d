"""Accounts: register, login, logout, me — sessions, CSRF, limits and errors (api.md)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from neonrain.accounts.models import Session, User
from neonrain.crypto import sha256_hex
from neonrain.db.base import utcnow
from tests.conftest import ApiUser, api_client, assert_error, make_settings, register_user

PASSWORD = "correct horse battery"


async def test_register_returns_user_token_and_sets_cookies(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": "Ada@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["token"].startswith("nrs_")
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("neonrain_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    assert "Secure" not in session_cookie  # plain HTTP here
    csrf_cookie = next(c for c in cookies if c.startswith("neonrain_csrf="))
    assert "HttpOnly" not in csrf_cookie


async def test_session_token_is_stored_hashed(client: httpx.AsyncClient, app) -> None:
    user = await register_user(client)
    async with app.state.neonrain.sessionmaker() as db:
        hashes = (await db.scalars(select(Session.token_hash))).all()
        stored = (await db.scalars(select(User.password_hash))).all()
    assert hashes == [sha256_hex(user.token)]
    assert user.token not in hashes
    assert stored[0] is not None and stored[0].startswith("$argon2")


async def test_register_same_email_again_is_a_conflict(client: httpx.AsyncClient) -> None:
    await register_user(client, "ada@example.com")
    response = await client.post(
        "/api/auth/register", json={"email": "ADA@example.com", "password": PASSWORD}
    )
    assert_error(response, 409, "EMAIL_TAKEN")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "ada@example.com", "password": "short"},
        {"email": "ada@example.com", "password": "x" * 257},
        {"email": ("a" * 250) + "@example.com", "password": PASSWORD},
        {"email": "ada@example.com"},
        {"password": PASSWORD},
        {"email": 42, "password": PASSWORD},
        {"email": "ada@example.com", "password": ["list"]},
        {"email": "ada@example.com", "password": PASSWORD, "admin": True},
        [],
        "just a string",
        None,
    ],
    ids=[
        "bad-email", "short-password", "long-password", "long-email", "no-password", "no-email",
        "email-number", "password-list", "unknown-field", "array", "string", "null",
    ],
)  # fmt: skip
async def test_register_bad_input_is_400(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/api/auth/register", json=body)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert isinstance(error["details"], list) and error["details"]


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        content=b'{"email": "ada@example.com", "password": ',
        headers={"content-type": "application/json"},
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["error"] == "The request body is not valid JSON."


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        content=b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():
        for _ in range(20):
            yield b"x" * (64 * 1024)

    response = await client.post(
        "/api/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_registration_can_be_closed(database_url: str, tmp_path) -> None:
    from neonrain.app import create_app

    app = create_app(make_settings(database_url, tmp_path, NEONRAIN_ALLOW_REGISTRATION=False))
    async with app.router.lifespan_context(app), api_client(app) as http:
        response = await http.post(
            "/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert_error(response, 403, "REGISTRATION_CLOSED")


async def test_login_and_me_with_bearer_and_cookie(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    fresh = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with fresh:
        response = await fresh.post(
            "/api/auth/login", json={"email": "ADA@example.com ", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"] == {"id": user.id, "email": user.email}
        # The cookie jar now holds the session: me works with no header.
        me = await fresh.get("/api/auth/me")
        assert me.status_code == 200 and me.json() == {"user": {"id": user.id, "email": user.email}}
    client.cookies.clear()  # the Bearer token alone
    bearer = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert bearer.json()["user"]["id"] == user.id


@pytest.mark.parametrize("password", ["wrong password!!", PASSWORD + "x"])
async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient, password: str
) -> None:
    await register_user(client)
    wrong = await client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": password}
    )
    unknown = await client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": password}
    )
    assert assert_error(wrong, 401, "INVALID_CREDENTIALS") == assert_error(
        unknown, 401, "INVALID_CREDENTIALS"
    )


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "a@b.c"}, {"email": "", "password": "x"}, {"email": "a@b.c", "password": 5},
     {"email": "x" * 300, "password": "y"}],
)  # fmt: skip
async def test_login_bad_input_is_400(client: httpx.AsyncClient, body: object) -> None:
    assert_error(await client.post("/api/auth/login", json=body), 400, "VALIDATION_ERROR")


async def test_login_is_rate_limited_per_email(client: httpx.AsyncClient) -> None:
    await register_user(client)
    for _ in range(10):
        response = await client.post(
            "/api/auth/login", json={"email": "ada@example.com", "password": "wrong password"}
        )
        assert_error(response, 401, "INVALID_CREDENTIALS")
    # Even the right password waits now.
    response = await client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert_error(response, 429, "RATE_LIMITED")
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60


async def test_login_is_rate_limited_per_address(client: httpx.AsyncClient) -> None:
    for attempt in range(10):
        await client.post(
            "/api/auth/login",
            json={"email": f"guess{attempt}@example.com", "password": "wrong password"},
        )
    response = await client.post(
        "/api/auth/login", json={"email": "another@example.com", "password": "wrong password"}
    )
    assert_error(response, 429, "RATE_LIMITED")


async def test_me_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/auth/me"), 401, "UNAUTHENTICATED")
    assert_error(
        await client.get("/api/auth/me", headers={"Authorization": "Bearer nrs_forged"}),
        401,
        "UNAUTHENTICATED",
    )
    assert_error(
        await client.get("/api/auth/me", headers={"Authorization": "Basic abc"}),
        401,
        "UNAUTHENTICATED",
    )


async def test_cookie_writes_need_the_csrf_token(client: httpx.AsyncClient) -> None:
    await register_user(client)  # the client's cookie jar holds session + csrf cookies
    csrf = client.cookies["neonrain_csrf"]
    assert_error(await client.post("/api/auth/logout"), 403, "CSRF_FAILED")
    assert_error(
        await client.post("/api/auth/logout", headers={"X-CSRF-Token": "not-it"}),
        403,
        "CSRF_FAILED",
    )
    response = await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert_error(await client.get("/api/auth/me"), 401, "UNAUTHENTICATED")


async def test_logout_deletes_the_session_server_side(client: httpx.AsyncClient, app) -> None:
    user = await register_user(client)
    client.cookies.clear()
    response = await client.post("/api/auth/logout", headers=user.headers)
    assert response.status_code == 204
    assert_error(await client.get("/api/auth/me", headers=user.headers), 401)
    async with app.state.neonrain.sessionmaker() as db:
        assert (await db.scalars(select(Session))).all() == []


async def test_sessions_expire_after_30_idle_days(client: httpx.AsyncClient, app) -> None:
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
    assert_error(await client.get("/api/auth/me", headers=user.headers), 401, "UNAUTHENTICATED")


async def test_use_slides_the_idle_expiry(client: httpx.AsyncClient, app) -> None:
    user = await register_user(client)
    client.cookies.clear()
    old = utcnow() - timedelta(days=20)
    async with app.state.neonrain.sessionmaker() as db:
        await db.execute(update(Session).values(last_seen_at=old, expires_at=old + timedelta(30)))
        await db.commit()
    assert (await client.get("/api/auth/me", headers=user.headers)).status_code == 200
    async with app.state.neonrain.sessionmaker() as db:
        session = (await db.scalars(select(Session))).one()
    assert session.expires_at > utcnow() + timedelta(days=29)


async def test_change_password_signs_out_other_devices(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    client.cookies.clear()
    second = (
        await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    ).json()["token"]
    client.cookies.clear()
    wrong = await client.post(
        "/api/auth/password",
        json={"currentPassword": "nope nope nope", "newPassword": "another long one"},
        headers=user.headers,
    )
    assert_error(wrong, 400, "WRONG_PASSWORD")
    short = await client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "short"},
        headers=user.headers,
    )
    assert_error(short, 400, "VALIDATION_ERROR")
    ok = await client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "another long one"},
        headers=user.headers,
    )
    assert ok.status_code == 204
    assert (await client.get("/api/auth/me", headers=user.headers)).status_code == 200
    assert_error(
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {second}"}), 401
    )
    relogin = await client.post(
        "/api/auth/login", json={"email": user.email, "password": "another long one"}
    )
    assert relogin.status_code == 200


async def test_logout_everywhere(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    client.cookies.clear()
    other = ApiUser(
        id=user.id,
        email=user.email,
        password=PASSWORD,
        token=(
            await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        ).json()["token"],
    )
    client.cookies.clear()
    assert (
        await client.post("/api/auth/logout-everywhere", headers=user.headers)
    ).status_code == 204
    for who in (user, other):
        assert_error(await client.get("/api/auth/me", headers=who.headers), 401)


async def test_delete_account_needs_the_email_typed(client: httpx.AsyncClient, app) -> None:
    user = await register_user(client)
    other = await register_user(client, "grace@example.com")
    client.cookies.clear()
    wrong = await client.request(
        "DELETE", "/api/auth/me", json={"confirmEmail": "grace@example.com"}, headers=user.headers
    )
    assert_error(wrong, 400, "CONFIRMATION_MISMATCH")
    ok = await client.request(
        "DELETE", "/api/auth/me", json={"confirmEmail": "ADA@example.com"}, headers=user.headers
    )
    assert ok.status_code == 204
    assert_error(await client.get("/api/auth/me", headers=user.headers), 401)
    assert (await client.get("/api/auth/me", headers=other.headers)).status_code == 200
    async with app.state.neonrain.sessionmaker() as db:
        emails = (await db.scalars(select(User.email))).all()
    assert emails == ["grace@example.com"]


async def test_unknown_api_route_and_method_answer_json(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/nothing-here"), 404, "NOT_FOUND")
    assert_error(await client.get("/api/auth/login"), 405, "METHOD_NOT_ALLOWED")


async def test_unknown_page_is_an_html_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Nothing here" in response.text
