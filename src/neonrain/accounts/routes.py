"""``/api/auth``: register, login, logout, me, and the account settings actions."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from neonrain.accounts import service
from neonrain.accounts.deps import (
    CurrentIdentity,
    ReadingIdentity,
    clear_session_cookies,
    set_session_cookies,
)
from neonrain.accounts.models import User
from neonrain.accounts.ratelimit import reserve
from neonrain.accounts.schemas import (
    AuthResult,
    ChangePasswordBody,
    Credentials,
    DeleteAccountBody,
    LoginBody,
    UserEnvelope,
    UserOut,
)
from neonrain.errors import ApiError
from neonrain.state import Db, State

router = APIRouter(prefix="/api/auth", tags=["accounts"])


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email)


def client_address(request: Request) -> str:
    """The client's address; behind a trusted proxy (``FORWARDED_ALLOW_IPS``) the one it
    forwarded (see :class:`neonrain.middleware.TrustedProxyHeaders`)."""
    return request.client.host if request.client else "unknown"


def rate_limited(wait: int, what: str) -> ApiError:
    return ApiError(
        429,
        "RATE_LIMITED",
        f"{what}; try again in {wait} seconds.",
        headers={"Retry-After": str(wait)},
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=AuthResult)
async def register(
    body: Credentials, request: Request, response: Response, db: Db, state: State
) -> AuthResult:
    if not state.settings.allow_registration:
        raise ApiError(
            403,
            "REGISTRATION_CLOSED",
            "Sign-ups are closed on this installation; ask its administrator for an account.",
        )
    # Every attempt counts, before the (deliberately slow) password hashing.
    wait = reserve((state.registrations_by_ip, client_address(request)))
    if wait:
        raise rate_limited(wait, "Too many sign-ups from your address")
    user = await service.register(db, body.email, body.password)
    token = await service.create_session(db, user, request.headers.get("user-agent"))
    set_session_cookies(request, response, token)
    return AuthResult(user=user_out(user), token=token)


@router.post("/login", response_model=AuthResult)
async def login(
    body: LoginBody, request: Request, response: Response, db: Db, state: State
) -> AuthResult:
    email_key = service.normalize_email(body.email)
    ip_key = client_address(request)
    attempts = state.login_failures_by_email, state.login_failures_by_ip
    wait = reserve((attempts[0], email_key), (attempts[1], ip_key))
    if wait:
        raise rate_limited(wait, "Too many failed sign-ins")
    try:
        user = await service.authenticate(db, body.email, body.password)
    except service.InvalidCredentials:
        raise  # the reserved attempt stays counted
    except BaseException:
        attempts[0].release(email_key)  # not a wrong password (database down, cancelled)
        attempts[1].release(ip_key)
        raise
    attempts[0].reset(email_key)
    attempts[1].release(ip_key)
    token = await service.create_session(db, user, request.headers.get("user-agent"))
    set_session_cookies(request, response, token)
    return AuthResult(user=user_out(user), token=token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(identity: CurrentIdentity, db: Db) -> Response:
    if identity.session_id is not None:
        await service.end_session(db, identity.session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookies(response)
    return response


@router.get("/me", response_model=UserEnvelope)
async def me(identity: ReadingIdentity) -> UserEnvelope:
    return UserEnvelope(user=user_out(identity.user))


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(body: ChangePasswordBody, identity: CurrentIdentity, db: Db) -> None:
    await service.change_password(db, identity, body.current_password, body.new_password)


@router.post("/logout-everywhere", status_code=status.HTTP_204_NO_CONTENT)
async def logout_everywhere(identity: CurrentIdentity, db: Db) -> Response:
    await service.end_all_sessions(db, identity.user.id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookies(response)
    return response


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
async def delete_account(body: DeleteAccountBody, identity: CurrentIdentity, db: Db) -> Response:
    await service.delete_account(db, identity.user, body.confirm_email)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookies(response)
    return response
