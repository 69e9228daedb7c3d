"""The agent engine in Chromium: the Settings card (save, test with the provider's refusal and
then success, the key field empty after a reload, remove the key, remove the engine with a
confirmation), the engine switch of a server page, the engine's state on the Discord card, and
screenshots at 1280 and 360 px without sideways scrolling."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveApp, ThreadLoop, new_page
from tests.browser.test_dashboard_flow import expect, register
from tests.browser.test_settings_flow import call
from tests.fakes.fake_openai import FakeOpenAI

pytestmark = pytest.mark.browser

TOKEN = "MTA3Nzc3.engine-test-token.only-the-fake-knows-it"
RIGHT_KEY = "sk-right-Wd4Hs7Qp2Xn9Lc5"
WRONG_KEY = "sk-wrong-Jt6Bv1Ym8Rk3Fa0"
#: Screenshots go to an untracked folder (the documentation's copies are chosen by hand).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def fake_model() -> Iterator[FakeOpenAI]:
    loop = ThreadLoop("fake-openai")

    async def start() -> FakeOpenAI:
        return await FakeOpenAI(api_key=RIGHT_KEY).start()

    fake = loop.run(start())
    try:
        yield fake
    finally:
        loop.run(fake.stop())
        loop.close()


def no_sideways_scroll(page: Any) -> int:
    overflow: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def shoot(page: Any, name: str, path: str, prepare: Callable[[], None] | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(path)
        page.wait_for_load_state("networkidle")
        if prepare is not None:
            prepare()
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        assert no_sideways_scroll(page) <= 0, f"{name} at {width} px scrolls sideways"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_engine_card_server_switch_and_state(
    browser: Any, live_app: LiveApp, fake_model: FakeOpenAI
) -> None:
    live = live_app
    bot = live.discord(lambda: live.fake.add_bot(TOKEN, "Thinker"))
    guild = live.discord(lambda: live.fake.add_guild("Delta", bots=[bot]))
    page = new_page(browser, live)
    register(page, "eve@example.com")
    assert call(page, "POST", "/api/discord/connect", {"token": TOKEN})[0] == 200
    status, body = call(page, "POST", "/api/servers", {"guildId": str(guild.id)})
    assert status == 201, body
    server_id = re.search(r'"serverId":"([^"]+)"', body)
    assert server_id is not None
    server_path = f"/dashboard/servers/{server_id.group(1)}"

    # ------------------------------------------------------------------ nothing set yet
    page.goto("/settings")
    card = page.locator("#engine-card")
    expect(card.get_by_role("heading", name="Agent engine")).to_be_visible()
    expect(card).to_contain_text("HUMA: not configured on this installation")
    expect(card.get_by_role("button", name="Test")).to_be_disabled()
    expect(card.get_by_role("button", name="Remove engine")).to_be_hidden()
    base_url = card.get_by_label("Base URL")
    model = card.get_by_label("Model")
    key = card.get_by_label("API key")
    base_url.fill("ftp://models.example/v1")
    model.fill("fake-model")
    card.get_by_role("button", name="Save").click()
    expect(page.locator("#engine-base-url-error")).to_contain_text("starting with https://")

    # ------------------------------------------------------------------ a refused key
    base_url.fill(fake_model.base_url)
    key.fill(WRONG_KEY)
    card.get_by_role("button", name="Save").click()
    expect(page.locator("#engine-status")).to_contain_text("Saved")
    expect(key).to_have_value("")
    expect(key).to_have_attribute("placeholder", "stored; leave empty to keep")
    expect(card.get_by_role("button", name="Remove key")).to_be_visible()
    test = card.get_by_role("button", name="Test")
    test.focus()
    page.keyboard.press("Enter")  # keyboard operable
    result = page.locator("#engine-test-result")
    expect(result).to_contain_text("Incorrect API key provided: ***")
    expect(result).to_have_attribute("data-kind", "error")
    # The Discord card shows the engine's state (live refresh).
    expect(page.locator("#discord-card .engine-line")).to_contain_text("Error", timeout=8000)
    expect(page.locator("#discord-card .engine-line")).to_contain_text("Incorrect API key")

    # ------------------------------------------------------------------ the right key
    key.fill(RIGHT_KEY)
    card.get_by_role("button", name="Save").click()
    expect(page.locator("#engine-status")).to_contain_text("Saved")
    test.click()
    expect(result).to_contain_text(re.compile(r"It works: fake-model answered in [\d,]+ ms\."))
    expect(result).to_have_attribute("data-kind", "success")
    page.reload()
    expect(key).to_have_value("")  # the stored key never comes back to the page
    expect(key).to_have_attribute("placeholder", "stored; leave empty to keep")
    expect(base_url).to_have_value(fake_model.base_url)
    expect(model).to_have_value("fake-model")
    expect(page.locator("[data-live=engine-check]")).to_contain_text("Working")
    expect(page.locator("#discord-card .engine-line")).to_contain_text("Working")
    html = page.content()
    assert RIGHT_KEY not in html and WRONG_KEY not in html
    assert fake_model.chat_requests[-1].bearer == RIGHT_KEY

    def tested() -> None:
        page.locator("#engine-test").click()
        expect(page.locator("#engine-test-result")).to_contain_text("It works")

    shoot(page, "settings-engine", "/settings", tested)

    # ------------------------------------------------------------------ a server's engine
    page.goto(server_path)
    huma = page.get_by_role("radio", name="HUMA")
    model_radio = page.get_by_role("radio", name="OpenAI-compatible model")
    expect(huma).to_be_checked()
    expect(huma).to_be_disabled()  # no HUMA key here: why is said next to it
    expect(page.locator("#engine-huma-hint")).to_contain_text("no HUMA key")
    expect(page.locator("#engine-openai-hint")).to_contain_text("Your model fake-model")
    expect(page.locator("#engine-unavailable")).to_be_visible()
    model_radio.focus()
    page.keyboard.press("Space")
    expect(page.locator("#engine-choice-status")).to_contain_text(
        "the OpenAI-compatible model now answers in Delta"
    )
    expect(page.locator("#engine-unavailable")).to_be_hidden()
    page.reload()
    expect(model_radio).to_be_checked()
    shoot(page, "server-engine", server_path)

    # ------------------------------------------------------------------ remove the key
    page.goto("/settings")
    card.get_by_role("button", name="Remove key").click()
    dialog = page.get_by_role("dialog", name="Remove the stored key?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Remove key").click()
    expect(page.locator("#engine-status")).to_contain_text("The key was removed")
    expect(key).to_have_attribute("placeholder", re.compile("none stored"))
    expect(card.get_by_role("button", name="Remove key")).to_be_hidden()
    test.click()
    expect(result).to_contain_text("Incorrect API key provided: no-api-key")

    # ------------------------------------------------------------------ remove the engine
    card.get_by_role("button", name="Remove engine").click()
    dialog = page.get_by_role("dialog", name="Remove your engine?")
    expect(dialog).to_contain_text("cannot answer until you set up a model again")
    page.keyboard.press("Escape")  # cancelling keeps it
    expect(dialog).to_be_hidden()
    expect(base_url).to_have_value(fake_model.base_url)
    card.get_by_role("button", name="Remove engine").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove engine").click()
    expect(page.locator("#flash")).to_contain_text("Your engine was removed")
    expect(base_url).to_have_value("")
    expect(card.get_by_role("button", name="Test")).to_be_disabled()
    expect(page.locator("#discord-card .engine-line")).to_have_count(0)
    page.goto(server_path)
    expect(page.get_by_role("radio", name="OpenAI-compatible model")).to_be_disabled()
    expect(page.locator("#engine-unavailable")).to_be_visible()
    expect(page.locator("#engine-openai-hint")).to_contain_text("Not available")
    assert page.errors == [], page.errors
