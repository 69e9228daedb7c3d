"""Browser tests: the real app (uvicorn, scraper on) against a temporary SQLite database, the fake
Discord, a tiny local web page to scrape, and Debian's Chromium driven by Playwright (sync API).

The app and the fake Discord each run in their own thread with their own event loop, so the tests
themselves are plain synchronous functions (no asyncio loop runs in the test's thread, which is what
Playwright's sync API needs). Without ``/usr/bin/chromium`` the tests are skipped with the reason,
except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
import uvicorn

from neonrain import background
from neonrain.app import create_app
from tests.browser.screenshots import SCREENSHOTS_ENV
from tests.conftest import IN_CI, TEST_INTERNAL_KEY, make_settings
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_huma import FakeHuma
from tests.webapp import ThreadLoop, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Live refresh every 2 s in tests instead of 15 s (read by static/js/common.js).
TEST_REFRESH_MS = 2000
CSP_MARK = "CSP violation:"
#: Every violation of the page's Content-Security-Policy becomes a console error the test sees
#: (Chromium also logs most of them itself).
CSP_LISTENER = (
    "document.addEventListener('securitypolicyviolation', (e) => console.error("
    f"'{CSP_MARK} ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':'"
    " + e.lineNumber));"
)

T = TypeVar("T")

__all__ = [
    "ChatLive",
    "LiveApp",
    "ThreadLoop",
    "assert_clean",
    "expect",
    "new_page",
    "setup_chat_account",
    "signed_in_page",
]


class ScrapeTarget:
    """A local web page for the scraper; counts its hits so a rescrape can be seen."""

    def __init__(self) -> None:
        self.hits = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.hits += 1
                body = (
                    "<!doctype html><html><head><title>Rain Wiki</title></head><body><main>"
                    "<h1>Rain Wiki</h1><p>The community meets every Friday at 20:00 UTC in "
                    f"#events. This is version {target.hits} of the page.</p>"
                    "<p>Be kind, no spam, and ask the moderators when in doubt.</p>"
                    "</main></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/wiki"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class LiveApp:
    base_url: str
    fake: FakeDiscord
    discord_loop: ThreadLoop
    scrape: ScrapeTarget
    internal: httpx.Client = field(repr=False)

    def discord(self, function: Callable[[], T]) -> T:
        """Run ``function`` (e.g. ``fake.add_guild``) on the fake Discord's loop."""
        return self.discord_loop.call(function)

    def post_internal(self, path: str, body: dict[str, Any]) -> httpx.Response:
        response = self.internal.post(path, json=body)
        assert response.status_code < 300, response.text
        return response


@pytest.fixture(scope="session")
def chromium() -> Path:
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests"
    elif importlib.util.find_spec("playwright") is None:
        reason = "Playwright for Python is not installed (pip install playwright)"
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI needs the browser tests: {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the flow tests save their screenshots: a temporary folder (running the tests never
    changes tracked files), or the folder in NEONRAIN_SCREENSHOTS_DIR when the README's pictures
    are being updated (``python -m tests.browser.screenshots``)."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def live_settings() -> dict[str, str]:
    """Extra settings of the live app (a test module overrides this fixture to change them)."""
    return {}


@pytest.fixture
def live_app(
    tmp_path: Path, sqlite_template: Path, live_settings: dict[str, str]
) -> Iterator[LiveApp]:
    database = tmp_path / "browser.db"
    shutil.copyfile(sqlite_template, database)
    discord_loop = ThreadLoop("fake-discord")
    fake = discord_loop.run(FakeDiscord().start())
    scrape = ScrapeTarget()
    settings = make_settings(
        f"sqlite+aiosqlite:///{database}",
        tmp_path,
        DISCORD_API_URL=fake.api_url,
        NEONRAIN_ALLOW_PRIVATE_URLS="true",
        **live_settings,
    )
    app = create_app(settings, background=[background.scraper])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="neonrain-serve", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    internal = httpx.Client(base_url=base_url, headers={"X-API-Key": TEST_INTERNAL_KEY}, timeout=10)
    try:
        for _ in range(200):
            if server.started:
                break
            if not thread.is_alive():
                pytest.fail("the app did not start")
            threading.Event().wait(0.05)
        else:
            pytest.fail("the app did not start within 10 s")
        assert internal.get("/healthz").status_code == 200
        yield LiveApp(base_url, fake, discord_loop, scrape, internal)
    finally:
        internal.close()
        server.should_exit = True
        thread.join(15)
        scrape.close()
        discord_loop.run(fake.stop())
        discord_loop.close()


# ------------------------------------------------------------------------------------ chat

CHAT_TOKEN = "MTA5OTk5.chat-browser-token.only-the-fake-knows-it"
HUMA_KEY = "chat-browser-huma-key"
PASSWORD = "correct horse battery"


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


def setup_chat_account(live: ChatLive) -> tuple[str, dict[str, str]]:
    """An account with a connected bot and two configured servers (via the API)."""
    bot = live.loop.call(lambda: live.discord.add_bot(CHAT_TOKEN, "Rainbot"))
    rust = live.loop.call(lambda: live.discord.add_guild("Rust Lovers", bots=[bot]))
    cats = live.loop.call(lambda: live.discord.add_guild("Cat Cafe", bots=[bot]))
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        response = http.post(
            "/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        token = response.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post(
            "/api/discord/connect", json={"token": CHAT_TOKEN}, headers=auth
        ).is_success
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


def signed_in_page(
    browser: Any, live: LiveApp | ChatLive, token: str, width: int = 1280, height: int = 900
) -> Any:
    """A fresh page signed in with a session token (e.g. one from the API's register)."""
    page = new_page(browser, cast(Any, live), width=width, height=height)
    page.context.add_cookies([{"name": "neonrain_session", "value": token, "url": live.base_url}])
    return page


# ------------------------------------------------------------------------------------ Chromium


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser: Any, live: LiveApp, width: int = 1280, height: int = 900) -> Any:
    """A page in a fresh context (own cookies) that can only reach the app itself."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        base_url=live.base_url,
        color_scheme="dark",
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.base_url)
    context.add_init_script(
        f"try {{ localStorage.setItem('neonrain.refreshMs', '{TEST_REFRESH_MS}'); }} catch (e) {{}}"
    )
    context.add_init_script(CSP_LISTENER)

    def only_local(route: Any) -> None:
        if route.request.url.startswith(live.base_url):
            route.continue_()
        else:  # Discord's CDN (avatars, icons) and anything else outside: not in tests
            route.abort()

    context.route("**/*", only_local)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.errors = []
    page.csp_violations = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))

    def on_console(message: Any) -> None:
        if message.type == "error" and (
            "Content Security Policy" in message.text or message.text.startswith(CSP_MARK)
        ):
            page.csp_violations.append(message.text)

    page.on("console", on_console)
    return page


def assert_clean(page: Any) -> None:
    """No script error and no Content-Security-Policy violation on any page this page visited."""
    assert page.errors == [], page.errors
    assert page.csp_violations == [], page.csp_violations
