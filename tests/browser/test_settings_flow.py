"""More of the pages in Chromium: agent actions' "Load more", disconnecting the bot (and what the
server page says then), changing the password, deleting the account by typing its email."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import LiveApp, assert_clean, new_page
from tests.browser.test_dashboard_flow import PASSWORD, expect, register, user_id

pytestmark = pytest.mark.browser

TOKEN = "MTA4ODg4.settings-test-token.kept-secret"

API_CALL = """async ([method, path, body]) => {
  const csrf = decodeURIComponent(document.cookie.match(/neonrain_csrf=([^;]+)/)[1]);
  const response = await fetch(path, {
    method, headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: body === null ? undefined : JSON.stringify(body),
  });
  return [response.status, await response.text()];
}"""


def call(page: Any, method: str, path: str, body: Any = None) -> tuple[int, str]:
    status, text = page.evaluate(API_CALL, [method, path, body])
    return int(status), str(text)


def test_load_more_disconnect_password_and_account_deletion(
    browser: Any, live_app: LiveApp
) -> None:
    live = live_app
    bot = live.discord(lambda: live.fake.add_bot(TOKEN, "Helper"))
    guild = live.discord(lambda: live.fake.add_guild("Gamma", bots=[bot]))
    page = new_page(browser, live, width=360, height=800)
    register(page, "lin@example.com")
    assert call(page, "POST", "/api/discord/connect", {"token": TOKEN})[0] == 200
    status, body = call(page, "POST", "/api/servers", {"guildId": str(guild.id)})
    assert status == 201, body
    server_id = re.search(r'"serverId":"([^"]+)"', body)
    assert server_id is not None
    path = f"/dashboard/servers/{server_id.group(1)}"

    # ------------------------------------------------------------ 12 actions, 10 per page
    owner = user_id(page)
    for number in range(12):
        live.post_internal(
            "/api/discord/agent-actions",
            {
                "userId": owner, "guildId": str(guild.id), "channelId": "7",
                "channelName": "help", "agentMessage": f"Answer number {number}",
                "triggerDescription": f"Question {number}",
                "messageHistory": {"preceding": [], "agentResponse": {}},
            },
        )  # fmt: skip
    page.goto(path)
    actions = page.locator(".action-item")
    expect(actions).to_have_count(10)
    expect(actions.first).to_contain_text("Answer number 11")
    page.get_by_role("button", name="Load more").click()
    expect(actions).to_have_count(12)
    expect(actions.last).to_contain_text("Answer number 0")
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    # A new action arrives live at the top, the loaded ones stay.
    live.post_internal(
        "/api/discord/agent-actions",
        {
            "userId": owner, "guildId": str(guild.id), "channelId": "7", "channelName": "help",
            "agentMessage": "Brand new answer", "triggerDescription": "A new question",
            "messageHistory": {"preceding": []},
        },
    )  # fmt: skip
    expect(actions.first).to_contain_text("Brand new answer", timeout=8000)
    expect(actions).to_have_count(13)

    # ------------------------------------------------------------ disconnect from settings
    page.goto("/settings")
    expect(page.get_by_test_id("account-email")).to_have_text("lin@example.com")
    page.get_by_role("button", name="Disconnect").click()
    page.get_by_role("dialog").get_by_role("button", name="Disconnect").click()
    expect(page.locator("#flash")).to_contain_text("disconnected")
    expect(page.get_by_label("Bot token")).to_be_visible()
    page.goto(path)
    expect(page.locator("#activation-reason")).to_contain_text("Connect your Discord bot first")
    expect(page.get_by_role("switch", name="Bot active in Gamma")).to_be_disabled()

    # ------------------------------------------------------------ password
    page.goto("/settings")
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New password").fill("a brand new password")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#currentPassword-error")).to_contain_text("not right")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-status")).to_contain_text("Password changed")

    # ------------------------------------------------------------ delete the account
    page.get_by_role("button", name="Delete account…").click()
    dialog = page.get_by_role("dialog", name="Delete your account?")
    confirm = dialog.get_by_role("button", name="Delete account")
    expect(confirm).to_be_disabled()
    dialog.get_by_label(re.compile("Type your email")).fill("someone@else.example")
    expect(confirm).to_be_disabled()
    dialog.get_by_label(re.compile("Type your email")).fill("lin@example.com")
    confirm.click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert_clean(page)
