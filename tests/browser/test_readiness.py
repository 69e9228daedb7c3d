""" "Why is my bot silent?" in Chromium: the worker reports a missing message content intent and
the dashboard says so on the server card, the Discord card and the server page's checklist; the
15 s live refresh (2 s here) follows the worker's reports without a reload; the chat's Activate
prompt says why switching on will not make the bot answer. Screenshots at 1280 and 360 px go to
``test-artifacts/`` (not tracked)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import LiveApp, new_page

pytestmark = pytest.mark.browser

TOKEN = "MTA5OTk5.readiness-browser-token.only-the-fake-knows-it"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "readiness"


@pytest.fixture
def live_settings() -> dict[str, str]:
    # An engine is available (HUMA, never reached here): the intent is what keeps the bot silent.
    return {"HUMA_API_KEY": "readiness-browser-huma-key", "HUMA_API_URL": "http://127.0.0.1:9"}


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def status_report(user_id: str, guild_id: str, *, intent_missing: bool) -> dict[str, Any]:
    """A worker-status body as the worker sends it."""
    entry: dict[str, Any]
    if intent_missing:
        entry = {
            "userId": user_id, "state": "connecting",
            "detail": "gateway connection lost; resuming", "reason": "intent_missing",
        }  # fmt: skip
    else:
        entry = {
            "userId": user_id, "state": "online", "detail": "Connected to 1 server",
            "guildIds": [guild_id],
            "guilds": [{"guildId": guild_id, "present": True, "channelsWatched": 4,
                        "channelsReadable": 4, "channelsSendable": 3}],
        }  # fmt: skip
    return {"tokens": [entry]}


def shoot(page: Any, name: str) -> None:
    """Screenshots at 1280 and 360 px; the page must not scroll sideways at either width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_dashboard_says_why_the_bot_is_silent(browser: Any, live_app: LiveApp) -> None:
    live = live_app
    bot = live.discord(lambda: live.fake.add_bot(TOKEN, "Quietbot"))
    guild = live.discord(lambda: live.fake.add_guild("Silent Hill Club", bots=[bot]))
    guild_id = str(guild.id)
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        registered = http.post(
            "/api/auth/register",
            json={"email": "ada@example.com", "password": "correct horse battery"},
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["token"]
        user_id = registered.json()["user"]["id"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/api/discord/connect", json={"token": TOKEN}, headers=auth).is_success
        added = http.post("/api/servers", json={"guildId": guild_id}, headers=auth)
        assert added.status_code == 201, added.text
        server_id = added.json()["serverId"]
        switched = http.put(f"/api/servers/{server_id}", json={"botActive": True}, headers=auth)
        assert switched.is_success, switched.text

    live.post_internal(
        "/api/discord/worker-status", status_report(user_id, "", intent_missing=True)
    )
    page = new_page(browser, live)
    page.context.add_cookies([{"name": "neonrain_session", "value": token, "url": live.base_url}])

    # ---------------------------------------------------------------- the dashboard
    page.goto("/dashboard")
    card = page.locator(f'.server-card[data-server-id="{server_id}"]')
    state = card.get_by_test_id("server-state")
    expect(state).to_have_attribute("data-state", "not_answering")
    expect(state).to_contain_text("On, but not answering:")
    expect(state).to_contain_text("message content intent")
    expect(state).to_contain_text("Privileged Gateway Intents")
    switch = page.get_by_role("switch", name="Bot active in Silent Hill Club")
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(switch).to_have_attribute("data-state", "not_answering")  # on, but not green
    problems = page.get_by_test_id("account-problems")
    expect(problems).to_contain_text("Why the bot may stay silent")
    expect(problems).to_contain_text("Message content intent: Discord refused")
    expect(page.get_by_test_id("active-count")).to_have_text("1")
    expect(page.get_by_test_id("ready-count")).to_have_text("0")
    expect(page.get_by_test_id("worker-state")).to_have_text("Connecting")
    shoot(page, "dashboard-intent-missing")

    # The owner switches the intent on; the worker reports the bot online in the guild. The
    # dashboard follows without a reload.
    live.post_internal(
        "/api/discord/worker-status", status_report(user_id, guild_id, intent_missing=False)
    )
    expect(state).to_have_text("Active", timeout=8000)
    expect(state).to_have_attribute("data-state", "active")
    expect(switch).to_have_attribute("data-state", "active")
    expect(page.get_by_test_id("ready-count")).to_have_text("1")
    expect(problems).not_to_contain_text("Why the bot may stay silent")
    expect(page.get_by_test_id("worker-state")).to_have_text("Online")

    # ---------------------------------------------------------------- the server page
    page.goto(f"/dashboard/servers/{server_id}")
    badge = page.get_by_test_id("active-badge")
    expect(badge).to_have_text("Active")
    checks = page.locator("#readiness .check")
    expect(checks).to_have_count(7)
    expect(page.locator('#readiness .check[data-state="ok"]')).to_have_count(7)
    expect(page.locator('#readiness [data-check="channels"]')).to_contain_text(
        "reads 4 and can send in 3 of the 4 channels"
    )
    expect(page.locator("#activation-help")).to_contain_text("takes part in this server's")

    # The intent is switched off again: badge, checklist and activation text follow live.
    live.post_internal(
        "/api/discord/worker-status", status_report(user_id, "", intent_missing=True)
    )
    expect(badge).to_contain_text("On, but not answering:", timeout=8000)
    intent = page.locator('#readiness [data-check="intent"]')
    expect(intent).to_have_attribute("data-state", "problem")
    expect(intent).to_contain_text("Message content intent")
    expect(intent).to_contain_text("Developer Portal")
    expect(page.locator('#readiness [data-check="gateway"]')).to_contain_text(
        "Connecting to Discord"
    )
    expect(page.locator("#activation-help")).to_contain_text("cannot answer here yet")
    expect(page.get_by_role("switch", name="Bot active in Silent Hill Club")).to_have_attribute(
        "data-state", "not_answering"
    )
    shoot(page, "server-intent-missing")

    # Switching off and on again from the page: the result says why it will not answer.
    switch = page.get_by_role("switch", name="Bot active in Silent Hill Club")
    switch.click()
    expect(page.locator("#activation-status")).to_have_text(
        "The bot is now off in Silent Hill Club."
    )
    expect(badge).to_have_text("Off", timeout=8000)
    switch.click()
    expect(page.locator("#activation-status")).to_contain_text(
        "Switched on in Silent Hill Club, but the bot is not answering: Discord refused the "
        "message content intent"
    )

    # ---------------------------------------------------------------- the chat's Activate prompt
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        off = http.put(f"/api/servers/{server_id}", json={"botActive": False}, headers=auth)
        assert off.is_success, off.text
        group = http.post("/api/chat/groups", json={"serverId": server_id, "paneCount": 1},
                          headers=auth)  # fmt: skip
        assert group.status_code == 201, group.text
    page.goto(f"/chat?group={group.json()['id']}")
    activate = page.get_by_role("button", name="Activate bot in Silent Hill Club")
    expect(activate).to_be_visible()
    note = page.get_by_test_id("chat-readiness")
    expect(note).to_contain_text("switching it on will not make it answer there yet")
    expect(note).to_contain_text("message content intent")
    activate.click()
    expect(page.locator("#chat-status")).to_contain_text(
        "Switched on in Silent Hill Club, but the bot is not answering: Discord refused the "
        "message content intent"
    )
    expect(activate).to_be_hidden()
    expect(note).to_contain_text("on in Silent Hill Club but not answering on Discord")
    # The worker reports the intent fixed: the chat's note goes away on its own.
    live.post_internal(
        "/api/discord/worker-status", status_report(user_id, guild_id, intent_missing=False)
    )
    expect(note).to_be_hidden(timeout=8000)
    assert not re.search(r"\bundefined\b", page.content())
    assert page.errors == [], page.errors
