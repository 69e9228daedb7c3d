"""Work that spans domains, composed in one place (the routes and pages stay thin, and no domain
reaches into another's tables).

* :func:`delete_server` — a server configuration and its chats' agents, in one transaction.
* :func:`discord_status` — the dashboard's status: the bot (``discord_link``), the totals of
  the account's configurations (``servers``) and its agent engines (``engines``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from neonrain.accounts.models import User
from neonrain.chat import service as chat_service
from neonrain.chat.hub import ChatHub
from neonrain.discord_link import service as discord_service
from neonrain.discord_link.schemas import StatusOut
from neonrain.engines import service as engines_service
from neonrain.engines.service import InstallEngines, ReportedEngine
from neonrain.servers import service as servers_service


async def delete_server(session: AsyncSession, hub: ChatHub, user_id: str, server_id: str) -> None:
    """Delete the user's configuration of a server (its websites, scrapes, stats and actions go
    with it); its chats stay, read-only, and let go of their HUMA agents — all committed at once.
    Then open panes of those chats are closed and the agents deleted."""
    await servers_service.delete_config(session, user_id, server_id)
    released = await chat_service.release_server_agents(session, user_id, server_id)
    await session.commit()
    await hub.server_config_deleted(released)


async def discord_status(session: AsyncSession, user: User, engines: InstallEngines) -> StatusOut:
    totals = await servers_service.totals(session, user.id)
    report = await discord_service.worker_report(session, user.id)
    credential = await engines_service.credential(session, user.id)
    reported = (
        ReportedEngine(report.engine_state, report.engine_detail, report.updated_at)
        if report is not None
        else None
    )
    return StatusOut(
        connected=user.discord_token is not None,
        server_count=totals.server_count,
        active_server_count=totals.active_server_count,
        total_messages_sent=totals.messages_sent,
        total_messages_received=totals.messages_received,
        bot=discord_service.bot_out(user),
        invite_url=discord_service.bot_invite_url(user),
        worker=discord_service.worker_state(user, report),
        engines=engines_service.engines_status(engines, credential, reported),
    )
