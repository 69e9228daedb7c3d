"""Issue 8's /chat in Chromium against the real app, the fake Discord and the fake HUMA: a 3-pane
chat on one server, personas, send to all, three replies, the sidebar's server filter, the bot
switch from the chat header, a reload that finds everything, and screenshots (1280 and 360 px)."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn

from neonrain.app import create_app
from tests.browser.conftest import assert_clean, new_page
from tests.conftest import make_settings
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_huma import FakeHuma
from tests.webapp import ThreadLoop, free_port

pytestmark = pytest.mark.browser

TOKEN = "MTA5OTk5.chat-browser-token.only-the-fake-knows-it"
HUMA_KEY = "chat-browser-huma-key"
PASSWORD = "correct horse battery"


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@dataclass
class ChatLive:
    base_url: str
    discord: FakeDiscord
    huma: FakeHuma
    loop: ThreadLoop


@pytest.fixture
def chat_live(tmp_path: Path, sqlite_template: Path) -> Iterator[ChatLive]:
    database = tmp_path / "chat.db"
    shutil.copyfile(sqlite_template, database)
    loop = ThreadLoop("chat-fakes")
    discord = loop.run(FakeDiscord().start())
    huma = loop.run(FakeHuma(api_key=HUMA_KEY).start())
    settings = make_settings(
        f"sqlite+aiosqlite:///{database}",
        tmp_path,
        DISCORD_API_URL=discord.api_url,
        HUMA_API_URL=huma.url,
        HUMA_API_KEY=HUMA_KEY,
        NEONRAIN_TYPING_WPM=600,
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="neonrain-chat", daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the app did not start within 10 s")
        yield ChatLive(f"http://127.0.0.1:{port}", discord, huma, loop)
    finally:
        server.should_exit = True
        thread.join(15)
        loop.run(huma.stop())
        loop.run(discord.stop())
        loop.close()


def _setup_account(live: ChatLive) -> tuple[str, dict[str, str]]:
    """An account with a connected bot and two configured servers (via the API)."""
    bot = live.loop.call(lambda: live.discord.add_bot(TOKEN, "Rainbot"))
    rust = live.loop.call(lambda: live.discord.add_guild("Rust Lovers", bots=[bot]))
    cats = live.loop.call(lambda: live.discord.add_guild("Cat Cafe", bots=[bot]))
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        response = http.post(
            "/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        token = response.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/api/discord/connect", json={"token": TOKEN}, headers=auth).is_success
        ids: dict[str, str] = {}
        for guild, bot_name in ((rust, "Ferris"), (cats, "Whiskers")):
            response = http.post("/api/servers", json={"guildId": str(guild.id)}, headers=auth)
            assert response.status_code == 201, response.text
            server_id = response.json()["serverId"]
            response = http.put(
                f"/api/servers/{server_id}",
                json={"botName": bot_name, "personality": f"{bot_name} is friendly."},
                headers=auth,
            )
            assert response.is_success, response.text
            ids[guild.name] = server_id
    return token, ids


def _signed_in_page(browser: Any, live: ChatLive, token: str, width: int, height: int) -> Any:
    page = new_page(browser, cast(Any, live), width=width, height=height)
    page.context.add_cookies([{"name": "neonrain_session", "value": token, "url": live.base_url}])
    return page


def test_three_pane_chat_flow(browser: Any, chat_live: ChatLive, screenshots: Path) -> None:
    live = chat_live
    live.loop.call(lambda: live.huma.script(reply="Hello from the **agent**!"))
    token, servers = _setup_account(live)
    page = _signed_in_page(browser, live, token, 1280, 900)
    page.goto("/chat")
    expect(page.locator("#chat-empty")).to_be_visible()

    # New chat: the dialog closes with Escape and by clicking outside, needs a server.
    page.get_by_role("button", name="New chat").click()
    dialog = page.locator("#new-chat-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="New chat").click()
    page.mouse.click(5, 5)
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="New chat").click()
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#new-chat-server-error")).to_contain_text("Choose the server")
    page.locator("#new-chat-server").select_option(servers["Rust Lovers"])
    dialog.get_by_role("radio", name="3 panes").check()
    page.get_by_role("button", name="Create").click()
    expect(dialog).to_be_hidden()
    panes = page.locator(".pane")
    expect(panes).to_have_count(3)
    expect(page.locator(".conn-state[data-state=connected]")).to_have_count(3)
    expect(page.locator("#chat-subtitle")).to_contain_text("Rust Lovers · Ferris · 3 panes")

    # A persona, chosen in pane 2.
    page.get_by_role("button", name="Personas").click()
    page.locator("#persona-nickname").fill("Captain")
    page.get_by_role("button", name="Create persona").click()
    expect(page.locator("#persona-list")).to_contain_text("Captain")
    page.get_by_role("button", name="Close").click()
    panes.nth(1).locator(".persona-chip").select_option("Captain")

    # Send to all: three echoes, three replies.
    page.locator("#send-all-input").fill("hello everyone")
    page.get_by_role("button", name="Send to all").click()
    expect(page.locator("#send-all-status")).to_have_text("Sent to all 3 panes.")
    for index in range(3):
        pane = panes.nth(index)
        expect(pane.locator(".message-assistant")).to_have_count(1)
        expect(pane.locator(".message-assistant .message-body strong")).to_have_text("agent")
        expect(pane.locator(".message-user .message-body")).to_have_text("hello everyone")
    expect(panes.nth(1).locator(".message-user .message-author")).to_have_text("Captain")
    expect(panes.nth(0).locator(".message-user .message-author")).to_have_text("ada")
    expect(panes.nth(0).locator(".message-assistant .message-author")).to_have_text("Ferris")
    expect(page.locator("#chat-title")).to_have_text("hello everyone")

    # A single pane's own input.
    panes.nth(2).locator("textarea").fill("just pane three")
    panes.nth(2).get_by_role("button", name="Send").click()
    expect(panes.nth(2).locator(".message-assistant")).to_have_count(2)
    expect(panes.nth(2).locator("textarea")).to_have_value("")
    page.locator(".message-list").first.evaluate("el => el.closest('.messages').scrollTop = 0")
    page.screenshot(path=str(screenshots / "chat-1280.png"))

    # Activate the chat's server bot from the header.
    activate = page.get_by_role("button", name="Activate bot in Rust Lovers")
    expect(activate).to_be_visible()
    activate.click()
    expect(page.locator("#chat-status")).to_contain_text("The bot is now active in Rust Lovers")
    expect(activate).to_be_hidden()

    # A second chat on the other server; the sidebar groups and filters by server.
    page.get_by_role("button", name="New chat").click()
    page.locator("#new-chat-server").select_option(servers["Cat Cafe"])
    dialog.get_by_role("radio", name="1 pane").check()
    page.get_by_role("button", name="Create").click()
    expect(panes).to_have_count(1)
    expect(page.locator(".chat-server-name")).to_have_count(2)
    page.locator("#server-filter").select_option(servers["Rust Lovers"])
    expect(page.locator(".chat-item")).to_have_count(1)
    expect(page.locator(".chat-item")).to_contain_text("hello everyone")
    page.locator("#server-filter").select_option("")
    expect(page.locator(".chat-item")).to_have_count(2)

    # Reload the 3-pane chat: everything is still there.
    page.locator(".chat-item-link", has_text="hello everyone").click()
    expect(panes).to_have_count(3)
    expect(page).to_have_url(re.compile(r"/chat\?group="))
    page.reload()
    expect(panes).to_have_count(3)
    expect(page.locator(".message-assistant")).to_have_count(4)
    expect(panes.nth(1).locator(".message-user .message-author")).to_have_text("Captain")
    expect(panes.nth(1).locator(".persona-chip")).to_have_value("Captain")
    expect(page.locator(".conn-state[data-state=connected]")).to_have_count(3)
    assert_clean(page)

    # 360 px: panes become tabs, the sidebar collapses.
    small = _signed_in_page(browser, live, token, 360, 780)
    small.goto(page.url)
    expect(small.locator(".pane.active")).to_have_count(1)
    expect(small.locator("#pane-tabs")).to_be_visible()
    expect(small.locator("#chat-list")).to_be_hidden()
    small.get_by_role("tab", name="Pane 2").click()
    expect(small.locator(".pane.active .message-user .message-author")).to_have_text("Captain")
    small.screenshot(path=str(screenshots / "chat-360.png"), full_page=True)
    small.get_by_role("button", name="Chats").click()
    expect(small.locator("#chat-list")).to_be_visible()
    assert_clean(small)
