"""What the Discord worker reports about a configuration: message counts and agent actions.

Called by the internal API (``X-API-Key``) with the contract's bodies. Counters are added in SQL and
daily rows upserted in the same transaction, so concurrent reports are never lost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, case, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain.accounts.models import User
from neonrain.contract import (
    ACTION_PRECEDING_KEPT,
    EVENT_HELD_BACK,
    EVENT_RECEIVED,
    AgentActionBody,
    ChannelCursor,
    StatEvent,
)
from neonrain.db.base import UTCDateTime, utcnow
from neonrain.db.dialect import dialect_insert
from neonrain.errors import ApiError
from neonrain.servers.models import AgentAction, Server, ServerDailyStat, UserServerConfig
from neonrain.servers.models import ChannelCursor as ChannelCursor_
from neonrain.servers.schemas import StatsResult


async def configs_by_guild(
    session: AsyncSession, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Configuration ids of (userId, guildId) pairs, in one query."""
    wanted = set(pairs)
    if not wanted:
        return {}
    rows = await session.execute(
        select(UserServerConfig.user_id, Server.guild_id, UserServerConfig.id)
        .join(Server, Server.id == UserServerConfig.server_id)
        .where(
            UserServerConfig.user_id.in_(sorted({u for u, _ in wanted})),
            Server.guild_id.in_(sorted({g for _, g in wanted})),
        )
    )
    return {(u, g): c for u, g, c in rows.all() if (u, g) in wanted}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class _Totals:
    received: int = 0
    sent: int = 0
    held_back: int = 0
    received_at: datetime | None = None
    sent_at: datetime | None = None

    def add(self, event: str, count: int, at: datetime) -> None:
        if event == EVENT_HELD_BACK:  # counted per day only (the chart's third series)
            self.held_back += count
        elif event == EVENT_RECEIVED:
            self.received += count
            self.received_at = at if self.received_at is None else max(self.received_at, at)
        else:
            self.sent += count
            self.sent_at = at if self.sent_at is None else max(self.sent_at, at)


def _later(column: Any, name: str) -> Any:
    """max(column, :name) where a NULL parameter keeps the column (portable: no GREATEST)."""
    value = bindparam(name, type_=UTCDateTime())
    return case((column.is_(None), value), (value > column, value), else_=column)


async def apply_stats(session: AsyncSession, events: Sequence[StatEvent]) -> StatsResult:
    """Add a batch of message counts: counters and last-at in SQL, daily rows upserted, all in
    one transaction. Events for unknown configurations are ignored."""
    configs = await configs_by_guild(session, ((e.user_id, e.guild_id) for e in events))
    totals: dict[str, _Totals] = defaultdict(_Totals)
    daily: dict[tuple[str, date], _Totals] = defaultdict(_Totals)
    applied = 0
    for event in events:
        config_id = configs.get((event.user_id, event.guild_id))
        if config_id is None:
            continue
        at = _utc(event.at)
        totals[config_id].add(event.event, event.count, at)
        daily[(config_id, at.date())].add(event.event, event.count, at)
        applied += 1
    if totals:
        table = cast(Table, UserServerConfig.__table__)
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                messages_received_count=table.c.messages_received_count + bindparam("b_received"),
                messages_sent_count=table.c.messages_sent_count + bindparam("b_sent"),
                last_message_received_at=_later(table.c.last_message_received_at, "b_received_at"),
                last_message_sent_at=_later(table.c.last_message_sent_at, "b_sent_at"),
            ),
            [
                {
                    "b_id": config_id,
                    "b_received": t.received,
                    "b_sent": t.sent,
                    "b_received_at": t.received_at,
                    "b_sent_at": t.sent_at,
                }
                for config_id, t in sorted(totals.items())
            ],
        )
        insert = dialect_insert(session, ServerDailyStat).values(
            [
                {
                    "user_server_config_id": config_id,
                    "day": day,
                    "messages_received": t.received,
                    "messages_sent": t.sent,
                    "messages_held_back": t.held_back,
                }
                for (config_id, day), t in sorted(daily.items())
            ]
        )
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=["user_server_config_id", "day"],
                set_={
                    "messages_received": ServerDailyStat.messages_received
                    + insert.excluded.messages_received,
                    "messages_sent": ServerDailyStat.messages_sent + insert.excluded.messages_sent,
                    "messages_held_back": ServerDailyStat.messages_held_back
                    + insert.excluded.messages_held_back,
                },
            )
        )
    await session.commit()
    return StatsResult(applied=applied, ignored=len(events) - applied)


async def record_agent_action(session: AsyncSession, body: AgentActionBody) -> str:
    configs = await configs_by_guild(session, [(body.user_id, body.guild_id)])
    config_id = configs.get((body.user_id, body.guild_id))
    if config_id is None:
        raise ApiError(
            404,
            "SERVER_NOT_FOUND",
            "No configuration for this user and guild (deleted?); the action was not recorded.",
        )
    history = body.message_history.model_dump(mode="json", by_alias=True)
    history["preceding"] = history["preceding"][-ACTION_PRECEDING_KEPT:]
    action = AgentAction(
        user_server_config_id=config_id,
        channel_id=body.channel_id,
        channel_name=body.channel_name,
        agent_message=body.agent_message,
        trigger_description=body.trigger_description,
        message_history=history,
        delivered=body.delivered,
        held_back=None if body.delivered else body.held_back,
    )
    session.add(action)
    await session.commit()
    return action.id


# ------------------------------------------------------------------------------------ cursors


async def record_cursors(session: AsyncSession, cursors: Sequence[ChannelCursor]) -> int:
    """Keep the newest message id per (account, channel); cursors of unknown accounts are
    ignored. Returns how many were stored."""
    newest: dict[tuple[str, str], ChannelCursor] = {}
    for cursor in cursors:
        key = (cursor.user_id, cursor.channel_id)
        known = newest.get(key)
        if known is None or int(cursor.message_id) > int(known.message_id):
            newest[key] = cursor
    if not newest:
        return 0
    users = {user_id for user_id, _ in newest}
    known_users = set(
        (await session.scalars(select(User.id).where(User.id.in_(sorted(users))))).all()
    )
    rows = [
        {
            "user_id": c.user_id,
            "channel_id": c.channel_id,
            "guild_id": c.guild_id,
            "message_id": c.message_id,
            "updated_at": utcnow(),
        }
        for key, c in sorted(newest.items())
        if c.user_id in known_users
    ]
    if not rows:
        return 0
    insert = dialect_insert(session, ChannelCursor_).values(rows)
    stored = ChannelCursor_.__table__.c
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id", "channel_id"],
            set_={
                "message_id": insert.excluded.message_id,
                "guild_id": insert.excluded.guild_id,
                "updated_at": insert.excluded.updated_at,
            },
            where=cast_(insert.excluded.message_id, BigInteger)
            > cast_(stored.message_id, BigInteger),
        )
    )
    await session.commit()
    return len(rows)


async def read_cursors(session: AsyncSession, user_ids: Sequence[str]) -> list[ChannelCursor]:
    if not user_ids:
        return []
    rows = await session.execute(
        select(
            ChannelCursor_.user_id,
            ChannelCursor_.guild_id,
            ChannelCursor_.channel_id,
            ChannelCursor_.message_id,
        ).where(ChannelCursor_.user_id.in_(sorted(set(user_ids))))
    )
    return [ChannelCursor(user_id=u, guild_id=g, channel_id=c, message_id=m) for u, g, c, m in rows]
