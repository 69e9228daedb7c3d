"""The "Where and when the bot speaks" card in Chromium: the channel picker loaded from the fake
Discord (grouped by category, channels the bot cannot use marked), the channel modes and reply
modes by keyboard, the limits, one Save with the rest of the configuration, the choice kept after a
reload; a held-back draft posted through the internal API shown as not posted, the actions filter,
the chart's third series; Discord unreachable; screenshots at 1280 and 360 px."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveApp, new_page
from tests.browser.test_dashboard_flow import expect, register, user_id
from tests.browser.test_settings_flow import call
from tests.fakes.fake_discord import ChannelType, Permission

pytestmark = pytest.mark.browser

TOKEN = "MTA3Nzc3.behaviour-test-token.kept-secret"


def screenshot_folder(tmp_path: Path) -> Path:
    """A temporary folder (running the tests never changes tracked files), or the folder named by
    NEONRAIN_SCREENSHOTS_DIR when the documentation's pictures are being updated."""
    chosen = os.environ.get("NEONRAIN_SCREENSHOTS_DIR")
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def no_sideways_scroll(page: Any) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"


def saved_config(page: Any, server_id: str) -> dict[str, Any]:
    status, text = call(page, "GET", f"/api/servers/{server_id}")
    assert status == 200, text
    body: dict[str, Any] = json.loads(text)
    return body


def test_choosing_where_and_when_the_bot_speaks(
    browser: Any, live_app: LiveApp, tmp_path: Path
) -> None:
    live = live_app
    fake = live.fake

    def build() -> Any:
        bot = fake.add_bot(TOKEN, "Rainbot")
        guild = fake.add_guild("Harbour", bots=[bot])
        gid = guild.id
        text_category = guild.channel_named("Text Channels")
        staff = fake.add_channel(gid, "staff-only", parent_id=text_category.id)
        fake.set_overwrite(staff.id, gid, deny=Permission.VIEW_CHANNEL)
        news = fake.add_channel(gid, "news", ChannelType.GUILD_ANNOUNCEMENT)
        fake.set_overwrite(news.id, gid, deny=Permission.SEND_MESSAGES)
        return guild

    guild = live.discord(build)
    page = new_page(browser, live)
    register(page, "mia@example.com")
    assert call(page, "POST", "/api/discord/connect", {"token": TOKEN})[0] == 200
    status, body = call(page, "POST", "/api/servers", {"guildId": str(guild.id)})
    assert status == 201, body
    server_id = json.loads(body)["serverId"]
    path = f"/dashboard/servers/{server_id}"
    general = str(guild.channel_named("general").id)
    random = str(guild.channel_named("random").id)

    # ---------------------------------------------------------------- the card as it starts
    page.goto(path)
    card = page.locator("#behaviour-card")
    expect(card.get_by_role("heading", name="Where and when the bot speaks")).to_be_visible()
    channels = page.get_by_role("group", name="Channels")
    all_channels = channels.get_by_role("radio", name="All channels")
    expect(all_channels).to_be_checked()
    expect(page.locator("#channel-picker")).to_be_hidden()
    expect(page.locator("#channel-picker-status")).to_contain_text("5 channels")
    save = page.get_by_role("button", name="Save", exact=True)
    expect(save).to_be_disabled()

    # ---------------------------------------------------------------- channels, by keyboard
    all_channels.focus()
    outline = page.evaluate(
        "() => getComputedStyle(document.querySelector('label[for=channel-mode-all]')).outlineStyle"
    )
    assert outline == "solid", "the focused segment must show where the focus is"
    page.keyboard.press("ArrowRight")
    expect(channels.get_by_role("radio", name="Only these")).to_be_checked()
    expect(page.locator("#channel-picker")).to_be_visible()
    expect(page.locator("#unsaved-marker")).to_be_visible()
    expect(save).to_be_enabled()
    warning = page.locator("#channel-warning")
    expect(warning).to_contain_text("watches nothing")

    # Grouped by category, in Discord's order; where the bot cannot work, it says why.
    legends = page.locator("#channel-groups legend")
    expect(legends).to_have_text(["No category", "Text Channels", "Voice Channels"])
    expect(page.locator("#channel-groups label")).to_have_text(
        ["#news (announcements)", "#general", "#random", "#staff-only", "#General (voice)"]
    )
    staff_item = page.locator(".channel-item").filter(has_text="#staff-only")
    expect(staff_item.locator(".channel-problem")).to_contain_text("cannot see this channel")
    news_item = page.locator(".channel-item").filter(has_text="#news")
    expect(news_item.locator(".channel-problem")).to_contain_text("Send Messages")
    expect(
        page.locator(".channel-item").filter(has_text=re.compile("^#general$"))
    ).not_to_contain_text("cannot")

    page.get_by_role("checkbox", name="#general", exact=True).check()
    expect(warning).to_be_hidden()
    box = page.get_by_role("checkbox", name="#random", exact=True)
    box.focus()
    page.keyboard.press("Space")
    expect(box).to_be_checked()

    # "All except these" with every channel ticked leaves nothing to watch.
    channels.get_by_role("radio", name="All except these").check()
    for name in ("#news (announcements)", "#staff-only", "#General (voice)"):
        page.get_by_role("checkbox", name=name, exact=True).check()
    expect(warning).to_contain_text("Every channel is left out")
    for name in ("#news (announcements)", "#staff-only", "#General (voice)"):
        page.get_by_role("checkbox", name=name, exact=True).uncheck()
    channels.get_by_role("radio", name="Only these").check()
    expect(warning).to_be_hidden()

    # ---------------------------------------------------------------- reply mode and limits
    replies = page.get_by_role("group", name="Replies")
    expect(replies.get_by_role("radio", name="Automatic")).to_be_checked()
    expect(replies).to_contain_text("Answers when it has something to say.")
    expect(replies).to_contain_text("Only when mentioned, replied to or called by name.")
    replies.get_by_role("radio", name="Automatic").focus()
    page.keyboard.press("ArrowDown")
    expect(replies.get_by_role("radio", name="When mentioned")).to_be_checked()
    replies.get_by_text("Shadow mode").click()
    expect(replies.get_by_role("radio", name="Shadow mode")).to_be_checked()

    per_hour = page.get_by_label("Replies per hour")
    pause = page.get_by_label("Pause between replies")
    expect(page.locator("#cfg-maxRepliesPerHour-unit")).to_have_text("per hour")
    expect(page.locator("#cfg-minSecondsBetweenReplies-unit")).to_have_text("seconds")
    per_hour.fill("5000")
    pause.fill("45")
    page.get_by_label("Personality", exact=True).fill("Quiet harbour master")
    save.click()
    expect(page.locator("#cfg-maxRepliesPerHour-error")).to_have_text(
        "Enter a whole number from 0 to 1,000."
    )
    expect(per_hour).to_be_focused()
    assert saved_config(page, server_id)["replyMode"] == "auto"  # nothing was sent
    per_hour.fill("30")
    save.click()
    expect(page.locator("#config-status")).to_contain_text("Saved")
    expect(page.locator("#unsaved-marker")).to_be_hidden()
    expect(save).to_be_disabled()

    config = saved_config(page, server_id)
    assert config["channelMode"] == "only"
    assert config["channelIds"] == [general, random]
    assert config["replyMode"] == "silent"
    assert (config["maxRepliesPerHour"], config["minSecondsBetweenReplies"]) == (30, 45)
    assert config["personality"] == "Quiet harbour master"

    # ---------------------------------------------------------------- kept after a reload
    page.reload()
    expect(channels.get_by_role("radio", name="Only these")).to_be_checked()
    expect(page.get_by_role("checkbox", name="#general", exact=True)).to_be_checked()
    expect(page.get_by_role("checkbox", name="#random", exact=True)).to_be_checked()
    expect(page.get_by_role("checkbox", name="#staff-only", exact=True)).not_to_be_checked()
    expect(replies.get_by_role("radio", name="Shadow mode")).to_be_checked()
    expect(per_hour).to_have_value("30")
    expect(pause).to_have_value("45")
    expect(save).to_be_disabled()
    guarded = page.evaluate(
        "() => { const e = new Event('beforeunload', {cancelable: true});"
        " window.dispatchEvent(e); return e.defaultPrevented; }"
    )
    assert not guarded, "nothing changed: leaving must not warn"
    replies.get_by_role("radio", name="Automatic").check()
    guarded = page.evaluate(
        "() => { const e = new Event('beforeunload', {cancelable: true});"
        " window.dispatchEvent(e); return e.defaultPrevented; }"
    )
    assert guarded, "an unsaved reply mode must warn before leaving"
    replies.get_by_role("radio", name="Shadow mode").check()
    expect(save).to_be_disabled()  # back to what is saved

    # ---------------------------------------------------------------- held-back drafts
    owner = user_id(page)
    now = datetime.now(UTC).isoformat()

    def action(message: str, delivered: bool, held_back: str | None) -> dict[str, Any]:
        return {
            "userId": owner, "guildId": str(guild.id), "channelId": general,
            "channelName": "general", "agentMessage": message,
            "triggerDescription": f"ana said something ({message})",
            "messageHistory": {"preceding": [], "agentResponse": {"content": message}},
            "delivered": delivered, "heldBack": held_back,
        }  # fmt: skip

    live.post_internal("/api/discord/agent-actions", action("Posted before", True, None))
    live.post_internal("/api/discord/agent-actions", action("Hidden draft", False, "silent"))
    live.post_internal(
        "/api/discord/agent-actions", action("Over the limit", False, "rate_limited")
    )
    live.post_internal(
        "/api/discord/stats",
        {"events": [
            {"userId": owner, "guildId": str(guild.id), "event": "message_received", "count": 6,
             "at": now},
            {"userId": owner, "guildId": str(guild.id), "event": "message_sent", "count": 1,
             "at": now},
            {"userId": owner, "guildId": str(guild.id), "event": "message_held_back", "count": 2,
             "at": now},
        ]},
    )  # fmt: skip
    items = page.locator(".action-item")
    expect(items).to_have_count(3, timeout=8000)  # arrives with the live refresh
    draft = items.filter(has_text="Hidden draft")
    expect(draft.get_by_test_id("held-back")).to_have_text("Not posted — shadow mode")
    expect(draft.locator(".reply")).to_contain_text("Draft, not posted")
    limited = items.filter(has_text="Over the limit")
    expect(limited.get_by_test_id("held-back")).to_have_text("Not posted — reply limit")
    expect(items.filter(has_text="Posted before").get_by_test_id("held-back")).to_have_count(0)

    # The chart's third series (after the page is loaded again with the new stats).
    page.reload()
    expect(page.locator(".chart figcaption")).to_contain_text("Not posted")
    expect(page.locator(".daily-chart .bar-held")).to_have_count(30)
    expect(page.locator(".chart figcaption")).to_contain_text("2 replies were drafted but not")
    page.get_by_text("Show the numbers as a table").click()
    expect(page.locator(".chart-table thead th")).to_have_text(
        ["Day", "Received", "Sent", "Not posted"]
    )
    expect(page.locator(".chart-table tbody tr").first).to_contain_text("6")

    # ---------------------------------------------------------------- the filter
    filters = page.get_by_role("group", name="Show")
    filters.get_by_role("radio", name="Not posted").check()
    expect(items).to_have_count(2)
    expect(items.filter(has_text="Posted before")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"\?actions=held$"))
    filters.get_by_role("radio", name="Posted", exact=True).check()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Posted before")
    page.goto(f"{path}?actions=held")
    expect(filters.get_by_role("radio", name="Not posted")).to_be_checked()
    expect(items).to_have_count(2)
    # A new draft appears live inside the filter; a posted message does not.
    live.post_internal("/api/discord/agent-actions", action("Another draft", False, "silent"))
    live.post_internal("/api/discord/agent-actions", action("Another post", True, None))
    expect(items.filter(has_text="Another draft")).to_have_count(1, timeout=8000)
    expect(items.filter(has_text="Another post")).to_have_count(0)
    filters.get_by_role("radio", name="Not posted").focus()
    page.keyboard.press("ArrowLeft")  # to "Posted"
    expect(items.filter(has_text="Another post")).to_have_count(1)
    page.keyboard.press("ArrowLeft")  # to "All"
    expect(items).to_have_count(5)

    # ---------------------------------------------------------------- screenshots
    folder = screenshot_folder(tmp_path)
    page.goto(path)  # "Only these" is saved: the picker is open, nothing unsaved
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_load_state("networkidle")
        expect(page.locator("#channel-groups label").first).to_be_visible()
        no_sideways_scroll(page)
        page.screenshot(path=str(folder / f"behaviour-{width}.png"), full_page=True)
        card.screenshot(path=str(folder / f"behaviour-card-{width}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})

    # ---------------------------------------------------------------- Discord unreachable
    # Another server, whose channel list nobody has asked for yet (answers are kept a minute).
    other = live.discord(lambda: fake.add_guild("Lighthouse", bots=[TOKEN]))
    status, body = call(page, "POST", "/api/servers", {"guildId": str(other.id)})
    assert status == 201, body
    other_id = json.loads(body)["serverId"]
    lamp = str(other.channel_named("general").id)
    status, body = call(
        page, "PUT", f"/api/servers/{other_id}", {"channelMode": "only", "channelIds": [lamp]}
    )
    assert status == 200, body
    live.discord(lambda: fake.add_failure(f"/guilds/{other.id}/channels", status=500))
    page.goto(f"/dashboard/servers/{other_id}")
    status_line = page.locator("#channel-picker-status")
    expect(status_line).to_contain_text("Discord could not be reached")
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    # The ticked channel stays; the mode can still change and be saved.
    expect(page.get_by_role("checkbox", name=f"Channel {lamp}", exact=True)).to_be_checked()
    channels.get_by_role("radio", name="All except these").check()
    replies.get_by_role("radio", name="When mentioned").check()
    save.click()
    expect(page.locator("#config-status")).to_contain_text("Saved")
    config = saved_config(page, other_id)
    assert (config["channelMode"], config["channelIds"]) == ("except", [lamp])
    assert config["replyMode"] == "mentioned"
    live.discord(lambda: fake.clear_failures())
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("checkbox", name="#general", exact=True)).to_be_checked()
    expect(status_line).to_contain_text("3 channels")
    assert page.errors == [], page.errors
