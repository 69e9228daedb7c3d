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
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain import flows
from neonrain.accounts import service as accounts_service
from neonrain.accounts.deps import (
    CSRF_COOKIE,
    clear_session_cookies,
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
    PERSONALITY_MAX,
    RULES_MAX,
)
from neonrain.crypto import constant_time_equals
from neonrain.discord_link import service as discord_service
from neonrain.discord_link.schemas import StatusOut
from neonrain.engines import service as engines_service
from neonrain.errors import ApiError
from neonrain.servers import service as servers_service
from neonrain.servers.schemas import ActionOut
from neonrain.state import AppState, Db, ReadDb, State
from neonrain.web import views
from neonrain.web.templating import templates

router = APIRouter(include_in_schema=False)

SPARKLINE_DAYS = 14
CHART_DAYS = 30
ACTIONS_PER_PAGE = 10
PRECEDING_SHOWN = 3


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


def not_found_page(request: Request) -> Response:
    return templates.TemplateResponse(
        request,
        "not_found.html",
        {"title": "Not found", "identity": None, "csrf": "", "v": views, "nav": ""},
        status_code=404,
    )


async def _discord_context(db: AsyncSession, identity: Identity, state: AppState) -> dict[str, Any]:
    status = await flows.discord_status(db, identity.user, state.install_engines)
    return {
        "status": status,
        "token_rejected": identity.user.discord_token_status == discord_service.TOKEN_INVALID,
    }


def _can_activate(identity: Identity, status: StatusOut) -> str | None:
    """Why the bot cannot be switched on, or None when it can."""
    if not status.connected:
        return "Connect your Discord bot first (Dashboard → Discord connection)."
    if (
        identity.user.discord_token_status == discord_service.TOKEN_INVALID
        or status.worker.state == "token_invalid"
    ):
        return discord_service.TOKEN_REJECTED
    return None


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
    lines += ["", f"**Reply:** {action.agent_message}"]
    return "\n".join(lines)


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
    }


# ------------------------------------------------------------------------------------ pages


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    return _render(request, "landing.html", {"title": "Neonrain"}, identity=identity)


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
    context = {
        "title": "Create an account" if mode == "register" else "Sign in",
        "mode": mode,
        "next": target,
        "registration_open": state.settings.allow_registration,
    }
    return _render(request, "auth.html", context, identity=None)


@router.post("/logout")
async def logout(request: Request, db: Db, state: State) -> Response:
    """Sign out from the header's form (works without JavaScript): CSRF field = cookie."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    sent = (form.get("csrf") or [""])[0]
    cookie = request.cookies.get(CSRF_COOKIE, "")
    response = RedirectResponse("/login", status_code=303)
    if not sent or not cookie or not constant_time_equals(sent, cookie):
        return RedirectResponse("/dashboard", status_code=303)
    identity = await identify(request, db, state)
    if identity is not None and identity.session_id is not None:
        await accounts_service.end_session(db, identity.session_id)
    clear_session_cookies(response)
    return response


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    if identity is None:
        return _login_redirect(request)
    discord = await _discord_context(db, identity, state)
    servers = await servers_service.list_configs(db, identity.user.id)
    sparklines = await _sparklines(db, identity.user.id)
    context = {
        "title": "Dashboard",
        "nav": "dashboard",
        **discord,
        "servers": servers,
        "sparklines": sparklines,
        "blank_sparkline": views.sparkline([0] * SPARKLINE_DAYS),
        "activation_blocked": _can_activate(identity, discord["status"]),
        "last_activity": {
            s.server_id: views.later(s.last_message_sent_at, s.last_message_received_at)
            for s in servers
        },
    }
    return _render(request, "dashboard.html", context, identity=identity)


@router.get("/dashboard/servers/{server_id}", response_class=HTMLResponse)
async def server_page(request: Request, server_id: str, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    if identity is None:
        return _login_redirect(request)
    try:
        detail = await servers_service.server_detail(db, identity.user.id, server_id)
        stats = await servers_service.daily_stats(db, identity.user.id, server_id, CHART_DAYS)
        before = request.query_params.get("actionsBefore") or None
        try:
            page = await servers_service.list_actions(
                db, identity.user.id, server_id, ACTIONS_PER_PAGE, before
            )
        except servers_service.ServerNotFound:
            raise
        except ApiError:  # an unknown or stale cursor: show the first page instead
            page = await servers_service.list_actions(
                db, identity.user.id, server_id, ACTIONS_PER_PAGE, None
            )
    except servers_service.ServerNotFound:
        return not_found_page(request)
    discord = await _discord_context(db, identity, state)
    engine = await engines_service.engine_out(db, state.install_engines, identity.user.id)
    chart = views.daily_chart([(d.date, d.messages_received, d.messages_sent) for d in stats.days])
    context = {
        "title": detail.guild_name,
        "nav": "dashboard",
        **discord,
        "server": detail,
        "chart": chart,
        "actions": [_action_view(a) for a in page.actions],
        "next_cursor": page.next_cursor,
        "activation_blocked": _can_activate(identity, discord["status"]),
        "engine": engine,
        "limits": {
            "botName": BOT_NAME_MAX,
            "personality": PERSONALITY_MAX,
            "rules": RULES_MAX,
            "information": INFORMATION_MAX,
        },
    }
    return _render(request, "server.html", context, identity=identity)


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    if identity is None:
        return _login_redirect(request)
    discord = await _discord_context(db, identity, state)
    install = state.install_engines
    context = {
        "title": "Settings",
        "nav": "settings",
        **discord,
        "has_password": identity.user.password_hash is not None,
        "engine": await engines_service.engine_out(db, install, identity.user.id),
        "install_model": install.openai.model if install.openai is not None else None,
        "limits": {
            "baseUrl": ENGINE_BASE_URL_MAX,
            "model": ENGINE_MODEL_MAX,
            "apiKey": ENGINE_API_KEY_MAX,
        },
    }
    return _render(request, "settings.html", context, identity=identity)


# Public names for other page modules (e.g. neonrain.web.chat_page), which render into base.html:
# ``render_page(request, "x.html", {"title": ..., "nav": ...}, identity=identity)``.
render_page = _render
login_redirect = _login_redirect
