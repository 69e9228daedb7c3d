"""Who is asking: the session cookie, a Bearer session token, or a Clerk session JWT."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain.accounts import service
from neonrain.accounts.clerk import looks_like_jwt
from neonrain.accounts.security import csrf_token, new_csrf_token
from neonrain.crypto import constant_time_equals
from neonrain.errors import ApiError, Unauthenticated
from neonrain.state import AppState, get_db, get_read_db

SESSION_COOKIE = "neonrain_session"
CSRF_COOKIE = "neonrain_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_credential(request: Request) -> str | None:
    """The credential of an ``Authorization: Bearer …`` header, if there is one."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    return credential if credential and scheme.lower() == "bearer" else None


async def identify(request: Request, db: AsyncSession, state: AppState) -> service.Identity | None:
    """The identity behind a request's credentials, or None (no check of CSRF here)."""
    credential = bearer_credential(request)
    if credential is not None:
        if state.clerk is not None and looks_like_jwt(credential):
            clerk_user_id = await state.clerk.verify(credential)
            if clerk_user_id is None:
                return None
            user = await service.user_for_clerk_id(db, clerk_user_id)
            return service.Identity(user=user, session_id=None, via="clerk")
        resolved = await service.resolve_session(db, credential)
        if resolved is None:
            return None
        return service.Identity(user=resolved[0], session_id=resolved[1], via="bearer")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        resolved = await service.resolve_session(db, cookie)
        if resolved is not None:
            return service.Identity(user=resolved[0], session_id=resolved[1], via="cookie")
    return None


def expected_csrf_token(request: Request, session_token: str) -> str:
    state: AppState = request.app.state.neonrain
    return csrf_token(state.settings.resolved_secret_key(), session_token)


def csrf_matches(request: Request, sent: str) -> bool:
    """``sent`` is the CSRF token of the request's session cookie (double submit, but bound to
    the session: a cookie and header pair made up by someone else does not match)."""
    session_token = request.cookies.get(SESSION_COOKIE, "")
    if not session_token or not sent:
        return False
    return constant_time_equals(sent, expected_csrf_token(request, session_token))


def check_csrf(request: Request) -> None:
    """Cookie-authenticated writes must send their session's CSRF token in a header."""
    if not csrf_matches(request, request.headers.get(CSRF_HEADER, "")):
        raise ApiError(
            403,
            "CSRF_FAILED",
            "This request is missing its security token; reload the page and try again.",
        )


async def _require_identity(request: Request, db: AsyncSession) -> service.Identity:
    state: AppState = request.app.state.neonrain
    identity = await identify(request, db, state)
    if identity is None:
        raise Unauthenticated()
    if identity.via == "cookie" and request.method not in SAFE_METHODS:
        check_csrf(request)
    request.state.user_id = identity.user.id
    return identity


async def require_identity(
    request: Request, db: Annotated[AsyncSession, Depends(get_db)]
) -> service.Identity:
    return await _require_identity(request, db)


async def require_reading_identity(
    request: Request, db: Annotated[AsyncSession, Depends(get_read_db)]
) -> service.Identity:
    return await _require_identity(request, db)


CurrentIdentity = Annotated[service.Identity, Depends(require_identity)]
#: Read-only routes take these two together (one session per request).
ReadingIdentity = Annotated[service.Identity, Depends(require_reading_identity)]


def set_session_cookies(request: Request, response: Response, token: str) -> None:
    secure = request.url.scheme == "https"
    max_age = int(service.SESSION_IDLE_LIFETIME.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure,
        path="/",
    )  # fmt: skip
    _set_csrf_cookie(request, response, expected_csrf_token(request, token))


def ensure_csrf_cookie(request: Request, response: Response) -> str:
    """The CSRF token for the page's forms, (re)setting the cookie the pages' scripts read when
    it does not hold it yet. With a session it is the session's token; without one, a random
    value that authorises nothing (a sign-in replaces it)."""
    existing = request.cookies.get(CSRF_COOKIE)
    session_token = request.cookies.get(SESSION_COOKIE)
    if session_token:
        value = expected_csrf_token(request, session_token)
    elif existing:
        return existing
    else:
        value = new_csrf_token()
    if existing is None or not constant_time_equals(existing, value):
        _set_csrf_cookie(request, response, value)
    return value


def _set_csrf_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, value, max_age=int(service.SESSION_IDLE_LIFETIME.total_seconds()),
        httponly=False, samesite="lax", secure=request.url.scheme == "https", path="/",
    )  # fmt: skip


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
