"""Issue 7's flow in Chromium: register → connect a token (a rejected one first) → add two servers
→ configure each independently → switch one on and off → a website scraped, rescraped, removed →
stats and an agent action appear live → screenshots → remove a server → sign out; a second user
sees none of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveApp, assert_clean, new_page

pytestmark = pytest.mark.browser

TOKEN = "MTA5OTk5.browser-test-token.only-the-fake-knows-it"
PASSWORD = "correct horse battery"
#: (days ago, received, sent) for the chart.
HISTORY = [(d, 5 + (d * 7) % 23, 3 + (d * 5) % 17) for d in range(1, 29, 2)]


@pytest.fixture
def live_settings() -> dict[str, str]:
    """An install with an agent engine (HUMA; never called here), so that a server can be ready."""
    return {"HUMA_API_KEY": "browser-flow-huma-key", "HUMA_API_URL": "http://127.0.0.1:9"}


def guild_report(user_id: str, guild_id: str) -> dict[str, Any]:
    """What the worker reports once it watches the guild: online, in it, channels usable."""
    return {
        "tokens": [
            {
                "userId": user_id, "state": "online", "detail": "Connected to 1 server",
                "guildIds": [guild_id],
                "guilds": [{"guildId": guild_id, "present": True, "channelsWatched": 2,
                            "channelsReadable": 2, "channelsSendable": 2}],
            }
        ]
    }  # fmt: skip


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def register(page: Any, email: str) -> None:
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next=/dashboard$"))
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(re.compile(r"/register\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#password-error")).to_have_text("Use at least 10 characters.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()


def user_id(page: Any) -> str:
    body: dict[str, Any] = page.evaluate("async () => (await (await fetch('/api/auth/me')).json())")
    return str(body["user"]["id"])


def server_id_of(page: Any) -> str:
    match = re.search(r"/dashboard/servers/([^/?#]+)$", page.url)
    assert match, page.url
    return match.group(1)


def add_from_guild_list(page: Any, name: str) -> str:
    page.goto("/dashboard")
    page.get_by_role("button", name="Add server").click()
    expect(page.locator("#guild-list")).to_contain_text(name)
    # With more than 8 guilds a search box narrows the list.
    query = name.split()[0].lower()
    page.get_by_label("Search servers").fill(query)
    expect(page.locator("#guild-list > li")).to_have_count(1)
    expect(page.locator("#guild-status")).to_have_text(f"1 of 10 servers match “{query}”.")
    page.get_by_role("button", name=f"Add {name}", exact=True).click()
    expect(page).to_have_url(re.compile(r"/dashboard/servers/"))
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    return server_id_of(page)


def configure(page: Any, server_id: str, values: dict[str, str]) -> None:
    page.goto(f"/dashboard/servers/{server_id}")
    save = page.get_by_role("button", name="Save", exact=True)
    expect(save).to_be_disabled()
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)
    expect(page.locator("#unsaved-marker")).to_be_visible()
    guarded = page.evaluate(
        "() => { const e = new Event('beforeunload', {cancelable: true});"
        " window.dispatchEvent(e); return e.defaultPrevented; }"
    )
    assert guarded, "leaving with unsaved changes must warn"
    save.click()
    expect(page.locator("#config-status")).to_contain_text("Saved")
    expect(page.locator("#unsaved-marker")).to_be_hidden()
    expect(save).to_be_disabled()


def test_dashboard_flow(browser: Any, live_app: LiveApp, screenshots: Path) -> None:
    live = live_app
    bot = live.discord(lambda: live.fake.add_bot(TOKEN, "Rainbot"))
    alpha = live.discord(lambda: live.fake.add_guild("Alpha Guild", bots=[bot]))
    beta = live.discord(lambda: live.fake.add_guild("Beta Guild", bots=[bot]))
    live.discord(lambda: [live.fake.add_guild(f"Extra {n}", bots=[bot]) for n in range(8)])
    page = new_page(browser, live)

    # ---------------------------------------------------------------- register, connect
    register(page, "ada@example.com")
    expect(page.get_by_text("No servers yet")).to_be_visible()
    token_field = page.get_by_label("Bot token")
    token_field.fill("not-a-real-token")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.locator("#bot-token-error")).to_contain_text("Discord did not accept this token")
    token_field.fill(TOKEN)
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_test_id("bot-name")).to_have_text("Rainbot")
    expect(page.locator("#flash")).to_contain_text("Connected as Rainbot")
    expect(page.get_by_role("link", name=re.compile("Invite to a server"))).to_be_visible()
    expect(page.get_by_test_id("worker-state")).to_have_text("Offline")
    assert TOKEN not in page.content()

    # The worker reports the bot online: the card follows without a reload.
    ada_id = user_id(page)
    live.post_internal(
        "/api/discord/worker-status",
        {"tokens": [{"userId": ada_id, "state": "online", "detail": "Connected to 2 servers"}]},
    )
    expect(page.get_by_test_id("worker-state")).to_have_text("Online", timeout=8000)

    # ---------------------------------------------------------------- two servers
    alpha_id = add_from_guild_list(page, "Alpha Guild")
    beta_id = add_from_guild_list(page, "Beta Guild")
    page.goto("/dashboard")
    page.get_by_role("button", name="Add server").click()
    expect(page.get_by_role("link", name="Alpha Guild is already added; open it")).to_be_visible()
    expect(page.get_by_role("link", name="Beta Guild is already added; open it")).to_be_visible()
    expect(page.get_by_test_id("server-count")).to_have_text("2")

    configure(page, alpha_id, {"Bot name": "Alfie", "Personality": "Cheerful pirate",
                               "Rules": "Only talk about ships"})  # fmt: skip
    configure(page, beta_id, {"Bot name": "Betty", "Personality": "Calm librarian",
                              "Information": "Opening hours: 9 to 5"})  # fmt: skip
    # The character counter follows the text against the API's limit.
    expect(page.locator('[data-counter-for="cfg-personality"]')).to_have_text("14 / 4,000")
    for server_id, name, personality, rules, information in (
        (alpha_id, "Alfie", "Cheerful pirate", "Only talk about ships", ""),
        (beta_id, "Betty", "Calm librarian", "", "Opening hours: 9 to 5"),
    ):
        page.goto(f"/dashboard/servers/{server_id}")
        page.reload()
        expect(page.get_by_label("Bot name", exact=True)).to_have_value(name)
        expect(page.get_by_label("Personality", exact=True)).to_have_value(personality)
        expect(page.get_by_label("Rules", exact=True)).to_have_value(rules)
        expect(page.get_by_label("Information", exact=True)).to_have_value(information)

    # ---------------------------------------------------------------- on and off
    page.goto(f"/dashboard/servers/{alpha_id}")
    switch = page.get_by_role("switch", name="Bot active in Alpha Guild")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    # The worker has not reported on the guild yet: on, but not promised to answer.
    expect(page.locator("#activation-status")).to_contain_text(
        "Switched on in Alpha Guild; checking that the bot can answer there"
    )
    expect(page.get_by_test_id("active-badge")).to_have_text("On — checking…")
    live.post_internal("/api/discord/worker-status", guild_report(ada_id, str(alpha.id)))
    expect(page.get_by_test_id("active-badge")).to_have_text("Active", timeout=8000)
    expect(page.locator("#bot-active")).to_have_attribute("data-state", "active")
    expect(page.locator('#readiness [data-state="ok"]')).to_have_count(7)
    page.goto("/dashboard")
    card_switch = page.get_by_role("switch", name="Bot active in Alpha Guild")
    expect(card_switch).to_have_attribute("aria-checked", "true")
    card_switch.focus()
    page.keyboard.press("Space")  # keyboard operable
    expect(card_switch).to_have_attribute("aria-checked", "false")
    page.reload()
    expect(page.get_by_role("switch", name="Bot active in Alpha Guild")).to_have_attribute(
        "aria-checked", "false"
    )
    card_switch = page.get_by_role("switch", name="Bot active in Alpha Guild")
    card_switch.click()
    expect(card_switch).to_have_attribute("aria-checked", "true")

    # ---------------------------------------------------------------- a website
    page.goto(f"/dashboard/servers/{alpha_id}")
    expect(page.get_by_text("No websites yet")).to_be_visible()
    page.get_by_label("URL").fill("ftp://example.com/file")
    page.get_by_role("button", name="Add website").click()
    expect(page.locator("#website-url-error")).to_contain_text("http:// or https://")
    page.get_by_label("URL").fill(live.scrape.url)
    page.get_by_label("Name (optional)").fill("Rain Wiki")
    page.get_by_role("button", name="Add website").click()
    row = page.locator(".website-row").filter(has_text="Rain Wiki")
    expect(row).to_be_visible()
    expect(row.locator(".status-success")).to_be_visible(timeout=15000)
    expect(row).to_have_attribute("data-scrape-status", "idle")
    expect(page.locator("#website-status")).to_contain_text("Rain Wiki")
    hits = live.scrape.hits
    assert hits >= 1
    # Adding it twice is refused inline.
    page.get_by_label("URL").fill(live.scrape.url)
    page.get_by_role("button", name="Add website").click()
    expect(page.locator("#website-url-error")).to_contain_text("already")
    page.get_by_label("URL").fill("")

    row.get_by_role("button", name=re.compile("^Rescrape")).click()
    expect(page.locator("#website-status")).to_contain_text("Rain Wiki was scraped", timeout=15000)
    expect(row.get_by_role("button", name=re.compile("^Rescrape"))).to_be_enabled()
    assert live.scrape.hits > hits

    # ---------------------------------------------------------------- stats and an action
    now = datetime.now(UTC).isoformat()
    alpha_guild_id = page.evaluate(
        f"async () => (await (await fetch('/api/servers/{alpha_id}')).json()).guildId"
    )
    # Some history for the 30-day chart (and the screenshots), then today's messages.
    events = []
    for days_ago, received, sent in [*HISTORY, (0, 12, 9)]:
        at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
        events += [
            {"userId": ada_id, "guildId": alpha_guild_id, "event": "message_received",
             "count": received, "at": at},
            {"userId": ada_id, "guildId": alpha_guild_id, "event": "message_sent",
             "count": sent, "at": at},
        ]  # fmt: skip
    live.post_internal("/api/discord/stats", {"events": events})
    total_received = 12 + sum(r for _d, r, _s in HISTORY)
    total_sent = 9 + sum(s for _d, _r, s in HISTORY)
    live.post_internal(
        "/api/discord/agent-actions",
        {
            "userId": ada_id, "guildId": alpha_guild_id, "channelId": "42",
            "channelName": "general", "agentMessage": "Ahoy! The next meetup is on Friday.",
            "triggerDescription": "ana asked when the next meetup is",
            "messageHistory": {
                "preceding": [
                    {"author": name, "authorId": str(i), "content": text,
                     "timestamp": now}
                    for i, (name, text) in enumerate([
                        ("bo", "hi all"), ("cy", "<script>alert(1)</script>"),
                        ("dee", "anyone around?"), ("ana", "when is the next meetup?"),
                    ])
                ],
                "agentResponse": {"content": "Ahoy! The next meetup is on Friday."},
            },
        },
    )  # fmt: skip
    expect(page.get_by_test_id("server-received")).to_have_text(str(total_received), timeout=8000)
    expect(page.get_by_test_id("server-sent")).to_have_text(str(total_sent))
    action = page.locator(".action-item").first
    expect(action).to_contain_text("ana asked when the next meetup is", timeout=8000)
    expect(page.locator("#actions-empty")).to_be_hidden()
    expect(action.locator(".reply")).to_contain_text("Ahoy!")
    expect(action.get_by_text("hi all")).to_be_hidden()  # the oldest of 4 is collapsed
    expect(action.get_by_text("<script>alert(1)</script>")).to_be_visible()  # shown as text
    action.get_by_role("button", name="Show all 4 earlier messages").click()
    expect(action.get_by_text("hi all")).to_be_visible()
    action.get_by_role("button", name="Copy as Markdown").click()
    expect(action.locator("[data-copy-status]")).to_have_text("Copied.")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert "**#general**" in copied and "**Reply:** Ahoy!" in copied
    expect(page.get_by_role("img", name="Messages per day, last 30 days")).to_be_visible()

    page.goto("/dashboard")
    expect(page.get_by_test_id("total-received")).to_have_text(str(total_received))
    rate = round(total_sent / total_received * 100)
    expect(page.get_by_test_id("response-rate")).to_have_text(f"{rate}%")

    # ---------------------------------------------------------------- screenshots
    live.post_internal("/api/discord/worker-status", guild_report(ada_id, str(alpha.id)))
    shoot(page, screenshots, "dashboard", "/dashboard")
    shoot(page, screenshots, "server", f"/dashboard/servers/{alpha_id}")
    page.set_viewport_size({"width": 1280, "height": 900})

    # ---------------------------------------------------------------- remove the website
    page.goto(f"/dashboard/servers/{alpha_id}")
    row = page.locator(".website-row").filter(has_text="Rain Wiki")
    row.get_by_role("button", name=re.compile("^Remove")).click()
    dialog = page.get_by_role("dialog", name="Remove this website?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # cancelling keeps it
    expect(dialog).to_be_hidden()
    expect(row).to_be_visible()
    row.get_by_role("button", name=re.compile("^Remove")).click()
    page.get_by_role("button", name="Remove website").click()
    expect(row).to_have_count(0)
    expect(page.get_by_text("No websites yet")).to_be_visible()

    # ---------------------------------------------------------------- remove a server
    page.goto(f"/dashboard/servers/{beta_id}")
    page.get_by_role("button", name="Remove server").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove server").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("#flash")).to_contain_text("Beta Guild was removed")
    expect(page.locator(".server-card")).to_have_count(1)
    expect(page.get_by_role("link", name="Alpha Guild", exact=True)).to_be_visible()
    assert live.discord(lambda: live.fake.guild(beta.id).name) == "Beta Guild"

    # ---------------------------------------------------------------- sign out
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert_clean(page)

    # ---------------------------------------------------------------- a second user
    other = new_page(browser, live)
    register(other, "grace@example.com")
    expect(other.get_by_text("No servers yet")).to_be_visible()
    expect(other.locator(".server-card")).to_have_count(0)
    assert "Alpha Guild" not in other.content()
    response = other.goto(f"/dashboard/servers/{alpha_id}")
    assert response is not None and response.status == 404
    expect(other.get_by_role("heading", name="Nothing here")).to_be_visible()
    assert "Alpha Guild" not in other.content()
    assert_clean(other)


def shoot(page: Any, folder: Path, name: str, path: str) -> None:
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(path)
        page.wait_for_load_state("networkidle")
        page.evaluate("() => document.fonts.ready")
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
