"""Issue 8's /chat in Chromium against the real app, the fake Discord and the fake HUMA: a 3-pane
chat on one server, personas, send to all, three replies, the sidebar's server filter, the bot
switch from the chat header, a reload that finds everything, and screenshots (1280 and 360 px)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    ChatLive,
    assert_clean,
    expect,
    setup_chat_account,
    signed_in_page,
)

pytestmark = pytest.mark.browser


def test_three_pane_chat_flow(browser: Any, chat_live: ChatLive, screenshots: Path) -> None:
    live = chat_live
    live.loop.call(lambda: live.huma.script(reply="Hello from the **agent**!"))
    token, servers = setup_chat_account(live)
    page = signed_in_page(browser, live, token, 1280, 900)
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
    # No Discord worker runs here, and the chat says so instead of promising answers.
    expect(page.locator("#chat-status")).to_contain_text(
        "Switched on in Rust Lovers, but the bot is not answering: The Discord worker has not "
        "picked up this bot yet"
    )
    expect(page.get_by_test_id("chat-readiness")).to_contain_text("not answering on Discord")
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
    small = signed_in_page(browser, live, token, 360, 780)
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
