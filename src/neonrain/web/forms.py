"""The pages' forms that work without JavaScript: sign-in, sign-up, sign-out, connecting a bot
token, changing the password.

With JavaScript the pages call the JSON API (sign-out excepted). These handlers exist so that a
form submitted before the script runs (or without it) is POSTed — never a GET that would put a
password or a bot token into the URL and the access log — and still does what it says. Each checks
the form's CSRF field against the cookie (double submit), never logs the body, and answers with a
redirect on success or the same page with the error on failure.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain.accounts import routes as accounts_routes
from neonrain.accounts import service as accounts_service
from neonrain.accounts.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    clear_session_cookies,
    identify,
)
from neonrain.accounts.deps import csrf_matches as session_csrf_matches
from neonrain.accounts.schemas import ChangePasswordBody, Credentials, LoginBody
from neonrain.accounts.service import Identity
from neonrain.crypto import constant_time_equals
from neonrain.discord_link import service as discord_service
from neonrain.discord_link.schemas import ConnectBody
from neonrain.errors import ApiError
from neonrain.state import AppState, Db, State
from neonrain.web import views
from neonrain.web.pages import (
    auth_context,
    dashboard_context,
    render_page,
    settings_context,
    state_of,
)

router = APIRouter(include_in_schema=False)

EXPIRED = "This form has expired; reload the page and try again."
#: Pages holding the Discord connection card, where connecting from it returns to.
CARD_PAGES = ("/dashboard", "/settings")


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (first value of each field)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def csrf_matches(request: Request, form: dict[str, str]) -> bool:
    """The form's ``csrf`` field is its session's token (``accounts.deps.csrf_matches``); a form
    sent without a session (sign-in, sign-up) echoes the cookie the page set."""
    sent = form.get("csrf", "")
    if request.cookies.get(SESSION_COOKIE):
        return session_csrf_matches(request, sent)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(sent and cookie and constant_time_equals(sent, cookie))


def _field_messages(error: ValidationError, messages: dict[str, str]) -> dict[str, str]:
    """Our own sentence per invalid field (pydantic's text may quote the value: a password)."""
    found: dict[str, str] = {}
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem.get("loc") else ""
        if field in messages:
            found.setdefault(field, messages[field])
    return found or {"": "Check the form and try again."}


# ------------------------------------------------------------------------------------ sign in/up


async def _auth_answer(
    request: Request,
    db: AsyncSession,
    state: AppState,
    mode: str,
) -> Response:
    form = await read_form(request)
    target = views.safe_next(form.get("next"))
    email = form.get("email", "").strip()
    password = form.get("password", "")
    errors: dict[str, str] = {}
    status = 400
    if not csrf_matches(request, form):
        errors, status = {"": EXPIRED}, 403
    else:
        holder = Response()
        try:
            if mode == "register":
                body = Credentials(email=email, password=password)
                await accounts_routes.register(body, request, holder, db, state)
            else:
                login = LoginBody(email=email, password=password)
                await accounts_routes.login(login, request, holder, db, state)
        except ValidationError as exc:
            errors = _field_messages(
                exc,
                {
                    "email": "Enter a valid email address, like name@example.com."
                    if email
                    else "Enter your email address.",
                    "password": f"Use {views.PASSWORD_MIN} to {views.PASSWORD_MAX} characters."
                    if mode == "register"
                    else "Enter your password.",
                },
            )
        except ApiError as exc:
            errors, status = {"email" if exc.code == "EMAIL_TAKEN" else "": exc.message}, exc.status
        else:
            done = RedirectResponse(target, status_code=303)
            for value in holder.headers.getlist("set-cookie"):
                done.headers.append("set-cookie", value)
            return done
    context = auth_context(state, mode, target, errors=errors, email=email)
    return render_page(request, "auth.html", context, identity=None, status_code=status)


@router.post("/login")
async def login_form(request: Request, db: Db, state: State) -> Response:
    return await _auth_answer(request, db, state, "login")


@router.post("/register")
async def register_form(request: Request, db: Db, state: State) -> Response:
    return await _auth_answer(request, db, state, "register")


# ------------------------------------------------------------------------------------ sign out


@router.post("/logout")
async def logout(request: Request, db: Db, state: State) -> Response:
    """Sign out from the header's form."""
    form = await read_form(request)
    if not csrf_matches(request, form):
        return RedirectResponse("/dashboard", status_code=303)
    identity = await identify(request, db, state)
    if identity is not None and identity.session_id is not None:
        await accounts_service.end_session(db, identity.session_id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookies(response)
    return response


# ------------------------------------------------------------------------------------ bot token


async def _card_page(
    request: Request,
    db: AsyncSession,
    identity: Identity,
    page: str,
    extra: dict[str, Any],
    status: int,
) -> Response:
    install = state_of(request).install_engines
    if page == "/settings":
        context, template = await settings_context(db, install, identity), "settings.html"
    else:
        context, template = await dashboard_context(db, install, identity), "dashboard.html"
    context.update(extra)
    return render_page(request, template, context, identity=identity, status_code=status)


@router.post("/dashboard/discord")
async def connect_form(request: Request, db: Db, state: State) -> Response:
    form = await read_form(request)
    page = next((p for p in CARD_PAGES if p == form.get("next")), CARD_PAGES[0])
    identity = await identify(request, db, state)
    if identity is None:  # signed out meanwhile: sign in, then back to the page, not here
        return RedirectResponse(f"/login?next={page}", status_code=303)
    if not csrf_matches(request, form):
        return await _card_page(request, db, identity, page, {"token_error": EXPIRED}, 403)
    try:
        body = ConnectBody(token=form.get("token", ""))
        await discord_service.connect(
            db, state.cipher, state.discord_rest, identity.user, body.token
        )
    except ValidationError:
        message = "Paste your bot's token first (at most 512 characters)."
        return await _card_page(request, db, identity, page, {"token_error": message}, 400)
    except ApiError as exc:
        extra = {"token_error": exc.message}
        return await _card_page(request, db, identity, page, extra, exc.status)
    return RedirectResponse(page, status_code=303)


# ------------------------------------------------------------------------------------ password


@router.post("/settings/password")
async def password_form(request: Request, db: Db, state: State) -> Response:
    identity = await identify(request, db, state)
    if identity is None:
        return RedirectResponse("/login?next=/settings", status_code=303)
    form = await read_form(request)
    extra: dict[str, Any]
    status = 400
    if not csrf_matches(request, form):
        extra, status = {"password_errors": {"": EXPIRED}}, 403
    else:
        try:
            body = ChangePasswordBody.model_validate(
                {
                    "currentPassword": form.get("currentPassword", ""),
                    "newPassword": form.get("newPassword", ""),
                }
            )
            await accounts_service.change_password(
                db, identity, body.current_password, body.new_password
            )
        except ValidationError as exc:
            messages = {
                "currentPassword": "Enter your current password.",
                "newPassword": f"Use {views.PASSWORD_MIN} to {views.PASSWORD_MAX} characters.",
            }
            extra = {"password_errors": _field_messages(exc, messages)}
        except ApiError as exc:
            field = "currentPassword" if exc.code == "WRONG_PASSWORD" else ""
            extra, status = {"password_errors": {field: exc.message}}, exc.status
        else:
            message = "Password changed. Your other devices were signed out."
            extra, status = {"password_status": message}, 200
    return await _card_page(request, db, identity, "/settings", extra, status)


# A form's answer page has the form's address; reloading or going back there is a GET.
@router.get("/dashboard/discord")
async def connect_form_address() -> Response:
    return RedirectResponse("/dashboard", status_code=303)


@router.get("/settings/password")
async def password_form_address() -> Response:
    return RedirectResponse("/settings", status_code=303)
