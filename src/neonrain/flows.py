"""Work that spans domains, composed in one place (the routes and pages stay thin, and no domain
reaches into another's tables).

* :func:`delete_server` — a server configuration and its chats' agents, in one transaction.
* :func:`load_account` — what :mod:`neonrain.readiness` needs to know about an account.
* :func:`discord_status` — the dashboard's status: the bot (``discord_link``), the totals of the
  account's configurations (``servers``), its agent engines (``engines``) and its readiness.
* :func:`list_servers`, :func:`server_detail`, :func:`with_readiness` — configurations as the API
  and the pages show them, each with its readiness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from neonrain import readiness
from neonrain.accounts.models import User
from neonrain.chat import service as chat_service
from neonrain.chat.hub import ChatHub
from neonrain.discord_link import service as discord_service
from neonrain.discord_link.models import WorkerReport
from neonrain.discord_link.schemas import StatusOut
from neonrain.engines import service as engines_service
from neonrain.engines.models import EngineCredential
from neonrain.engines.service import InstallEngines, ReportedEngine
from neonrain.servers import service as servers_service
from neonrain.servers.schemas import ServerConfigOut, ServerDetail


async def delete_server(session: AsyncSession, hub: ChatHub, user_id: str, server_id: str) -> None:
    """Delete the user's configuration of a server (its websites, scrapes, stats and actions go
    with it); its chats stay, read-only, and let go of their HUMA agents — all committed at once.
    Then open panes of those chats are closed and the agents deleted."""
    await servers_service.delete_config(session, user_id, server_id)
    released = await chat_service.release_server_agents(session, user_id, server_id)
    await session.commit()
    await hub.server_config_deleted(released)


# ------------------------------------------------------------------------------------ readiness


@dataclass(frozen=True, slots=True)
class _Report:
    """The worker's report, as read by :data:`ACCOUNT_COLUMNS` (``discord_service.ReportFacts``)."""

    state: str
    detail: str
    updated_at: datetime
    reason: str | None
    guilds: list[dict[str, Any]]
    engine_state: str | None
    engine_detail: str


@dataclass(frozen=True, slots=True)
class _Credential:
    """The account's own engine's state (``engines_service.CredentialFacts``)."""

    state: str
    state_detail: str
    updated_at: datetime


#: What readiness needs of an account besides its bot: the worker's report and the account's own
#: engine. Read together (every dashboard read needs both, and it is polled), as columns, not
#: entities; :func:`with_account_facts` joins their tables to a query over ``users``.
ACCOUNT_COLUMNS = (
    WorkerReport.state.label("report_state"),
    WorkerReport.detail.label("report_detail"),
    WorkerReport.updated_at.label("report_updated_at"),
    WorkerReport.reason.label("report_reason"),
    WorkerReport.guilds.label("report_guilds"),
    WorkerReport.engine_state.label("report_engine_state"),
    WorkerReport.engine_detail.label("report_engine_detail"),
    EngineCredential.id.label("credential_id"),
    EngineCredential.state.label("credential_state"),
    EngineCredential.state_detail.label("credential_detail"),
    EngineCredential.updated_at.label("credential_updated_at"),
)


def with_account_facts(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """``query`` (over ``users``, selecting :data:`ACCOUNT_COLUMNS`) with their tables joined."""
    return query.outerjoin(EngineCredential, EngineCredential.user_id == User.id).outerjoin(
        WorkerReport, WorkerReport.user_id == User.id
    )


# Built once: one query.
_ACCOUNT_FACTS = with_account_facts(select(*ACCOUNT_COLUMNS).select_from(User)).where(
    User.id == bindparam("user_id")
)

Reading = AsyncSession | AsyncConnection


def account_of(
    install: InstallEngines, user: discord_service.BotAccount, row: Row[*tuple[Any, ...]] | None
) -> readiness.Account:
    """The readiness facts of ``user`` from a row holding :data:`ACCOUNT_COLUMNS`."""
    report = credential = None
    if row is not None and row.report_state is not None:
        report = _Report(
            row.report_state,
            row.report_detail,
            row.report_updated_at,
            row.report_reason,
            row.report_guilds,
            row.report_engine_state,
            row.report_engine_detail,
        )
    if row is not None and row.credential_id is not None:
        credential = _Credential(
            row.credential_state, row.credential_detail, row.credential_updated_at
        )
    return readiness.account(user, report, credential=credential, install=install)


async def load_account(
    db: Reading, install: InstallEngines, user: discord_service.BotAccount
) -> readiness.Account:
    """The facts readiness is computed from (one query)."""
    row = (await db.execute(_ACCOUNT_FACTS, {"user_id": user.id})).first()
    return account_of(install, user, row)


def status_out(
    user: discord_service.BotAccount,
    account: readiness.Account,
    servers: Sequence[servers_service.ConfigSummary],
    ready: int,
) -> StatusOut:
    active = [s for s in servers if s.bot_active]
    report = account.report
    reported = (
        ReportedEngine(report.engine_state, report.engine_detail, report.updated_at)
        if report is not None
        else None
    )
    return StatusOut(
        connected=user.discord_token is not None,
        server_count=len(servers),
        active_server_count=len(active),
        ready_server_count=ready,
        total_messages_sent=sum(s.messages_sent for s in servers),
        total_messages_received=sum(s.messages_received for s in servers),
        bot=discord_service.bot_out(user),
        invite_url=discord_service.bot_invite_url(user),
        worker=discord_service.worker_state(user, account.report),
        readiness=readiness.account_readiness(account, (s.engine for s in active)),
        engines=engines_service.engines_status(account.install, account.credential, reported),
    )


async def discord_status(
    session: Reading,
    install: InstallEngines,
    user: discord_service.BotAccount,
    account: readiness.Account | None = None,
) -> StatusOut:
    """``GET /api/discord/status``: two queries (the configurations' summaries, the account)."""
    account = account or await load_account(session, install, user)
    return status_of(user, account, await servers_service.summaries(session, user.id))


def status_of(
    user: discord_service.BotAccount,
    account: readiness.Account,
    servers: Sequence[servers_service.ConfigSummary],
) -> StatusOut:
    ready = sum(readiness.server_readiness(account, s).ready for s in servers)
    return status_out(user, account, servers, ready)


def with_readiness(config: ServerConfigOut, account: readiness.Account) -> ServerConfigOut:
    return config.model_copy(update={"readiness": readiness.server_readiness(account, config)})


async def list_servers(
    session: Reading,
    install: InstallEngines,
    user: discord_service.BotAccount,
    account: readiness.Account | None = None,
) -> list[ServerConfigOut]:
    account = account or await load_account(session, install, user)
    configs = await servers_service.list_configs(session, user.id)
    return [with_readiness(config, account) for config in configs]


async def dashboard(
    session: AsyncSession,
    install: InstallEngines,
    user: User,
    account: readiness.Account | None = None,
) -> tuple[StatusOut, list[ServerConfigOut]]:
    """The dashboard's status and server cards, from one read of each (the totals are summed
    from the cards instead of being queried again)."""
    account = account or await load_account(session, install, user)
    servers = await list_servers(session, install, user, account)
    summaries = [
        servers_service.ConfigSummary(
            guild_id=s.guild_id,
            guild_name=s.guild_name,
            bot_active=s.bot_active,
            engine=s.engine,
            messages_sent=s.messages_sent_count,
            messages_received=s.messages_received_count,
        )
        for s in servers
    ]
    ready = sum(1 for s in servers if s.readiness is not None and s.readiness.ready)
    return status_out(user, account, summaries, ready), servers


async def server_detail(
    session: AsyncSession,
    install: InstallEngines,
    user: User,
    server_id: str,
    account: readiness.Account | None = None,
) -> ServerDetail:
    detail = await servers_service.server_detail(session, user.id, server_id)
    account = account or await load_account(session, install, user)
    return detail.model_copy(update={"readiness": readiness.server_readiness(account, detail)})


async def readiness_of(
    session: AsyncSession, install: InstallEngines, user: User, config: ServerConfigOut
) -> ServerConfigOut:
    """``config`` (just written) with its readiness."""
    return with_readiness(config, await load_account(session, install, user))
