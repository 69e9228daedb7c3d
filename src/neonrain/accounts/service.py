"""Accounts: registration, password and Clerk sign-in, server-side sessions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, Row, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from neonrain.accounts import security
from neonrain.accounts.models import Session, User
from neonrain.crypto import sha256_hex
from neonrain.db.base import utcnow
from neonrain.db.changes import record_removed_users
from neonrain.errors import ApiError

log = logging.getLogger(__name__)

SESSION_IDLE_LIFETIME = timedelta(days=30)
# last_seen_at is written at most this often, so reads don't turn into writes.
SESSION_TOUCH_INTERVAL = timedelta(minutes=10)


@dataclass(frozen=True)
class Identity:
    """Who made a request, and how they proved it."""

    user: User
    session_id: str | None  # None for Clerk tokens
    via: str  # 'cookie', 'bearer' or 'clerk'


class EmailTaken(ApiError):
    def __init__(self) -> None:
        super().__init__(409, "EMAIL_TAKEN", "An account with this email already exists.")


class InvalidCredentials(ApiError):
    def __init__(self) -> None:
        super().__init__(401, "INVALID_CREDENTIALS", "The email or password is not right.")


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def register(db: AsyncSession, email: str, password: str) -> User:
    email = normalize_email(email)
    # Hashed before the database is touched, so that no pooled connection is held while the
    # hash waits for its turn (see security.HASH_CONCURRENCY).
    password_hash = await security.hash_password(password)
    if await db.scalar(select(User.id).where(User.email == email)) is not None:
        raise EmailTaken()
    user = User(email=email, password_hash=password_hash)
    db.add(user)
    try:
        await db.commit()
    except IntegrityError as exc:  # a concurrent registration won the race
        await db.rollback()
        raise EmailTaken() from exc
    log.info("account created user=%s", user.id)
    return user


async def authenticate(db: AsyncSession, email: str, password: str) -> User:
    """The user whose email and password these are; the same error for every way to be wrong."""
    user = await db.scalar(select(User).where(User.email == normalize_email(email)))
    await db.commit()  # give the connection back while the password is checked
    if not await security.verify_password(user.password_hash if user else None, password):
        raise InvalidCredentials()
    assert user is not None and user.password_hash is not None
    if security.needs_rehash(user.password_hash):
        user.password_hash = await security.hash_password(password)
        await db.commit()
    return user


async def create_session(db: AsyncSession, user: User, user_agent: str | None) -> str:
    """Start a session and return its secret token (only its hash is stored)."""
    token, token_hash = security.new_session_token()
    now = utcnow()
    db.add(
        Session(
            user_id=user.id,
            token_hash=token_hash,
            expires_at=now + SESSION_IDLE_LIFETIME,
            last_seen_at=now,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    await db.commit()
    return token


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The columns of a signed-in account that the dashboard's reads use, read without the ORM
    (the hot read routes build no ``User`` entity)."""

    id: str
    discord_token: str | None
    discord_token_status: str
    discord_bot_id: str | None
    discord_bot_username: str | None
    discord_bot_avatar: str | None

    @classmethod
    def of_row(cls, row: Row[*tuple[Any, ...]]) -> SignedInUser:
        """From a row whose first columns are the fields, in order."""
        return cls(row[0], row[1], row[2], row[3], row[4], row[5])

    @classmethod
    def of(cls, user: User) -> SignedInUser:
        return cls(
            user.id,
            user.discord_token,
            user.discord_token_status,
            user.discord_bot_id,
            user.discord_bot_username,
            user.discord_bot_avatar,
        )


_SESSION_COLUMNS = (Session.id.label("session_id"), Session.expires_at, Session.last_seen_at)
# Built once (SQLAlchemy's compiled cache then serves them): every signed-in request runs one.
_SESSION_BY_TOKEN_HASH = (
    select(User, *_SESSION_COLUMNS)
    .join(Session, Session.user_id == User.id)
    .where(Session.token_hash == bindparam("token_hash"))
)
END_SESSION = delete(Session).where(Session.id == bindparam("session_id"))
TOUCH_SESSION = (
    update(Session)
    .where(Session.id == bindparam("session_id"))
    .values(
        last_seen_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
        updated_at=bindparam("now"),
    )
)


def session_upkeep(
    row: Row[Any], now: datetime
) -> tuple[bool, tuple[Executable, dict[str, Any]] | None]:
    """Whether the session of ``row`` (a row ending with the session's id, expiry and last use)
    is alive, and the write it needs: its deletion when it expired, or the slide of its idle
    expiry — at most every ``SESSION_TOUCH_INTERVAL``, so reads stay reads."""
    if row.expires_at <= now:
        return False, (END_SESSION, {"session_id": row.session_id})
    if now - row.last_seen_at >= SESSION_TOUCH_INTERVAL:
        touch = {
            "session_id": row.session_id,
            "now": now,
            "expires_at": now + SESSION_IDLE_LIFETIME,
        }
        return True, (TOUCH_SESSION, touch)
    return True, None


async def _live_session(
    db: AsyncSession | AsyncConnection, statement: Executable, token: str
) -> Row[Any] | None:
    """The row of ``statement`` for a session token, or None when there is none or it expired
    (see :func:`session_upkeep`)."""
    row: Row[Any] | None = (await db.execute(statement, {"token_hash": sha256_hex(token)})).first()
    if row is None:
        return None
    alive, write = session_upkeep(row, utcnow())
    if write is not None:
        await db.execute(*write)
        await db.commit()
    return row if alive else None


async def resolve_session(db: AsyncSession, token: str) -> tuple[User, str] | None:
    """The user and session id behind a session token (see :func:`_live_session`)."""
    row = await _live_session(db, _SESSION_BY_TOKEN_HASH, token)
    return None if row is None else (row[0], row.session_id)


async def end_session(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete(Session).where(Session.id == session_id))
    await db.commit()


async def end_all_sessions(db: AsyncSession, user_id: str, keep: str | None = None) -> int:
    statement = delete(Session).where(Session.user_id == user_id)
    if keep is not None:
        statement = statement.where(Session.id != keep)
    result = await db.execute(statement)
    await db.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def user_for_clerk_id(db: AsyncSession, clerk_user_id: str) -> User:
    """Find or create the account of a Clerk user; safe when two first requests race."""
    user = await db.scalar(select(User).where(User.clerk_user_id == clerk_user_id))
    if user is not None:
        return user
    user = User(clerk_user_id=clerk_user_id)
    db.add(user)
    try:
        await db.commit()
        log.info("account created for a Clerk user user=%s", user.id)
        return user
    except IntegrityError:
        await db.rollback()
        existing = await db.scalar(select(User).where(User.clerk_user_id == clerk_user_id))
        if existing is None:
            raise
        return existing


async def change_password(
    db: AsyncSession, identity: Identity, current_password: str, new_password: str
) -> None:
    user = identity.user
    await db.commit()  # give the connection back while the passwords are checked and hashed
    if user.password_hash is not None and not await security.verify_password(
        user.password_hash, current_password
    ):
        raise ApiError(400, "WRONG_PASSWORD", "The current password is not right.")
    user.password_hash = await security.hash_password(new_password)
    user.updated_at = utcnow()
    await db.merge(user)
    await db.commit()
    # Every other device has to sign in again with the new password.
    await end_all_sessions(db, user.id, keep=identity.session_id)


async def delete_account(db: AsyncSession, user: User, confirm_email: str) -> None:
    if not user.email or normalize_email(confirm_email) != user.email:
        raise ApiError(400, "CONFIRMATION_MISMATCH", "Type your account's email to confirm.")
    had_token = user.discord_token is not None
    await db.execute(delete(User).where(User.id == user.id))
    if had_token:
        await record_removed_users(db, [user.id])
    await db.commit()
    log.info("account deleted user=%s", user.id)


async def create_user_cli(db: AsyncSession, email: str, password: str) -> User:
    """``neonrain user create``: the way in when registration is closed."""
    return await register(db, email, password)
