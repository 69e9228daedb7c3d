"""/chat in Chromium for what a keyboard-only journey found: pane tabs reachable with the arrow
keys, focus going where the work is, five usable panes at 1280 px, notices that belong to their
chat and stay long enough, a loader while chats load, and persona names readable whatever the
colour."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import (
    TEST_REFRESH_MS,
    ChatLive,
    assert_clean,
    expect,
    setup_chat_account,
    signed_in_page,
)

pytestmark = pytest.mark.browser

#: WCAG contrast of the computed colour of ``element`` against the pane's background.
CONTRAST = """(element) => {
  const rgb = (text) => text.match(/\\d+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const fg = lum(rgb(getComputedStyle(element).color));
  const bg = lum(rgb(getComputedStyle(element.closest(".pane")).backgroundColor));
  return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
}"""


def active_id(page: Any) -> str:
    return str(page.evaluate("() => document.activeElement.id || document.activeElement.tagName"))


def new_chat(page: Any, server_id: str, panes: int) -> None:
    page.get_by_role("button", name="New chat").click()
    page.locator("#new-chat-server").select_option(server_id)
    page.locator("#new-chat-dialog").get_by_role("radio", name=f"{panes} pane").check()
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".pane")).to_have_count(panes)


def test_keyboard_tabs_focus_and_five_panes(browser: Any, chat_live: ChatLive) -> None:
    live = chat_live
    token, servers = setup_chat_account(live)

    # ------------------------------------------------ 360 px: tabs and arrow keys
    small = signed_in_page(browser, live, token, 360, 780)
    small.goto("/chat")
    expect(small.locator("#chat-empty")).to_be_visible()
    new_chat(small, servers["Rust Lovers"], 3)
    # After Create, the keyboard is in the new chat's first pane, not back on "New chat".
    expect(small.locator(".pane.active textarea")).to_be_focused()
    tabs = small.get_by_role("tab")
    expect(tabs).to_have_count(3)
    assert [tabs.nth(i).get_attribute("tabindex") for i in range(3)] == ["0", "-1", "-1"]
    tabs.first.focus()
    small.keyboard.press("ArrowRight")
    expect(tabs.nth(1)).to_be_focused()
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    expect(small.locator(".pane.active .pane-title")).to_have_text("Pane 2")
    small.keyboard.press("End")
    expect(tabs.nth(2)).to_be_focused()
    expect(small.locator(".pane.active .pane-title")).to_have_text("Pane 3")
    small.keyboard.press("ArrowRight")  # wraps around
    expect(tabs.first).to_be_focused()
    small.keyboard.press("ArrowLeft")
    expect(tabs.nth(2)).to_be_focused()
    small.keyboard.press("Home")
    expect(tabs.first).to_have_attribute("aria-selected", "true")
    assert [tabs.nth(i).get_attribute("tabindex") for i in range(3)] == ["0", "-1", "-1"]
    # Tab from the tab list reaches the active pane, not a hidden one.
    small.keyboard.press("Tab")
    assert small.evaluate("() => document.activeElement.closest('.pane.active') !== null")

    # ------------------------------------------------ rename with the keyboard
    small.get_by_role("button", name="Chats").click()
    item = small.locator(".chat-item").first
    item.get_by_role("button", name="Rename").click()
    small.keyboard.press("Control+A")
    small.keyboard.type("Renamed by keyboard")
    small.keyboard.press("Enter")
    expect(small.locator("#sidebar-status")).to_have_text("Renamed.")
    expect(small.locator(".chat-item").first).to_contain_text("Renamed by keyboard")
    assert small.evaluate("() => document.activeElement.dataset.renameGroup !== undefined")
    assert_clean(small)

    # ------------------------------------------------ 1280 px: five panes, each a usable box
    page = signed_in_page(browser, live, token, 1280, 900)
    page.goto("/chat")
    new_chat(page, servers["Cat Cafe"], 5)
    expect(page.locator(".conn-state[data-state=connected]")).to_have_count(5)
    widths = page.locator(".pane textarea").evaluate_all(
        "(boxes) => boxes.map((b) => b.getBoundingClientRect().width)"
    )
    assert len(widths) == 5 and min(widths) >= 180, widths
    heights = page.locator(".pane .messages").evaluate_all(
        "(lists) => lists.map((l) => l.getBoundingClientRect().height)"
    )
    assert min(heights) >= 90, heights
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    assert_clean(page)


def test_notices_belong_to_their_chat_and_stay(browser: Any, chat_live: ChatLive) -> None:
    live = chat_live
    live.loop.call(lambda: live.huma.script(reply="Hi there"))
    token, servers = setup_chat_account(live)
    auth = {"Authorization": f"Bearer {token}"}
    page = signed_in_page(browser, live, token, 1280, 900)

    # While the chats load there is a loader, not the empty "Start a chat" state.
    held: list[Any] = []
    page.route("**/api/chat/groups", lambda route: held.append(route))
    page.goto("/chat")
    expect(page.locator("#chat-loading")).to_be_visible()
    expect(page.locator("#chat-empty")).to_be_hidden()
    page.wait_for_timeout(300)
    assert held, "the groups request was not held"
    for route in held:
        route.continue_()
    page.unroute("**/api/chat/groups")
    expect(page.locator("#chat-loading")).to_be_hidden()
    expect(page.locator("#chat-empty")).to_be_visible()

    new_chat(page, servers["Rust Lovers"], 1)
    rust_chat = page.url
    page.get_by_role("button", name="Activate bot in Rust Lovers").click()
    # No worker runs here, so the notice says the bot is on but not answering yet (readiness).
    expect(page.locator("#chat-status")).to_contain_text("Switched on in Rust Lovers")
    new_chat(page, servers["Cat Cafe"], 1)
    # The Rust Lovers notice is not shown on the Cat Cafe chat.
    expect(page.locator("#chat-status")).to_be_hidden()
    expect(page.get_by_role("button", name="Activate bot in Cat Cafe")).to_be_visible()

    # A long paste is kept and said to be too long; nothing is sent.
    box = page.locator(".pane textarea")
    box.fill("x" * 4100)
    assert len(box.input_value()) == 4100
    error = page.locator(".pane-error")
    expect(error).to_contain_text("at most 4,000 characters; this one has 4,100")
    page.locator(".pane").get_by_role("button", name="Send").click()
    expect(error).to_contain_text("at most 4,000")
    expect(page.locator(".message")).to_have_count(0)
    box.fill("")

    # A dark custom colour still gives a readable name.
    with httpx.Client(base_url=live.base_url, timeout=10, headers=auth) as http:
        persona = http.post("/api/chat/personas", json={"nickname": "Navy", "color": "#000080"})
        assert persona.status_code == 201, persona.text
    page.reload()
    page.locator(".persona-chip").select_option("Navy")
    box.fill("hello from navy")
    page.locator(".pane").get_by_role("button", name="Send").click()
    author = page.locator(".message-user .message-author")
    expect(author).to_have_text("Navy")
    assert author.evaluate(CONTRAST) >= 4.5
    bot_author = page.locator(".message-assistant .message-author")
    expect(bot_author).to_have_count(1)
    assert bot_author.evaluate(CONTRAST) >= 4.5

    # The server removed elsewhere: no Activate button for it, read-only panes, no Retry.
    with httpx.Client(base_url=live.base_url, timeout=10, headers=auth) as http:
        assert http.delete(f"/api/servers/{servers['Cat Cafe']}").status_code == 204
    expect(page.locator(".pane textarea")).to_be_disabled(timeout=TEST_REFRESH_MS * 10)
    expect(page.locator("#activate-bot")).to_be_hidden()
    expect(page.locator(".pane").get_by_role("button", name="Retry")).to_be_hidden()
    expect(page.locator(".conn-state")).to_contain_text("read-only")
    expect(page.locator(".chat-item.current")).to_contain_text("read-only")

    # "Chat deleted." is still there after the list reloads.
    page.goto(rust_chat)
    item = page.locator(".chat-item.current")
    item.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete chat").click()
    status = page.locator("#sidebar-status")
    expect(status).to_contain_text("deleted")
    page.wait_for_timeout(1000)
    expect(status).to_contain_text("deleted")
    expect(page.locator(".chat-item")).to_have_count(1)
    assert active_id(page) != "BODY"
    assert_clean(page)
