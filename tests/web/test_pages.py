"""Server-side tests of the pages' HTML (web-ui.md): every page in its states, isolation between
accounts, escaping of Discord content, and that no page ever contains the bot token."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from neonrain.app import create_app
from neonrain.web import views
from neonrain.web.pages import action_markdown
from tests.conftest import ApiUser, api_client, make_settings, register_user
from tests.fakes.fake_discord import FakeDiscord
from tests.web.conftest import BOT_TOKEN, INTERNAL, add_server, connect, text_of

# ------------------------------------------------------------------------------------ signed out


@pytest.mark.parametrize(
    "path", ["/dashboard", "/settings", "/dashboard/servers/some-id", "/dashboard?x=1"]
)
async def test_signed_out_pages_redirect_to_login_with_next(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(path)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login?next=")
    assert httpx.URL("http://x" + location).params["next"] == path


async def test_landing_signed_out_explains_three_steps_and_offers_sign_up(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    html = response.text
    assert "message content intent" in html
    assert 'href="/register"' in html and 'href="/login"' in html
    assert "Go to dashboard" not in html
    for link in ('href="/dashboard"', 'href="/chat"', 'href="/settings"'):
        assert link in html  # the header's navigation
    assert "Sign out" not in html


async def test_register_and_login_pages_have_labelled_forms(http: httpx.AsyncClient) -> None:
    for path, button in (("/register", "Create account"), ("/login", "Sign in")):
        response = await http.get(path + "?next=/dashboard/servers/abc")
        assert response.status_code == 200
        html = response.text
        assert '<label for="email">' in html and '<label for="password">' in html
        assert button in html
        assert 'data-next="/dashboard/servers/abc"' in html
    assert http.cookies.get("neonrain_csrf")  # pages with forms set the CSRF cookie


async def test_login_page_refuses_foreign_next_targets(http: httpx.AsyncClient) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil"):
        html = (await http.get("/login", params={"next": target})).text
        assert 'data-next="/dashboard"' in html


async def test_clerk_note_appears_when_clerk_is_on(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url, tmp_path, CLERK_JWKS_URL="http://127.0.0.1:9/jwks", CLERK_ISSUER="x"
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application), api_client(application) as c:
        assert "Clerk session tokens" in text_of((await c.get("/login")).text)


async def test_closed_registration_says_so(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, NEONRAIN_ALLOW_REGISTRATION="false")
    application = create_app(settings)
    async with application.router.lifespan_context(application), api_client(application) as c:
        html = (await c.get("/register")).text
    assert "Sign-ups are closed" in html
    assert 'id="auth-form"' not in html


# ------------------------------------------------------------------------------------ signed in


async def test_signed_in_visitor_is_sent_on_from_login(
    http: httpx.AsyncClient, ada: ApiUser
) -> None:
    response = await http.get("/login?next=/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/settings"
    assert "Go to dashboard" in (await http.get("/")).text


async def test_empty_dashboard_not_connected(http: httpx.AsyncClient, ada: ApiUser) -> None:
    response = await http.get("/dashboard")
    assert response.status_code == 200
    html = response.text
    assert 'id="bot-token"' in html and 'type="password"' in html
    assert "developer portal" in html
    assert "No servers yet" in html
    assert "Connect your bot first" in html
    assert 'id="add-server-button"' not in html  # the enabled button needs a connection
    assert 'data-testid="server-count">0<' in html
    assert 'data-testid="response-rate">—<' in html
    assert 'action="/logout"' in html and "Sign out" in html
    assert 'data-live-src="/dashboard"' in html


async def test_dashboard_connected_without_servers(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    await connect(http, ada)
    html = (await http.get("/dashboard")).text
    assert 'data-testid="bot-name">Rainbot<' in html
    assert "Invite to a server" in html
    assert "discord.com/oauth2/authorize" in html or "oauth2" in html
    assert 'data-action="disconnect"' in html
    assert 'data-testid="worker-state"' in html and "Offline" in html
    assert 'id="bot-token"' not in html
    assert 'id="add-server-button"' in html
    assert "No servers yet" in html


async def test_dashboard_with_servers_shows_cards(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    bot = fake.bot(BOT_TOKEN)
    gaming = fake.add_guild("Gaming <Den>", bots=[bot])
    support = fake.add_guild("Support", bots=[bot])
    await connect(http, ada)
    first = await add_server(http, ada, gaming)
    second = await add_server(http, ada, support)
    response = await http.put(
        f"/api/servers/{first['serverId']}", json={"botActive": True}, headers=ada.headers
    )
    assert response.status_code == 200
    now = datetime.now(UTC).isoformat()
    stats = await http.post(
        "/api/discord/stats",
        headers=INTERNAL,
        json={
            "events": [
                {"userId": ada.id, "guildId": str(gaming.id), "event": "message_received",
                 "count": 4, "at": now},
                {"userId": ada.id, "guildId": str(gaming.id), "event": "message_sent",
                 "count": 3, "at": now},
            ]
        },
    )  # fmt: skip
    assert stats.status_code == 200, stats.text
    html = (await http.get("/dashboard")).text
    assert "Gaming &lt;Den&gt;" in html and "Gaming <Den>" not in html
    assert f'href="/dashboard/servers/{first["serverId"]}"' in html
    assert f'href="/dashboard/servers/{second["serverId"]}"' in html
    assert "No servers yet" not in html
    assert 'data-testid="server-count">2<' in html
    assert 'data-testid="active-count">1<' in html and 'data-testid="ready-count">0<' in html
    assert 'data-testid="total-received">4<' in html
    assert 'data-testid="total-sent">3<' in html
    assert 'data-testid="response-rate">75%<' in html
    text = text_of(html)
    assert "3 sent · 4 received" in text
    assert "Last activity just now" in text
    assert "Last activity never" in text
    assert html.count('role="switch"') == 2
    assert 'aria-checked="true"' in html and 'aria-checked="false"' in html
    assert html.count('class="sparkline"') == 2
    assert "Activity over 14 days: 7 messages" in html


async def test_server_page_shows_configuration_websites_stats_and_actions(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    guild = fake.add_guild("Guild One", bots=[fake.bot(BOT_TOKEN)])
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    path = f"/dashboard/servers/{server['serverId']}"

    html = (await http.get(path)).text
    assert "Guild One" in html and "← All servers" in html
    assert 'id="bot-active"' in html and 'role="switch"' in html
    assert 'data-testid="server-state" data-state="off"' in html
    for field, limit in (("botName", 32), ("personality", 4000), ("rules", 4000),
                         ("information", 20000)):  # fmt: skip
        assert f'id="cfg-{field}"' in html
        assert f'data-limit="{limit}"' in html
    assert "Unsaved changes" in html and 'id="config-save" aria-disabled="true"' in html
    assert "No websites yet" in html
    assert "No agent actions yet" in html
    assert 'role="img" aria-labelledby="chart-title chart-desc"' in html
    assert "No messages in the last 30 days" in html
    assert html.count('<tr><th scope="row">') == 30
    assert 'id="remove-server"' in html

    update = await http.put(
        f"/api/servers/{server['serverId']}",
        json={"personality": "Cheerful & <kind>", "rules": "No spam"},
        headers=ada.headers,
    )
    assert update.status_code == 200
    site = await http.post(
        f"/api/servers/{server['serverId']}/websites",
        json={"url": "https://example.com/faq", "name": "FAQ"},
        headers=ada.headers,
    )
    assert site.status_code == 201
    action = await http.post(
        "/api/discord/agent-actions",
        headers=INTERNAL,
        json={
            "userId": ada.id, "guildId": str(guild.id), "channelId": "123",
            "channelName": "general", "agentMessage": "Hello <b>there</b>",
            "triggerDescription": "Mentioned by ana",
            "messageHistory": {
                "preceding": [
                    {"author": f"user{i}", "authorId": str(i), "content": f"message {i}",
                     "timestamp": "2025-01-01T00:00:00Z"}
                    for i in range(5)
                ],
                "agentResponse": {"content": "Hello <b>there</b>"},
            },
        },
    )  # fmt: skip
    assert action.status_code == 201, action.text
    now = datetime.now(UTC).isoformat()
    await http.post(
        "/api/discord/stats",
        headers=INTERNAL,
        json={"events": [{"userId": ada.id, "guildId": str(guild.id),
                          "event": "message_received", "count": 2, "at": now}]},
    )  # fmt: skip

    html = (await http.get(path)).text
    assert "Cheerful &amp; &lt;kind&gt;" in html
    assert "FAQ" in html and "https://example.com/faq" in html
    assert 'data-scrape-status="queued"' in html and "Scraping…" in html
    assert "Rescrape" in html or "Scraping" in html
    assert "#general" in html and "Mentioned by ana" in html
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in html and "<b>there</b>" not in html
    assert html.count('class="older"') == 2  # 5 preceding, 3 shown collapsed
    assert "Show all 5 earlier messages" in html
    assert "Copy as Markdown" in html and "data-markdown=" in html
    assert 'data-testid="server-received">2<' in html
    assert "2 messages received and 0 sent" in html
    assert 'id="load-more" hidden' in html


async def test_actions_page_and_load_more_cursor(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    guild = fake.add_guild("Busy", bots=[fake.bot(BOT_TOKEN)])
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    for i in range(12):
        response = await http.post(
            "/api/discord/agent-actions",
            headers=INTERNAL,
            json={"userId": ada.id, "guildId": str(guild.id), "channelId": "1",
                  "channelName": "general", "agentMessage": f"reply number {i}",
                  "triggerDescription": "t", "messageHistory": {"preceding": []}},
        )  # fmt: skip
        assert response.status_code == 201
    path = f"/dashboard/servers/{server['serverId']}"
    html = (await http.get(path)).text
    assert html.count('class="action-item"') == 10
    cursor = re.search(r'data-next-cursor="([^"]+)"', html)
    assert cursor is not None
    assert 'id="load-more" hidden' not in html
    more = (await http.get(path, params={"actionsBefore": cursor.group(1)})).text
    assert more.count('class="action-item"') == 2
    assert 'data-next-cursor=""' in more
    # A stale cursor falls back to the first page instead of an error.
    assert (await http.get(path, params={"actionsBefore": "nope"})).status_code == 200


async def test_another_users_server_page_is_the_404_page(
    web_app: FastAPI, http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    guild = fake.add_guild("Private", bots=[fake.bot(BOT_TOKEN)])
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    async with api_client(web_app) as other:
        await register_user(other, email="grace@example.com")
        response = await other.get(f"/dashboard/servers/{server['serverId']}")
        assert response.status_code == 404
        assert "Nothing here" in response.text and "Private" not in response.text
        dashboard = (await other.get("/dashboard")).text
        assert "Private" not in dashboard and "No servers yet" in dashboard
    missing = await http.get("/dashboard/servers/does-not-exist")
    assert missing.status_code == 404 and "Nothing here" in missing.text


async def test_settings_page(http: httpx.AsyncClient, ada: ApiUser) -> None:
    html = (await http.get("/settings")).text
    assert 'data-testid="account-email">ada@example.com<' in html
    assert 'id="password-form"' in html
    assert "Sign out everywhere" in html
    assert "Discord connection" in html and 'id="bot-token"' in html
    assert 'id="delete-account"' in html and 'data-email="ada@example.com"' in html
    assert 'aria-current="page">Settings<' in html


async def test_rejected_token_is_shown_with_a_reconnect_form(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    guild = fake.add_guild("G", bots=[fake.bot(BOT_TOKEN)])
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    fake.revoke_token(BOT_TOKEN)
    response = await http.get("/api/discord/guilds", headers=ada.headers)
    assert response.status_code == 409
    html = (await http.get("/dashboard")).text
    assert "Token rejected" in html
    assert 'id="bot-token"' in html  # a form to paste a new token
    page = (await http.get(f"/dashboard/servers/{server['serverId']}")).text
    assert "Discord rejected the bot token" in page
    assert re.search(r'id="bot-active"[^>]*disabled', page, re.S)


async def test_sign_out_form_ends_the_session(http: httpx.AsyncClient, ada: ApiUser) -> None:
    html = (await http.get("/dashboard")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    form = {"content-type": "application/x-www-form-urlencoded"}
    refused = await http.post("/logout", content="csrf=wrong", headers=form)
    assert refused.status_code == 303 and refused.headers["location"] == "/dashboard"
    assert (await http.get("/dashboard")).status_code == 200
    response = await http.post(
        "/logout",
        content=f"csrf={csrf.group(1)}",
        headers=form,
    )
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert (await http.get("/dashboard")).status_code == 303
    assert (await http.get("/api/auth/me", headers=ada.headers)).status_code == 401


async def test_no_page_contains_the_discord_token(
    web_app: FastAPI, http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    guild = fake.add_guild("Token Test", bots=[fake.bot(BOT_TOKEN)])
    # Connect through the cookie session, as the browser does.
    csrf = http.cookies.get("neonrain_csrf")
    assert csrf
    response = await http.post(
        "/api/discord/connect", json={"token": f"  Bot {BOT_TOKEN} "},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    server = await add_server(http, ada, guild)
    await http.post(
        f"/api/servers/{server['serverId']}/websites",
        json={"url": "https://example.com/"},
        headers=ada.headers,
    )
    pages = [
        "/", "/login", "/register", "/dashboard", "/settings", "/nope",
        f"/dashboard/servers/{server['serverId']}",
    ]  # fmt: skip
    secret_part = BOT_TOKEN.split(".")[-1]
    for path in pages:
        page = await http.get(path, follow_redirects=True)
        assert page.status_code in (200, 404), path
        assert BOT_TOKEN not in page.text, path
        assert secret_part not in page.text, path
    # The JSON the pages call does not carry it either.
    for path in ("/api/discord/status", "/api/servers", f"/api/servers/{server['serverId']}"):
        body = (await http.get(path)).text
        assert BOT_TOKEN not in body and secret_part not in body, path


async def test_static_assets_are_served(http: httpx.AsyncClient) -> None:
    css = await http.get("/static/neonrain.css")
    assert css.status_code == 200 and "--bg" in css.text
    for module in ("common", "auth", "dashboard", "discord_card", "server", "settings"):
        response = await http.get(f"/static/js/{module}.js")
        assert response.status_code == 200, module
        # No module loads anything from another site (no CDN).
        assert not re.search(r"""(from|import|fetch\()\s*["'`](https?:)?//""", response.text), (
            module
        )


async def test_pages_load_only_local_assets(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    guild = fake.add_guild("Assets", bots=[fake.bot(BOT_TOKEN)])
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    for path in ("/", "/dashboard", "/settings", f"/dashboard/servers/{server['serverId']}"):
        html = (await http.get(path)).text
        assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
        assert assets, path
        assert all(a.startswith("/static/") for a in assets), (path, assets)
        assert html.count("<main") == 1 and '<html lang="en">' in html


# ------------------------------------------------------------------------------------ helpers


def test_relative_time_and_rates() -> None:
    now = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    assert views.relative_time(None, now) == "never"
    assert views.relative_time("2025-01-10T11:59:50Z", now) == "just now"
    assert views.relative_time("2025-01-10T11:55:00Z", now) == "5 minutes ago"
    assert views.relative_time("2025-01-10T11:00:00Z", now) == "1 hour ago"
    assert views.relative_time("2025-01-07T12:00:00Z", now) == "3 days ago"
    assert views.relative_time("2025-01-10T12:10:00Z", now) == "in 10 minutes"
    assert views.response_rate(0, 0) == "—"
    assert views.response_rate(1, 4) == "25%"
    assert views.response_rate(50, 1) == "999%+"
    assert views.later(None, "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z") == (
        "2025-02-01T00:00:00Z"
    )
    assert views.later(None, None) is None
    assert views.human_size(512) == "512 B" and views.human_size(2048) == "2.0 KB"
    assert views.safe_next("/dashboard/servers/x?y=1") == "/dashboard/servers/x?y=1"
    assert views.safe_next("//evil") == "/dashboard"


def test_charts() -> None:
    chart = views.daily_chart([("2025-01-01", 0, 0), ("2025-01-02", 4, 2)])
    assert chart.peak == 4 and chart.total_received == 4 and chart.total_sent == 2
    assert chart.columns[1].received.y == chart.plot_top
    assert "Jan 2 (4 received, 2 sent)" in chart.summary
    line = views.sparkline([0, 1, 2])
    assert line.total == 3 and line.points.startswith("0.0,")


def test_action_markdown() -> None:
    from neonrain.servers.schemas import ActionOut

    action = ActionOut(
        id="a",
        channel_id="1",
        channel_name="general",
        agent_message="Hi!",
        trigger_description="mention",
        message_history={"preceding": [{"author": "ana", "content": "hello\nthere"}]},
        created_at="2025-01-01T00:00:00.000Z",
    )
    text = action_markdown(action)
    assert "**#general**" in text and "> **ana**: hello\n> there" in text
    assert text.endswith("**Reply:** Hi!")


# ------------------------------------------------------------------------ where and when it speaks


async def test_server_page_behaviour_card_filter_and_held_back_drafts(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    guild = fake.add_guild("Quiet Bay", bots=[fake.bot(BOT_TOKEN)])
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    path = f"/dashboard/servers/{server['serverId']}"

    html = (await http.get(path)).text
    assert "Where and when the bot speaks" in html
    assert 'id="channel-mode-all" value="all" checked' in html
    assert 'id="reply-mode-auto" value="auto" aria-describedby="reply-mode-auto-text" checked' in (
        html
    )
    assert 'id="channel-picker" hidden' in html
    assert 'max="1000"' in html and 'max="3600"' in html
    assert 'data-saved=\'{"channelIds": [], "channelMode": "all"' in html
    # One form, one Save button for the texts and the behaviour alike.
    assert html.count('type="submit" class="button" id="config-save"') == 1
    start = html.index('<form id="config-form"')
    form = html[start : html.index("</form>", start)]
    assert 'name="channelMode"' in form and 'name="personality"' in form
    assert "<script" not in form and " style=" not in form and " onclick=" not in form

    general = str(guild.channel_named("general").id)
    response = await http.put(
        f"/api/servers/{server['serverId']}",
        json={"channelMode": "except", "channelIds": [general], "replyMode": "silent",
              "maxRepliesPerHour": 12, "minSecondsBetweenReplies": 90},
        headers=ada.headers,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    html = (await http.get(path)).text
    assert 'id="channel-mode-except" value="except" checked' in html
    assert 'value="silent" aria-describedby="reply-mode-silent-text" checked' in html
    assert 'value="12"' in html and 'value="90"' in html
    assert f'"channelIds": ["{general}"]' in html
    assert 'id="channel-picker" hidden' not in html

    for message, delivered, held_back in (
        ("Posted reply", True, None),
        ("Shadow draft", False, "silent"),
        ("Limited draft", False, "rate_limited"),
    ):
        response = await http.post(
            "/api/discord/agent-actions",
            headers=INTERNAL,
            json={"userId": ada.id, "guildId": str(guild.id), "channelId": general,
                  "channelName": "general", "agentMessage": message, "triggerDescription": "t",
                  "messageHistory": {"preceding": []}, "delivered": delivered,
                  "heldBack": held_back},
        )  # fmt: skip
        assert response.status_code == 201, response.text

    html = (await http.get(path)).text
    assert html.count('class="action-item"') == 1 and html.count("action-item action-held") == 2
    assert "Not posted — shadow mode" in html and "Not posted — reply limit" in html
    assert html.count("Draft, not posted") == 2
    assert 'id="actions-filter-all" value="all" checked' in html
    assert "**Draft (not posted — shadow mode):** Shadow draft" in html

    held = (await http.get(path, params={"actions": "held"})).text
    assert "Shadow draft" in held and "Limited draft" in held and "Posted reply" not in held
    assert 'id="actions-filter-held" value="held" checked' in held
    assert f'data-live-src="{path}?actions=held"' in held
    posted = (await http.get(path, params={"actions": "posted"})).text
    assert "Posted reply" in posted and "action-held" not in posted
    assert "Shadow draft" not in posted and "Limited draft" not in posted
    odd = (await http.get(path, params={"actions": "<nonsense>"})).text
    assert 'id="actions-filter-all" value="all" checked' in odd and "Shadow draft" in odd
    assert "&lt;nonsense&gt;" not in odd and "<nonsense>" not in odd

    empty_filter = await add_server(http, ada, fake.add_guild("Empty", bots=[fake.bot(BOT_TOKEN)]))
    html = (await http.get(f"/dashboard/servers/{empty_filter['serverId']}?actions=held")).text
    assert "No drafts held back." in html


async def test_the_chart_shows_held_back_drafts_only_when_there_are_any(
    http: httpx.AsyncClient, ada: ApiUser, fake: FakeDiscord
) -> None:
    guild = fake.add_guild("Charted", bots=[fake.bot(BOT_TOKEN)])
    await connect(http, ada)
    server = await add_server(http, ada, guild)
    path = f"/dashboard/servers/{server['serverId']}"
    now = datetime.now(UTC).isoformat()

    async def report(event: str, count: int) -> None:
        response = await http.post(
            "/api/discord/stats",
            headers=INTERNAL,
            json={"events": [{"userId": ada.id, "guildId": str(guild.id), "event": event,
                              "count": count, "at": now}]},
        )  # fmt: skip
        assert response.status_code == 200

    await report("message_received", 4)
    await report("message_sent", 1)
    html = (await http.get(path)).text
    assert "bar-held" not in html and "Not posted</th>" not in html
    await report("message_held_back", 3)
    html = (await http.get(path)).text
    assert html.count('class="bar-held"') == 30
    assert 'legend legend-held"></span>Not posted' in html
    assert '<th scope="col">Not posted</th>' in html
    assert "<td>4</td><td>1</td><td>3</td>" in html
    assert "3 replies were drafted but not posted." in html
    assert ", 3 not posted</title>" in html


def test_chart_with_held_back_drafts() -> None:
    days = [("2025-01-01", 2, 1), ("2025-01-02", 4, 0)]
    plain = views.daily_chart(days)
    assert not plain.has_held_back and all(c.held is None for c in plain.columns)
    chart = views.daily_chart(days, held_back=[0, 6])
    assert chart.has_held_back and chart.total_held_back == 6
    assert chart.peak == 6  # the tallest bar of any series
    column = chart.columns[1]
    assert column.held is not None and column.held.value == 6
    assert column.held.y == chart.plot_top
    assert column.received.x < column.sent.x < column.held.x
    assert chart.bar_width < plain.bar_width  # three bars share the day's slot
    assert chart.summary.endswith("6 replies were drafted but not posted.")
    assert views.daily_chart(days, held_back=[1, 0]).summary.endswith(
        "1 reply was drafted but not posted."
    )
    with pytest.raises(ValueError):
        views.daily_chart(days, held_back=[1])


def test_action_markdown_of_a_draft() -> None:
    from neonrain.servers.schemas import ActionOut

    draft = ActionOut(
        id="a", channel_id="1", channel_name="general", agent_message="Maybe later.",
        trigger_description="mention", message_history={}, created_at="2025-01-01T00:00:00.000Z",
        delivered=False, held_back="rate_limited",
    )  # fmt: skip
    assert action_markdown(draft).endswith("**Draft (not posted — reply limit):** Maybe later.")
