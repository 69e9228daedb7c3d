"""The dashboard's polled reads: ``GET /api/servers`` and ``GET /api/discord/status``.

Every open dashboard asks for both again and again, so they take the shortest way through the
stack: no ORM session and no ORM entities (Core statements, built once, served from SQLAlchemy's
compiled cache), served ahead of FastAPI's routers (``app._serve_polled_reads_first``), one
statement each — the session, with everything readiness needs of the account and the account's
configurations joined — in one pass through SQLAlchemy's async bridge (one greenlet takes a pooled
connection, runs it and gives it back), and the answer serialized once
(``api_types.json_answer``). What they answer is what :mod:`neonrain.flows` computes for the pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, Executable, Row, Select, bindparam, select
from sqlalchemy.util import greenlet_spawn

from neonrain import flows, readiness
from neonrain.accounts import service as accounts_service
from neonrain.accounts.clerk import looks_like_jwt
from neonrain.accounts.deps import SESSION_COOKIE, bearer_credential, identify
from neonrain.accounts.models import Session, User
from neonrain.crypto import sha256_hex
from neonrain.db.base import utcnow
from neonrain.discord_link.schemas import StatusOut
from neonrain.errors import Unauthenticated
from neonrain.servers import service as servers_service
from neonrain.servers.schemas import ServerList
from neonrain.state import AppState, read_slot, reading_connection

# The session, the account's bot, the worker's report and the account's own engine: the columns
# of ``accounts_service.SignedInUser``, then ``flows.ACCOUNT_COLUMNS``, then the session's id,
# expiry and last use (``accounts_service.session_upkeep``).
SIGNED_IN_ACCOUNT = flows.with_account_facts(
    select(
        User.id.label("user_id"),
        User.discord_token,
        User.discord_token_status,
        User.discord_bot_id,
        User.discord_bot_username,
        User.discord_bot_avatar,
        *flows.ACCOUNT_COLUMNS,
        Session.id.label("session_id"),
        Session.expires_at,
        Session.last_seen_at,
    )
    .select_from(Session)
    .join(User, User.id == Session.user_id)
).where(Session.token_hash == bindparam("token_hash"))


@dataclass(frozen=True, slots=True)
class Polled:
    """A polled read: its statement by session token (:data:`SIGNED_IN_ACCOUNT` with the route's
    rows joined), the same rows by user id (for Clerk sign-ins), and the column that is NULL in
    the one row of an account without configurations."""

    signed_in: Select[*tuple[Any, ...]]
    by_user: Select[*tuple[Any, ...]]
    present: str


SERVER_LIST = Polled(
    servers_service.with_configs_of(SIGNED_IN_ACCOUNT, servers_service.CONFIG_COLUMNS).order_by(
        *servers_service.CONFIG_ORDER
    ),
    servers_service.LIST_CONFIGS,
    "id",
)
STATUS = Polled(
    servers_service.with_configs_of(SIGNED_IN_ACCOUNT, servers_service.SUMMARY_COLUMNS),
    servers_service.SUMMARIES,
    "guild_id",
)


@dataclass(frozen=True, slots=True)
class Read:
    """What a polled read found: the account, its readiness facts, the route's rows."""

    user: accounts_service.SignedInUser
    account: readiness.Account
    rows: Sequence[Row[Any]]


def _signed_in_read(
    engine: Engine, token_hash: str, polled: Polled
) -> tuple[Row[Any], Sequence[Row[Any]]] | None:
    """Runs inside the async bridge, the whole read in one greenlet: a pooled connection, the
    statement (and the session's upkeep write, rarely), the connection back to the pool."""
    with engine.connect() as connection:
        rows = connection.execute(polled.signed_in, {"token_hash": token_hash}).all()
        if not rows:
            return None
        alive, write = accounts_service.session_upkeep(rows[0], utcnow())
        if write is not None:
            connection.execute(*write)
            connection.commit()
    if not alive:
        return None
    return rows[0], [row for row in rows if getattr(row, polled.present) is not None]


async def read(request: Request, polled: Polled) -> Read:
    """The signed-in account of ``request`` and the rows of ``polled``, read on one connection
    taken in turn with the other readers; 401 without a live session. Authentication is the one
    of every route (``accounts.deps.identify``): a Bearer token, else the session cookie (no
    CSRF check: these are reads)."""
    state: AppState = request.app.state.neonrain
    credential = bearer_credential(request)
    clerk = credential is not None and state.clerk is not None and looks_like_jwt(credential)
    if credential is None:
        credential = request.cookies.get(SESSION_COOKIE)
    if not credential:
        raise Unauthenticated()
    if clerk:
        found = await _clerk_read(request, state, polled.by_user)
    else:
        async with read_slot(state):
            result = await greenlet_spawn(
                _signed_in_read, state.read_engine.sync_engine, sha256_hex(credential), polled
            )
        found = None if result is None else _read_of(state, *result)
    if found is None:
        raise Unauthenticated()
    request.state.user_id = found.user.id
    return found


def _read_of(state: AppState, row: Row[Any], rows: Sequence[Row[Any]]) -> Read:
    user = accounts_service.SignedInUser.of_row(row)
    return Read(user, flows.account_of(state.install_engines, user, row), rows)


async def _clerk_read(request: Request, state: AppState, statement: Executable) -> Read | None:
    """A Clerk session JWT: checked (and its account found or created) the way every route does
    it, with an ORM session of its own; then the same reads, by user id."""
    async with state.sessionmaker() as db:
        identity = await identify(request, db, state)
    if identity is None:
        return None
    user = accounts_service.SignedInUser.of(identity.user)
    async with reading_connection(state) as connection:
        account = await flows.load_account(connection, state.install_engines, user)
        rows = (await connection.execute(statement, {"user_id": user.id})).all()
    return Read(user, account, rows)


async def server_list(request: Request) -> ServerList:
    """``GET /api/servers``: the configurations, each with its readiness."""
    found = await read(request, SERVER_LIST)
    configs = servers_service.configs_of(found.rows)
    return ServerList(servers=[flows.with_readiness(c, found.account) for c in configs])


async def discord_status(request: Request) -> StatusOut:
    """``GET /api/discord/status``: the bot, the configurations' totals, readiness, engines."""
    found = await read(request, STATUS)
    summaries = servers_service.summaries_of(found.rows)
    return flows.status_of(found.user, found.account, summaries)
