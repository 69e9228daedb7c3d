"""The pages' forms without JavaScript (POST, CSRF field, secrets never in a URL or a log line),
the security headers, the 404 page, the landing title and /docs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from neonrain.app import create_app
from neonrain.web import headers
from neonrain.web.templating import templates
from tests.conftest import ApiUser, api_client, make_settings, register_user
from tests.fakes.fake_discord import FakeDiscord
from tests.web.conftest import BOT_TOKEN, text_of

PASSWORD = "correct horse battery"
TEMPLATES = Path(templates.env.loader.searchpath[0])  # type: ignore[union-attr]


async def form_post(
    http: httpx.AsyncClient, path: str, fields: dict[str, str], *, csrf: bool = True
) -> httpx.Response:
    if csrf:
        fields = {"csrf": http.cookies.get("neonrain_csrf") or "", **fields}
    return await http.post(
        path, data=fields, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )


# ------------------------------------------------------------------------------------ forms


async def test_secret_forms_post_to_their_handlers(
    web_app: FastAPI, http: httpx.AsyncClient, ada: ApiUser
) -> None:
    settings = (await http.get("/settings")).text
    for form_id, action in (("password-form", "/settings/password"),):
        assert re.search(rf'<form id="{form_id}"[^>]*method="post" action="{action}"', settings)
    dashboard = (await http.get("/dashboard")).text
    assert re.search(r'<form class="connect-form[^"]*"[^>]*method="post"', dashboard)
    assert 'action="/dashboard/discord"' in dashboard and 'name="csrf"' in dashboard
    async with api_client(web_app) as anon:
        for mode in ("login", "register"):
            page = (await anon.get(f"/{mode}")).text
            assert re.search(rf'<form id="auth-form"[^>]*method="post" action="/{mode}"', page)
            assert 'name="csrf"' in page


async def test_sign_in_form_without_javascript(
    web_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with api_client(web_app) as http:
        await register_user(http, "lin@example.com", PASSWORD)
    async with api_client(web_app) as http:
        await http.get("/login")
        # Without the CSRF field: refused, nobody signed in.
        refused = await form_post(
            http, "/login", {"email": "lin@example.com", "password": PASSWORD}, csrf=False
        )
        assert refused.status_code == 403
        assert "This form has expired" in text_of(refused.text)
        assert "neonrain_session" not in refused.headers.get("set-cookie", "")
        # A wrong password: the form again, with the API's sentence and the email kept.
        wrong = await form_post(
            http, "/login", {"email": "lin@example.com", "password": "not the password"}
        )
        assert wrong.status_code == 401
        assert "The email or password is not right." in wrong.text
        assert "session has ended" not in wrong.text
        assert 'value="lin@example.com"' in wrong.text
        assert "not the password" not in wrong.text
        # Right: on to a local `next`, signed in.
        done = await form_post(
            http,
            "/login",
            {"email": "lin@example.com", "password": PASSWORD, "next": "/settings"},
        )
        assert done.status_code == 303 and done.headers["location"] == "/settings"
        assert (await http.get("/settings")).status_code == 200
    async with api_client(web_app) as http:
        await http.get("/login")
        foreign = await form_post(
            http, "/login", {"email": "lin@example.com", "password": PASSWORD, "next": "//evil"}
        )
        assert foreign.headers["location"] == "/dashboard"
    for record in caplog.records:
        assert PASSWORD not in record.getMessage() and "not the password" not in record.getMessage()


async def test_sign_up_form_without_javascript(web_app: FastAPI) -> None:
    async with api_client(web_app) as http:
        await http.get("/register")
        malformed = await form_post(http, "/register", {"email": "ada@", "password": PASSWORD})
        assert malformed.status_code == 400
        assert "Enter a valid email address" in malformed.text
        short = await form_post(http, "/register", {"email": "ada@example.com", "password": "x"})
        assert "Use 10 to 256 characters." in short.text
        empty = await form_post(http, "/register", {"email": "", "password": PASSWORD})
        assert "Enter your email address." in empty.text
        created = await form_post(
            http, "/register", {"email": "ada@example.com", "password": PASSWORD, "next": "/chat"}
        )
        assert created.status_code == 303 and created.headers["location"] == "/chat"
        assert (await http.get("/api/auth/me")).json()["user"]["email"] == "ada@example.com"
    async with api_client(web_app) as http:
        await http.get("/register")
        fields = {"email": "ada@example.com", "password": PASSWORD}
        taken = await form_post(http, "/register", fields)
        assert taken.status_code == 409
        assert 'id="email-error">' in taken.text and "already" in text_of(taken.text)


async def test_sign_up_form_when_registration_is_closed(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, NEONRAIN_ALLOW_REGISTRATION="false")
    application = create_app(settings)
    async with application.router.lifespan_context(application), api_client(application) as c:
        await c.get("/login")
        refused = await form_post(c, "/register", {"email": "x@example.com", "password": PASSWORD})
        assert refused.status_code == 403
        assert "Sign-ups are closed" in refused.text
        assert (await c.get("/api/auth/me")).status_code == 401


async def test_bot_token_form_without_javascript(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await http.get("/settings")
    rejected = await form_post(
        http, "/dashboard/discord", {"token": "not-a-bot-token", "next": "/settings"}
    )
    assert rejected.status_code == 400
    assert "Discord did not accept this token" in rejected.text
    assert "not-a-bot-token" not in rejected.text
    assert 'id="bot-token"' in rejected.text and 'aria-invalid="true"' in rejected.text
    assert '<h1 class="page-title">Settings</h1>' in rejected.text  # the page it came from
    refused = await form_post(
        http, "/dashboard/discord", {"token": BOT_TOKEN, "next": "/settings"}, csrf=False
    )
    assert refused.status_code == 403
    assert not (await http.get("/api/discord/status", headers=ada.headers)).json()["connected"]
    connected = await form_post(
        http, "/dashboard/discord", {"token": BOT_TOKEN, "next": "https://evil.example/"}
    )
    assert connected.status_code == 303 and connected.headers["location"] == "/dashboard"
    status = (await http.get("/api/discord/status", headers=ada.headers)).json()
    assert status["connected"] and status["bot"]["username"] == "Rainbot"
    for record in caplog.records:
        assert BOT_TOKEN not in record.getMessage()


async def test_password_form_without_javascript(http: httpx.AsyncClient, ada: ApiUser) -> None:
    await http.get("/settings")
    wrong = await form_post(
        http,
        "/settings/password",
        {"currentPassword": "not it at all", "newPassword": "a brand new password"},
    )
    assert wrong.status_code == 400
    assert "The current password is not right." in wrong.text
    short = await form_post(
        http, "/settings/password", {"currentPassword": PASSWORD, "newPassword": "short"}
    )
    assert "Use 10 to 256 characters." in short.text
    changed = await form_post(
        http,
        "/settings/password",
        {"currentPassword": PASSWORD, "newPassword": "a brand new password"},
    )
    assert changed.status_code == 200
    assert "Password changed." in changed.text
    login = await http.post(
        "/api/auth/login", json={"email": ada.email, "password": "a brand new password"}
    )
    assert login.status_code == 200


async def test_sign_out_form_still_works(http: httpx.AsyncClient, ada: ApiUser) -> None:
    await http.get("/dashboard")
    response = await form_post(http, "/logout", {})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert (await http.get("/dashboard")).status_code == 303


# ------------------------------------------------------------------------------------ headers


async def test_security_headers_on_pages_static_files_and_the_api(
    http: httpx.AsyncClient,
) -> None:
    answers = {
        "/": await http.get("/"),
        "/login": await http.get("/login"),
        "/nowhere": await http.get("/nowhere"),
        "/static/neonrain.css": await http.get("/static/neonrain.css"),
        "/static/js/common.js": await http.get("/static/js/common.js"),
        "/api/auth/me": await http.get("/api/auth/me"),
        "/healthz": await http.get("/healthz"),
        "/api/docs": await http.get("/api/docs"),
        "413": await http.post("/api/auth/login", content=b"x" * (1024 * 1024 + 1)),
    }
    assert answers["/nowhere"].status_code == 404 and answers["413"].status_code == 413
    for what, response in answers.items():
        assert response.headers["x-content-type-options"] == "nosniff", what
        assert response.headers["referrer-policy"] == "same-origin", what
        assert response.headers["x-frame-options"] == "DENY", what
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], what
    for what in ("/", "/login", "/nowhere", "/static/neonrain.css", "/static/js/common.js"):
        policy = answers[what].headers["content-security-policy"]
        assert policy == headers.PAGE_POLICY, what
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert (
        answers["/api/auth/me"].headers["content-security-policy"].startswith("default-src 'none'")
    )


def test_templates_carry_no_inline_code() -> None:
    """What the page policy would block: inline scripts, ``on*=`` handlers, style attributes."""
    for template in TEMPLATES.glob("*.html"):
        html = template.read_text()
        for script in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in script or 'type="application/json"' in script, (template, script)
        assert not re.search(r"\son[a-z]+\s*=", html), template
        assert not re.search(r"\sstyle\s*=", html), template


# ------------------------------------------------------------------------------------ little pages


async def test_not_found_page_knows_who_is_asking(http: httpx.AsyncClient) -> None:
    signed_out = await http.get("/no/such/page")
    assert signed_out.status_code == 404
    assert 'href="/login"' in signed_out.text and "Sign out" not in signed_out.text
    await register_user(http)
    signed_in = await http.get("/no/such/page")
    assert signed_in.status_code == 404
    assert "Sign out" in signed_in.text and 'href="/register"' not in signed_in.text
    assert 'name="csrf" value=""' not in signed_in.text  # the sign-out form works from here
    assert "Back to the dashboard" in signed_in.text


async def test_landing_title_and_docs_redirect(http: httpx.AsyncClient) -> None:
    landing = (await http.get("/")).text
    title = re.search(r"<title>(.*?)</title>", landing)
    assert title is not None
    assert "Neonrain · Neonrain" not in title.group(1) and title.group(1).startswith("Neonrain")
    assert "<title>Sign in · Neonrain</title>" in (await http.get("/login")).text
    docs = await http.get("/docs")
    assert docs.status_code == 307 and docs.headers["location"] == "/api/docs"
    assert (await http.get("/api/docs")).status_code == 200
    assert (await http.get("/api/openapi.json")).json()["info"]["title"] == "Neonrain"


async def test_form_addresses_lead_back_to_their_pages(web_app: FastAPI) -> None:
    async with api_client(web_app) as http:
        # Signed out meanwhile: sign in first, then back to the page the form was on.
        await http.get("/login")
        signed_out = await form_post(
            http, "/dashboard/discord", {"token": BOT_TOKEN, "next": "/settings"}
        )
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/login?next=/settings"
        password = await form_post(
            http, "/settings/password", {"currentPassword": "x", "newPassword": "y" * 12}
        )
        assert password.headers["location"] == "/login?next=/settings"
        # The answer page of a form has the form's address: a reload or "back" is a GET there.
        addresses = {"/dashboard/discord": "/dashboard", "/settings/password": "/settings"}
        for path, page in addresses.items():
            answer = await http.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == page
