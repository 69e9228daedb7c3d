"""Every page in Chromium at 1280 and 360 px with the longest names the API allows (unbroken, so
nothing can wrap at a space): no page scrolls sideways, the controls stay on screen, and no page
breaks its Content-Security-Policy. Screenshots go to a temporary folder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import LiveApp, assert_clean, expect, new_page, signed_in_page

pytestmark = pytest.mark.browser

TOKEN = "MTA2NjY2.every-page-token.for-the-fake"
PASSWORD = "correct horse battery"
GUILD_NAME = "G" * 100  # Discord's longest guild name
BOT_USERNAME = "B" * 32  # Discord's longest username
BOT_NAME = "N" * 32  # botName's limit
WEBSITE_NAME = "W" * 100
PERSONA = "P" * 32
CHAT_TITLE = "T" * 100
CHANNEL = "c" * 100
EMAIL = f"{'e' * 64}@{'d' * 60}.example"
WIDTHS = (1280, 360)


@dataclass
class Account:
    token: str
    user_id: str
    server_id: str
    groups: dict[int, str]  # pane count → group id


@pytest.fixture
def account(live_app: LiveApp) -> Iterator[Account]:
    live = live_app
    bot = live.discord(lambda: live.fake.add_bot(TOKEN, BOT_USERNAME))
    guild = live.discord(lambda: live.fake.add_guild(GUILD_NAME, bots=[bot]))
    with httpx.Client(base_url=live.base_url, timeout=15) as http:
        registered = http.post("/api/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        token = registered.json()["token"]
        user_id = registered.json()["user"]["id"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/api/discord/connect", json={"token": TOKEN}, headers=auth).is_success
        added = http.post("/api/servers", json={"guildId": str(guild.id)}, headers=auth)
        assert added.status_code == 201, added.text
        server_id = added.json()["serverId"]
        long_text = "x" * 600
        configured = http.put(
            f"/api/servers/{server_id}",
            json={"botName": BOT_NAME, "personality": long_text, "rules": long_text},
            headers=auth,
        )
        assert configured.is_success, configured.text
        url = f"{live.scrape.url}/{'p' * 400}?{'q' * 300}"
        site = http.post(
            f"/api/servers/{server_id}/websites",
            json={"url": url, "name": WEBSITE_NAME},
            headers=auth,
        )
        assert site.status_code == 201, site.text
        persona = http.post("/api/chat/personas", json={"nickname": PERSONA}, headers=auth)
        assert persona.status_code == 201, persona.text
        groups: dict[int, str] = {}
        for panes in (1, 3, 5):
            group = http.post(
                "/api/chat/groups", json={"serverId": server_id, "paneCount": panes}, headers=auth
            )
            assert group.status_code == 201, group.text
            groups[panes] = group.json()["id"]
            renamed = http.patch(
                f"/api/chat/groups/{groups[panes]}", json={"title": CHAT_TITLE}, headers=auth
            )
            assert renamed.is_success, renamed.text
    live.post_internal(
        "/api/discord/agent-actions",
        {
            "userId": user_id, "guildId": str(guild.id), "channelId": "7",
            "channelName": CHANNEL, "agentMessage": "r" * 2000,
            "triggerDescription": "t" * 500,
            "messageHistory": {"preceding": [
                {"author": "a" * 32, "authorId": str(n), "content": "m" * 2000,
                 "timestamp": "2026-01-01T00:00:00Z"} for n in range(4)
            ]},
        },
    )  # fmt: skip
    yield Account(token, user_id, server_id, groups)


PARTS = {
    "server": (".server-header", "#activation-card", "#websites-section", ".action-item"),
    "chat-5": (".chat-header", "#panes"),
}


def shot_name(path: str, account: Account) -> str:
    for panes, group in account.groups.items():
        if group in path:
            return f"chat-{panes}"
    if account.server_id in path:
        return "server"
    return re.sub(r"\W+", "_", path).strip("_") or "home"


def check_width(page: Any, what: str, width: int) -> None:
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, f"{what} at {width} px is {scroll} px wide"


def check_on_screen(page: Any, selector: str, width: int) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)


def test_every_page_fits_360_px_with_the_longest_names(
    browser: Any, live_app: LiveApp, account: Account, tmp_path: Path
) -> None:
    live = live_app
    server_path = f"/dashboard/servers/{account.server_id}"
    signed_out = ["/", "/login", "/register", "/nowhere"]
    signed_in_pages = [
        "/",
        "/dashboard",
        server_path,
        "/settings",
        "/nowhere",
        *(f"/chat?group={account.groups[n]}" for n in (1, 3, 5)),
    ]
    for width in WIDTHS:
        anonymous = new_page(browser, live, width=width, height=800)
        for path in signed_out:
            anonymous.goto(path)
            anonymous.wait_for_load_state("networkidle")
            check_width(anonymous, path, width)
            name = re.sub(r"\W+", "_", path).strip("_") or "landing"
            anonymous.screenshot(path=str(tmp_path / f"out-{name}-{width}.png"), full_page=True)
        assert_clean(anonymous)

        page = signed_in_page(browser, live, account.token, width, 800)
        for path in signed_in_pages:
            page.goto(path)
            if path.startswith("/chat"):
                expect(page.locator("body[data-chat-ready=true]")).to_have_count(1)
            page.wait_for_load_state("networkidle")
            check_width(page, path, width)
            name = shot_name(path, account)
            page.screenshot(path=str(tmp_path / f"in-{name}-{width}.png"), full_page=True)
            for part in PARTS.get(name, ()):  # the interesting parts of long pages, for a look
                part_name = re.sub(r"\W+", "", part)
                page.locator(part).first.screenshot(
                    path=str(tmp_path / f"part-{name}-{part_name}-{width}.png")
                )

        # The controls next to long names stay on screen.
        page.goto("/dashboard")
        check_on_screen(page, "[data-toggle-server]", width)
        expect(page.get_by_test_id("card-bot-name")).to_have_text(BOT_NAME)
        page.get_by_role("button", name="Add server").click()
        expect(page.locator("#guild-list > li")).to_have_count(1)
        check_width(page, "the Add server list", width)
        page.goto(server_path)
        check_on_screen(page, "#bot-active", width)
        check_on_screen(page, ".website-row [data-action=rescrape]", width)
        page.get_by_role("button", name="Remove server").click()
        expect(page.get_by_role("dialog")).to_be_visible()
        check_width(page, "the Remove server dialog", width)
        check_on_screen(page, "#confirm-ok", width)
        page.screenshot(path=str(tmp_path / f"dialog-{width}.png"))
        page.keyboard.press("Escape")
        page.goto(f"/chat?group={account.groups[1]}")
        activate = page.get_by_role("button", name=f"Activate bot in {GUILD_NAME}")
        expect(activate).to_be_visible()
        check_on_screen(page, "#activate-bot", width)
        page.get_by_role("button", name="Personas").click()
        check_width(page, "the Personas dialog", width)
        page.keyboard.press("Escape")
        assert_clean(page)
