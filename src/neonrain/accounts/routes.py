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
    return request.client.host if request.client else "unknown"


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
    wait = max(
        state.login_failures_by_email.retry_after(email_key) or 0,
        state.login_failures_by_ip.retry_after(ip_key) or 0,
    )
    if wait:
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"Too many failed sign-ins; try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    try:
        user = await service.authenticate(db, body.email, body.password)
    except service.InvalidCredentials:
        state.login_failures_by_email.hit(email_key)
        state.login_failures_by_ip.hit(ip_key)
        raise
    state.login_failures_by_email.reset(email_key)
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
