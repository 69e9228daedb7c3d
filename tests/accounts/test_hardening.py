"""Abuse of the account endpoints: concurrent guesses, spoofed addresses, sign-up floods, planted
CSRF tokens and common passwords."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from neonrain.accounts import security
from tests.conftest import api_client, assert_error, make_settings, register_user
from tests.webapp import served

PASSWORD = "correct horse battery"


def login(http: httpx.AsyncClient, email: str, password: str, **kwargs: Any) -> Any:
    return http.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)


# -- login attempts are counted before the password check -----------------------------------------


async def test_concurrent_guesses_cannot_pass_the_login_limit(client: httpx.AsyncClient) -> None:
    await register_user(client)
    guesses = [login(client, "ada@example.com", f"wrong guess {n:02}") for n in range(40)]
    responses = await asyncio.gather(*guesses, login(client, "ada@example.com", PASSWORD))
    statuses = Counter(response.status_code for response in responses)
    # Ten attempts per email are checked; all others wait, the right password among them.
    assert statuses[401] == 10, statuses
    assert statuses[429] == 31, statuses
    for response in responses:
        if response.status_code == 429:
            assert_error(response, 429, "RATE_LIMITED")
            assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    assert_error(await login(client, "ada@example.com", PASSWORD), 429, "RATE_LIMITED")


async def test_a_successful_sign_in_gives_its_attempt_back(client: httpx.AsyncClient) -> None:
    await register_user(client)
    for _ in range(10):  # ten good sign-ins from one address…
        assert (await login(client, "ada@example.com", PASSWORD)).status_code == 200
    # …leave the address's budget for failures untouched.
    for n in range(10):
        response = await login(client, f"other{n}@example.com", "wrong password")
        assert_error(response, 401, "INVALID_CREDENTIALS")
    response = await login(client, "last@example.com", "wrong password")
    assert_error(response, 429, "RATE_LIMITED")


# -- X-Forwarded-For only from configured proxies -------------------------------------------------


async def test_forwarded_for_is_ignored_without_trusted_proxies(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path)
    async with served(settings) as web, httpx.AsyncClient(base_url=web.url, timeout=30) as http:
        guesses = [
            login(
                http, f"guess{n}@example.com", "wrong password",
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            for n in range(15)
        ]  # fmt: skip
        statuses = Counter(r.status_code for r in await asyncio.gather(*guesses))
        assert statuses == {401: 10, 429: 5}
        # Nor is an https scheme believed: the session cookie is not marked Secure.
        response = await http.post(
            "/api/auth/register",
            json={"email": "ada@example.com", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert response.status_code == 201
        assert "secure" not in response.headers["set-cookie"].lower()


async def test_forwarded_for_is_believed_from_a_configured_proxy(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, FORWARDED_ALLOW_IPS="127.0.0.0/8")
    async with served(settings) as web, httpx.AsyncClient(base_url=web.url, timeout=30) as http:
        one = {"X-Forwarded-For": "198.51.100.7"}
        guesses = [
            login(http, f"guess{n}@example.com", "wrong password", headers=one) for n in range(12)
        ]
        statuses = Counter(r.status_code for r in await asyncio.gather(*guesses))
        assert statuses == {401: 10, 429: 2}
        # Another client behind the same proxy is counted on its own.
        other = {"X-Forwarded-For": "198.51.100.8"}
        response = await login(http, "guess@example.com", "wrong password", headers=other)
        assert_error(response, 401, "INVALID_CREDENTIALS")
        # The proxy's address is the last hop: a client cannot prepend its own choice.
        spoofed = {"X-Forwarded-For": "203.0.113.1, 198.51.100.7"}
        response = await login(http, "guess@example.com", "wrong password", headers=spoofed)
        assert_error(response, 429, "RATE_LIMITED")
        response = await http.post(
            "/api/auth/register",
            json={"email": "ada@example.com", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https", **other},
        )
        assert response.status_code == 201
        assert "secure" in response.headers["set-cookie"].lower()


def test_forwarded_allow_ips_must_be_addresses(tmp_path: Path) -> None:
    settings = make_settings(
        "sqlite+aiosqlite://", tmp_path, FORWARDED_ALLOW_IPS=" 10.0.0.1/8 ,::1"
    )
    assert settings.forwarded_allow_ips == "10.0.0.0/8,::1"
    assert make_settings("sqlite+aiosqlite://", tmp_path).forwarded_allow_ips == ""
    with pytest.raises(ValueError, match=r"proxy\.example"):
        make_settings("sqlite+aiosqlite://", tmp_path, FORWARDED_ALLOW_IPS="proxy.example")


# -- registration: per-address limit, bounded hashing, health stays up -----------------------------


async def test_registration_is_rate_limited_per_address(client: httpx.AsyncClient) -> None:
    for n in range(10):
        await register_user(client, f"user{n}@example.com")
    response = await client.post(
        "/api/auth/register", json={"email": "one-more@example.com", "password": PASSWORD}
    )
    body = assert_error(response, 429, "RATE_LIMITED")
    assert "sign-ups" in body["error"]
    assert 0 < int(response.headers["Retry-After"]) <= 60 * 60


class GatedHasher(PasswordHasher):
    """Argon2 as in production, but each hash waits for ``gate`` and the hashes running at once
    are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self.lock:
            self.running += 1
            self.started += 1
            self.peak = max(self.peak, self.running)
        try:
            self.gate.wait(20)
            return super().hash(password, salt=salt)
        finally:
            with self.lock:
                self.running -= 1


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 4000)),
        base_url="http://testserver",
        timeout=60,
    )


async def test_concurrent_registrations_hash_in_turn_and_health_answers(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = GatedHasher()
    monkeypatch.setattr(security, "_hasher", hasher)
    count = 30

    async def sign_up(n: int) -> httpx.Response:
        async with client_at(app, f"198.51.100.{n}") as http:
            return await http.post(
                "/api/auth/register", json={"email": f"u{n}@example.com", "password": PASSWORD}
            )

    registrations = [asyncio.create_task(sign_up(n)) for n in range(count)]
    try:
        async with asyncio.timeout(10):
            while hasher.running < security.HASH_CONCURRENCY:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # time for more hashes to start, if anything let them
        assert hasher.started == security.HASH_CONCURRENCY
        async with api_client(app) as http:
            health = await asyncio.wait_for(http.get("/healthz"), 5)
        assert health.status_code == 200, health.text
        assert not any(task.done() for task in registrations)
    finally:
        hasher.gate.set()
    responses = await asyncio.gather(*registrations)
    assert [r.status_code for r in responses] == [201] * count
    assert hasher.started == count
    assert hasher.peak == security.HASH_CONCURRENCY


# -- CSRF tokens belong to the session ------------------------------------------------------------


async def test_a_planted_csrf_cookie_and_header_are_refused(client: httpx.AsyncClient) -> None:
    user = await register_user(client)  # the cookie jar holds the session
    client.cookies.set("neonrain_csrf", "planted-by-someone-else", domain="testserver.local")
    response = await client.post(
        "/api/auth/logout", headers={"X-CSRF-Token": "planted-by-someone-else"}
    )
    assert_error(response, 403, "CSRF_FAILED")
    assert (await client.get("/api/auth/me", headers=user.headers)).status_code == 200


async def test_another_sessions_csrf_token_is_refused(app: FastAPI) -> None:
    async with api_client(app) as ada, api_client(app) as grace:
        await register_user(ada, "ada@example.com")
        await register_user(grace, "grace@example.com")
        graces_token = grace.cookies["neonrain_csrf"]
        assert graces_token != ada.cookies["neonrain_csrf"]
        ada.cookies.set("neonrain_csrf", graces_token, domain="testserver.local")
        response = await ada.post("/api/auth/logout", headers={"X-CSRF-Token": graces_token})
        assert_error(response, 403, "CSRF_FAILED")


async def test_pages_give_a_signed_in_browser_its_sessions_token(app: FastAPI) -> None:
    async with api_client(app) as http:
        await register_user(http)
        token = http.cookies["neonrain_csrf"]
        http.cookies.set("neonrain_csrf", "stale-value", domain="testserver.local")
        page = await http.get("/settings")
        assert page.status_code == 200
        assert f'name="csrf" value="{token}"' in page.text
        assert http.cookies["neonrain_csrf"] == token  # the cookie is put right
        response = await http.post("/api/auth/logout", headers={"X-CSRF-Token": token})
        assert response.status_code == 204


# -- common passwords ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["password123", "Password123", "qwertyuiop ", "1234567890", " " * 12, "\t" * 10]
)
async def test_common_and_blank_passwords_are_refused(
    client: httpx.AsyncClient, password: str
) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": "ada@example.com", "password": password}
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "password"
    assert "common" in body["error"] or "only spaces" in body["error"], body


async def test_a_new_password_must_not_be_common(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    response = await client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "1q2w3e4r5t"},
        headers=user.headers,
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "newPassword"
    assert "common" in body["error"]


def test_user_create_refuses_a_common_password(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "neonrain", "user", "create", "ops@example.com", "--password-stdin"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "NEONRAIN_ALLOW_REGISTRATION": "false"},
        input="1234567890\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "common" in result.stderr
    assert not (tmp_path / "neonrain.db").exists()  # refused before anything was created
