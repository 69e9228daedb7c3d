"""The dashboard, server and sign-in pages in Chromium, for what a full journey found: one live
refresh updates every element showing the same fact, feedback says what happened, focus stays
where the person is, and secret forms never put a password or a token into a URL."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import httpx
import pytest

from tests.browser.conftest import (
    CSP_LISTENER,
    TEST_REFRESH_MS,
    LiveApp,
    assert_clean,
    expect,
    new_page,
    signed_in_page,
)
from tests.webapp import free_port

pytestmark = pytest.mark.browser

TOKEN = "MTA1NTU1.live-pages-token.for-the-fake"
PASSWORD = "correct horse battery"
#: A refresh is due within this (the tests refresh every 2 s).
REFRESHED = TEST_REFRESH_MS * 3


class Api:
    """The account's other device: the JSON API with its Bearer token."""

    def __init__(self, live: LiveApp, token: str) -> None:
        self.http = httpx.Client(
            base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.is_success, response.text
        return response.json() if response.content else None


def account(live: LiveApp, guilds: list[str]) -> tuple[str, str, dict[str, str], Api]:
    """A registered account with the fake bot connected and ``guilds`` added: its session token,
    its user id, guild name → server id, and its API."""
    bot = live.discord(lambda: live.fake.add_bot(TOKEN, "Rainbot"))
    found = {name: live.discord(partial(live.fake.add_guild, name, bots=[bot])) for name in guilds}
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        registered = http.post(
            "/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
    token, user = registered.json()["token"], registered.json()["user"]["id"]
    api = Api(live, token)
    api("POST", "/api/discord/connect", {"token": TOKEN})
    servers = {
        name: api("POST", "/api/servers", {"guildId": str(guild.id)})["serverId"]
        for name, guild in found.items()
    }
    return token, user, servers, api


def test_one_refresh_updates_every_copy_of_a_fact(browser: Any, live_app: LiveApp) -> None:
    live = live_app
    token, user, servers, api = account(live, ["Alpha Guild", "Beta Guild"])
    alpha = servers["Alpha Guild"]
    extra = live.discord(lambda: live.fake.add_guild("Gamma Guild", bots=[live.fake.bot(TOKEN)]))

    # ------------------------------------------------ the server page, changed elsewhere
    page = signed_in_page(browser, live, token)
    page.goto(f"/dashboard/servers/{alpha}")
    switch = page.get_by_role("switch", name="Bot active in Alpha Guild")
    expect(page.get_by_test_id("active-badge")).to_have_text("Off")
    api("PUT", f"/api/servers/{alpha}", {"botActive": True, "botName": "Alfie"})
    # Switched on elsewhere; no worker runs here, so the badge says on, not answering yet.
    expect(page.get_by_test_id("active-badge")).to_have_text(
        re.compile(r"^\s*On\b"), timeout=REFRESHED
    )
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(switch.locator(".switch-text")).to_have_text("On")
    expect(page.locator("#activation-help")).to_contain_text("Alfie")
    expect(page.get_by_label("Bot name", exact=True)).to_have_value("Alfie")  # a clean form follows
    # With edits under way, the form keeps them and says what happened.
    page.get_by_label("Personality", exact=True).fill("Typed here")
    api("PUT", f"/api/servers/{alpha}", {"personality": "Saved elsewhere"})
    expect(page.locator("#config-status")).to_contain_text("changed elsewhere", timeout=REFRESHED)
    expect(page.get_by_label("Personality", exact=True)).to_have_value("Typed here")
    # Switching here: the result message outlives the refresh it causes, focus stays on the switch.
    switch.focus()
    page.keyboard.press("Space")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(page.locator("#activation-status")).to_have_text("The bot is now off in Alpha Guild.")
    expect(page.get_by_test_id("active-badge")).to_have_text("Off")
    page.wait_for_timeout(TEST_REFRESH_MS * 1.5)
    expect(page.locator("#activation-status")).to_have_text("The bot is now off in Alpha Guild.")
    assert page.evaluate("() => document.activeElement.id") == "bot-active"
    page.get_by_label("Personality", exact=True).fill("Saved elsewhere")  # no edits left

    # ------------------------------------------------ the dashboard, changed elsewhere
    page.goto("/dashboard")
    card = page.locator(".server-card", has_text="Alpha Guild")
    expect(card.get_by_test_id("card-bot-name")).to_have_text("Alfie")
    api("PUT", f"/api/servers/{alpha}", {"botName": "Renamed Elsewhere"})
    expect(card.get_by_test_id("card-bot-name")).to_have_text(
        "Renamed Elsewhere", timeout=REFRESHED
    )
    api("POST", "/api/servers", {"guildId": str(extra.id)})
    expect(page.get_by_test_id("server-count")).to_have_text("3", timeout=REFRESHED)
    expect(page.locator(".server-card")).to_have_count(3)  # the same refresh: no "3 above 2"
    # A card switch: its message stays after the refresh that redraws the card.
    card_switch = page.get_by_role("switch", name="Bot active in Beta Guild")
    card_switch.click()
    status = page.locator(f"#status-{servers['Beta Guild']}")
    # No worker runs here: switched on, but not promised to answer (readiness).
    expect(status).to_contain_text("Switched on in Beta Guild")
    said = status.inner_text()
    page.wait_for_timeout(TEST_REFRESH_MS * 1.5)
    expect(status).to_have_text(said)
    expect(card_switch).to_have_attribute("aria-checked", "true")

    # ------------------------------------------------ the token rejected: the form, no reload
    expect(page.get_by_label("Bot token")).to_have_count(0)
    live.post_internal(
        "/api/discord/worker-status",
        {"tokens": [{"userId": user, "state": "token_invalid", "detail": "Discord said 401"}]},
    )
    expect(page.get_by_label("Bot token")).to_be_visible(timeout=REFRESHED)
    expect(page.locator("#discord-card")).to_contain_text("no longer accepts the stored token")
    expect(page.get_by_test_id("worker-state")).to_have_text("Token rejected")
    # While a new token is being typed, refreshes leave the card alone.
    page.get_by_label("Bot token").fill("half-typed")
    live.post_internal(
        "/api/discord/worker-status",
        {"tokens": [{"userId": user, "state": "token_invalid", "detail": "still refused"}]},
    )
    page.wait_for_timeout(TEST_REFRESH_MS * 2)
    expect(page.get_by_label("Bot token")).to_have_value("half-typed")
    assert_clean(page)


def test_what_the_pages_say_is_true(browser: Any, live_app: LiveApp) -> None:
    live = live_app
    token, _user, servers, api = account(live, ["Alpha Guild"])
    alpha = servers["Alpha Guild"]
    page = signed_in_page(browser, live, token)
    page.goto(f"/dashboard/servers/{alpha}")

    # A long paste is kept whole and said to be too long, not cut silently.
    personality = page.get_by_label("Personality", exact=True)
    personality.fill("p" * 4100)
    assert len(personality.input_value()) == 4100
    expect(page.locator("#cfg-personality-error")).to_have_text(
        "At most 4,000 characters (now 4,100)."
    )
    expect(page.locator('[data-counter-for="cfg-personality"]')).to_have_text("4,100 / 4,000")
    personality.fill("Calm")
    expect(page.locator("#cfg-personality-error")).to_be_hidden()

    # Save with the keyboard: focus stays on Save (not <body>) once there is nothing to save.
    save = page.get_by_role("button", name="Save", exact=True)
    save.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#config-status")).to_contain_text("Saved")
    expect(save).to_be_disabled()
    assert page.evaluate("() => document.activeElement.id") == "config-save"

    # A failed scrape does not read "Last scraped just now · 0 B".
    closed = f"http://127.0.0.1:{free_port()}/gone"
    page.get_by_label("URL").fill(closed)
    page.get_by_role("button", name="Add website").click()
    row = page.locator(".website-row").first
    expect(row.locator(".status-error")).to_be_visible(timeout=15000)
    meta = row.locator(".website-meta")
    expect(meta).to_contain_text("last attempt")
    expect(meta).not_to_contain_text("Last scraped")
    expect(meta).not_to_contain_text("0 B")

    # The chart's text speaks of one message, not "1 messages".
    guild_id = api("GET", f"/api/servers/{alpha}")["guildId"]
    user_id = api("GET", "/api/auth/me")["user"]["id"]
    live.post_internal(
        "/api/discord/stats",
        {"events": [{"userId": user_id, "guildId": guild_id, "event": "message_received",
                     "count": 1, "at": "2099-01-01T00:00:00Z"}]},
    )  # fmt: skip
    page.reload()
    caption = page.locator(".chart figcaption")
    expect(caption).not_to_contain_text("1 messages")
    assert_clean(page)


def test_sign_in_errors_are_the_servers(browser: Any, live_app: LiveApp) -> None:
    live = live_app
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        created = http.post(
            "/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert created.status_code == 201
    page = new_page(browser, live)
    page.goto("/login")
    page.get_by_label("Email").fill("ada@")
    page.get_by_label("Password").fill("whatever it is")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#email-error")).to_have_text(
        "Enter a valid email address, like name@example.com."
    )
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#auth-error")).to_have_text("The email or password is not right.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    assert_clean(page)


def test_secret_forms_post_even_without_javascript(browser: Any, live_app: LiveApp) -> None:
    live = live_app
    live.discord(lambda: live.fake.add_bot(TOKEN, "Rainbot"))
    context = browser.new_context(base_url=live.base_url, java_script_enabled=False)
    context.add_init_script(CSP_LISTENER)
    context.set_default_timeout(10_000)
    page = context.new_page()
    requests: list[tuple[str, str]] = []
    page.on("request", lambda request: requests.append((request.method, request.url)))

    page.goto("/register?next=/settings")
    page.get_by_label("Email").fill("nojs@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/settings$"))
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Email").fill("nojs@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#auth-error")).to_have_text("The email or password is not right.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.get_by_label("Bot token").fill(TOKEN)
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_test_id("bot-name")).to_have_text("Rainbot")

    posted = [url for method, url in requests if method == "POST"]
    assert {re.sub(r"^http://[^/]+", "", url) for url in posted} >= {
        "/register", "/login", "/logout", "/dashboard/discord",
    }  # fmt: skip
    for _method, url in requests:
        for secret in (PASSWORD, "not the password", TOKEN, "not%20the%20password"):
            assert secret not in url, url
    context.close()
