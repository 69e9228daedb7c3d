"""Server-rendered pages: landing, sign-up/in, dashboard, one server, settings (web-ui.md).

Pages render their first view from the services (the same functions the JSON API uses, scoped to
the signed-in user) and the small JS modules in ``static/js`` call the JSON API for actions. Live
regions (``data-live``) are refreshed by fetching the same page again and swapping them, so every
piece of HTML comes from these templates, with Jinja2's autoescaping.

The Discord token and an account's model key are never read here: only the bot's id, name and
avatar, and whether a key is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain import flows, readiness
from neonrain.accounts.deps import (
    ensure_csrf_cookie,
    identify,
)
from neonrain.accounts.service import Identity
from neonrain.contract import (
    BOT_NAME_MAX,
    ENGINE_API_KEY_MAX,
    ENGINE_BASE_URL_MAX,
    ENGINE_MODEL_MAX,
    INFORMATION_MAX,
    MAX_REPLIES_PER_HOUR_MAX,
    MIN_SECONDS_BETWEEN_REPLIES_MAX,
    PERSONALITY_MAX,
    RULES_MAX,
)
from neonrain.discord_link import service as discord_service
from neonrain.discord_link.schemas import StatusOut
from neonrain.engines import service as engines_service
from neonrain.engines.service import InstallEngines
from neonrain.errors import ApiError
from neonrain.servers import service as servers_service
from neonrain.servers.schemas import ActionOut
from neonrain.state import AppState, ReadDb, State
from neonrain.web import views
from neonrain.web.templating import templates

router = APIRouter(include_in_schema=False)

SPARKLINE_DAYS = 14
CHART_DAYS = 30
ACTIONS_PER_PAGE = 10
PRECEDING_SHOWN = 3
#: The server page's agent-action filter (``?actions=``): all, posted only, held-back drafts only.
ACTION_FILTERS: dict[str, bool | None] = {"all": None, "posted": True, "held": False}
#: Why a draft was not posted, as the actions list says it.
HELD_BACK_LABELS = {
    "silent": "Not posted — shadow mode",
    "rate_limited": "Not posted — reply limit",
    None: "Not posted",
}


# ------------------------------------------------------------------------------------ helpers


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    identity: Identity | None,
    status_code: int = 200,
) -> Response:
    holder = Response()
    csrf = ensure_csrf_cookie(request, holder)
    base: dict[str, Any] = {
        "identity": identity,
        "user_email": identity.user.email if identity else None,
        "csrf": csrf,
        "clerk_enabled": _state(request).settings.clerk_enabled,
        "v": views,
        "now": datetime.now(UTC),
        "nav": "",
    }
    base.update(context)
    page = templates.TemplateResponse(request, template, base, status_code=status_code)
    for value in holder.headers.getlist("set-cookie"):
        page.headers.append("set-cookie", value)
    page.headers["Cache-Control"] = "no-store"
    return page


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.neonrain
    return state


async def not_found_page(request: Request) -> Response:
    """The 404 page, with the header of whoever asks (signed in or not)."""
    state = _state(request)
    identity: Identity | None = None
    try:
        async with state.read_sessionmaker() as db:
            identity = await identify(request, db, state)
    except (OSError, SQLAlchemyError):  # the database is away: a 404 needs no account
        identity = None
    return _render(
        request, "not_found.html", {"title": "Not found"}, identity=identity, status_code=404
    )


def _discord_context(identity: Identity, status: StatusOut) -> dict[str, Any]:
    return {
        "status": status,
        "token_rejected": status.connected
        and (
            identity.user.discord_token_status == discord_service.TOKEN_INVALID
            or status.worker.state == "token_invalid"
        ),
    }


def _can_activate(account: readiness.Account) -> str | None:
    """Why the bot cannot be switched on (no token, token rejected), or None when it can."""
    if not account.connected:
        return "Connect your Discord bot first (Dashboard → Discord connection)."
    token = readiness.token_check(account)
    return token.message if token.state != "ok" else None


async def _sparklines(
    db: AsyncSession, user_id: str, days: int = SPARKLINE_DAYS
) -> dict[str, views.Sparkline]:
    series = await servers_service.activity_series(db, user_id, days)
    return {config_id: views.sparkline(values) for config_id, values in series.items()}


def action_markdown(action: ActionOut) -> str:
    """An agent action as Markdown, for "Copy as Markdown"."""
    lines = [
        f"**#{action.channel_name}** · {views.absolute_time(action.created_at)}",
        "",
        f"_Trigger:_ {action.trigger_description}",
        "",
    ]
    for message in _preceding(action):
        content = str(message.get("content", "")).replace("\n", "\n> ")
        lines.append(f"> **{message.get('author', '?')}**: {content}")
    if action.delivered:
        lines += ["", f"**Reply:** {action.agent_message}"]
    else:
        lines += ["", f"**Draft ({held_back_label(action).lower()}):** {action.agent_message}"]
    return "\n".join(lines)


def held_back_label(action: ActionOut) -> str:
    return HELD_BACK_LABELS.get(action.held_back, HELD_BACK_LABELS[None])


def _preceding(action: ActionOut) -> list[dict[str, Any]]:
    history = action.message_history or {}
    preceding = history.get("preceding") if isinstance(history, dict) else None
    if not isinstance(preceding, list):
        return []
    return [m for m in preceding if isinstance(m, dict)]


def _action_view(action: ActionOut) -> dict[str, Any]:
    preceding = _preceding(action)
    return {
        "action": action,
        "preceding": preceding,
        "hidden_count": max(len(preceding) - PRECEDING_SHOWN, 0),
        "markdown": action_markdown(action),
        "held_back_label": None if action.delivered else held_back_label(action),
    }


# ------------------------------------------------------------------------------------ pages


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    return _render(request, "landing.html", {"title": None}, identity=identity)


@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request, db: ReadDb, state: State) -> Response:
    return await _auth_page(request, db, state, "register")


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, db: ReadDb, state: State) -> Response:
    return await _auth_page(request, db, state, "login")


async def _auth_page(request: Request, db: AsyncSession, state: AppState, mode: str) -> Response:
    target = views.safe_next(request.query_params.get("next"))
    identity = await identify(request, db, state)
    if identity is not None:
        return RedirectResponse(target, status_code=303)
    return _render(request, "auth.html", auth_context(state, mode, target), identity=None)


def auth_context(
    state: AppState,
    mode: str,
    target: str,
    *,
    errors: dict[str, str] | None = None,
    email: str = "",
) -> dict[str, Any]:
    """The sign-in/up page; ``errors`` maps a field (or "" for the form) to its message."""
    return {
        "title": "Create an account" if mode == "register" else "Sign in",
        "mode": mode,
        "next": target,
        "registration_open": state.settings.allow_registration,
        "errors": errors or {},
        "email": email,
    }


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    if identity is None:
        return _login_redirect(request)
    context = await dashboard_context(db, state.install_engines, identity)
    return _render(request, "dashboard.html", context, identity=identity)


async def dashboard_context(
    db: AsyncSession, install: InstallEngines, identity: Identity
) -> dict[str, Any]:
    account = await flows.load_account(db, install, identity.user)
    status, servers = await flows.dashboard(db, install, identity.user, account)
    sparklines = await _sparklines(db, identity.user.id)
    return {
        "title": "Dashboard",
        "nav": "dashboard",
        **_discord_context(identity, status),
        "servers": servers,
        "sparklines": sparklines,
        "blank_sparkline": views.sparkline([0] * SPARKLINE_DAYS),
        "activation_blocked": _can_activate(account),
        "last_activity": {
            s.server_id: views.later(s.last_message_sent_at, s.last_message_received_at)
            for s in servers
        },
    }


@router.get("/dashboard/servers/{server_id}", response_class=HTMLResponse)
async def server_page(request: Request, server_id: str, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    if identity is None:
        return _login_redirect(request)
    account = await flows.load_account(db, state.install_engines, identity.user)
    actions_filter = request.query_params.get("actions", "all")
    if actions_filter not in ACTION_FILTERS:
        actions_filter = "all"
    delivered = ACTION_FILTERS[actions_filter]
    try:
        detail = await flows.server_detail(
            db, state.install_engines, identity.user, server_id, account
        )
        stats = await servers_service.daily_stats(db, identity.user.id, server_id, CHART_DAYS)
        before = request.query_params.get("actionsBefore") or None
        try:
            page = await servers_service.list_actions(
                db, identity.user.id, server_id, ACTIONS_PER_PAGE, before, delivered
            )
        except servers_service.ServerNotFound:
            raise
        except ApiError:  # an unknown or stale cursor: show the first page instead
            page = await servers_service.list_actions(
                db, identity.user.id, server_id, ACTIONS_PER_PAGE, None, delivered
            )
    except servers_service.ServerNotFound:
        return await not_found_page(request)
    engine = await engines_service.engine_out(db, state.install_engines, identity.user.id)
    chart = views.daily_chart(
        [(d.date, d.messages_received, d.messages_sent) for d in stats.days],
        held_back=[d.messages_held_back for d in stats.days],
    )
    context = {
        "title": detail.guild_name,
        "nav": "dashboard",
        "server": detail,
        "chart": chart,
        "actions": [_action_view(a) for a in page.actions],
        "next_cursor": page.next_cursor,
        "actions_filter": actions_filter,
        "activation_blocked": _can_activate(account),
        "engine": engine,
        "limits": {
            "botName": BOT_NAME_MAX,
            "personality": PERSONALITY_MAX,
            "rules": RULES_MAX,
            "information": INFORMATION_MAX,
            "maxRepliesPerHour": MAX_REPLIES_PER_HOUR_MAX,
            "minSecondsBetweenReplies": MIN_SECONDS_BETWEEN_REPLIES_MAX,
        },
        "behaviour": {
            "channelMode": detail.channel_mode,
            "channelIds": detail.channel_ids,
            "replyMode": detail.reply_mode,
            "maxRepliesPerHour": detail.max_replies_per_hour,
            "minSecondsBetweenReplies": detail.min_seconds_between_replies,
        },
    }
    return _render(request, "server.html", context, identity=identity)


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    if identity is None:
        return _login_redirect(request)
    context = await settings_context(db, state.install_engines, identity)
    return _render(request, "settings.html", context, identity=identity)


async def settings_context(
    db: AsyncSession, install: InstallEngines, identity: Identity
) -> dict[str, Any]:
    status = await flows.discord_status(db, install, identity.user)
    return {
        "title": "Settings",
        "nav": "settings",
        **_discord_context(identity, status),
        "has_password": identity.user.password_hash is not None,
        "engine": await engines_service.engine_out(db, install, identity.user.id),
        "install_model": install.openai.model if install.openai is not None else None,
        "limits": {
            "baseUrl": ENGINE_BASE_URL_MAX,
            "model": ENGINE_MODEL_MAX,
            "apiKey": ENGINE_API_KEY_MAX,
        },
    }


@router.get("/docs")
async def docs_redirect() -> Response:
    """Where people look for API documentation first."""
    return RedirectResponse("/api/docs", status_code=307)


# Public names for other page modules (e.g. neonrain.web.chat_page), which render into base.html:
# ``render_page(request, "x.html", {"title": ..., "nav": ...}, identity=identity)``.
render_page = _render
login_redirect = _login_redirect
state_of = _state
