"""Server configurations of one account: list, add, read, update, delete, stats, agent actions,
the dashboard's summaries, and the configuration as the agent sees it (``server_entry``).

Every function takes the signed-in user's id and scopes its queries to it: another account's ids
look exactly like ids that do not exist (404).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from neonrain.accounts.models import User
from neonrain.api_types import now_ms, plausible_id
from neonrain.contract import (
    BOT_NAME_MAX,
    DEFAULT_BOT_NAME,
    SERVER_ENTRY_KEYS,
    WEBSITE_ENTRY_KEYS,
    Engine,
    HeldBack,
    ServerEntry,
)
from neonrain.crypto import TokenCipher
from neonrain.db.base import iso, utcnow
from neonrain.db.changes import mark_config_changed
from neonrain.discord_link import service as discord_service
from neonrain.discord_link.channels import BotChannel, ChannelCache
from neonrain.discord_link.client import DiscordRestClient, PartialGuild, guild_icon_url
from neonrain.discord_link.schemas import GuildOut
from neonrain.engines import service as engines_service
from neonrain.engines.service import InstallEngines
from neonrain.errors import ApiError
from neonrain.servers.models import (
    CONFIGURATION_ORDER,
    AgentAction,
    Server,
    ServerDailyStat,
    UserServerConfig,
)
from neonrain.servers.schemas import (
    ActionOut,
    ActionPage,
    DayStat,
    ServerConfigOut,
    ServerDetail,
    StatsOut,
)
from neonrain.websites import service as websites_service
from neonrain.websites.models import ServerWebsite

NOTHING_TO_UPDATE = (
    "Send at least one of botName, personality, rules, information, botActive, channelMode, "
    "channelIds, replyMode, maxRepliesPerHour, minSecondsBetweenReplies, engine."
)


class ServerNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "SERVER_NOT_FOUND", "That server configuration was not found.")


# ------------------------------------------------------------------------------------ reading


def config_out(
    config: UserServerConfig | Row[*tuple[Any, ...]],
    server: Server | Row[*tuple[Any, ...]],
    website_count: int,
) -> ServerConfigOut:
    """A configuration as the API shows it, from its entities or from one row of
    :data:`LIST_CONFIGS` (``config`` and ``server`` are then the same row)."""
    return ServerConfigOut(
        id=config.id,
        server_id=config.server_id,
        guild_id=server.guild_id,
        guild_name=server.guild_name,
        guild_icon_url=guild_icon_url(server.guild_id, server.guild_icon),
        bot_name=config.bot_name,
        bot_active=config.bot_active,
        personality=config.personality,
        rules=config.rules,
        information=config.information,
        channel_mode=config.channel_mode,
        channel_ids=list(config.channel_ids),
        reply_mode=config.reply_mode,
        max_replies_per_hour=config.max_replies_per_hour,
        min_seconds_between_replies=config.min_seconds_between_replies,
        messages_sent_count=config.messages_sent_count,
        messages_received_count=config.messages_received_count,
        last_message_sent_at=iso(config.last_message_sent_at),
        last_message_received_at=iso(config.last_message_received_at),
        website_count=website_count,
        engine=_engine(config.engine),
        created_at=iso(config.created_at) or "",
        updated_at=iso(config.updated_at) or "",
    )


def _engine(value: str) -> Engine:
    return "openai" if value == "openai" else "huma"


async def get_config(
    session: AsyncSession, user_id: str, server_id: str, *, for_update: bool = False
) -> tuple[UserServerConfig, Server]:
    """The user's configuration of the server ``server_id`` (a ``servers`` row id), or 404."""
    if not plausible_id(server_id):
        raise ServerNotFound()
    query = (
        select(UserServerConfig, Server)
        .join(Server, Server.id == UserServerConfig.server_id)
        .where(UserServerConfig.user_id == user_id, UserServerConfig.server_id == server_id)
    )
    if for_update:
        query = query.with_for_update(of=UserServerConfig)
    row = (await session.execute(query)).first()
    if row is None:
        raise ServerNotFound()
    return row


def _website_count() -> ScalarSelect[int]:
    """The number of websites of the configuration in the enclosing query."""
    return (
        select(func.count(ServerWebsite.id))
        .where(ServerWebsite.user_server_config_id == UserServerConfig.id)
        .correlate(UserServerConfig)
        .scalar_subquery()
    )


#: A configuration as :func:`config_out` reads it, with its website count: columns, not
#: entities (no ORM objects to load), named like the entities' attributes.
CONFIG_COLUMNS = (
    UserServerConfig.id,
    UserServerConfig.server_id,
    Server.guild_id,
    Server.guild_name,
    Server.guild_icon,
    UserServerConfig.bot_name,
    UserServerConfig.bot_active,
    UserServerConfig.personality,
    UserServerConfig.rules,
    UserServerConfig.information,
    UserServerConfig.channel_mode,
    UserServerConfig.channel_ids,
    UserServerConfig.reply_mode,
    UserServerConfig.max_replies_per_hour,
    UserServerConfig.min_seconds_between_replies,
    UserServerConfig.messages_sent_count,
    UserServerConfig.messages_received_count,
    UserServerConfig.last_message_sent_at,
    UserServerConfig.last_message_received_at,
    UserServerConfig.engine,
    UserServerConfig.created_at,
    UserServerConfig.updated_at,
    _website_count().label("website_count"),
)
CONFIG_ORDER = (UserServerConfig.updated_at.desc(), UserServerConfig.id)
# Built once (SQLAlchemy's compiled cache then serves it): the dashboard reads it on every load.
LIST_CONFIGS = (
    select(*CONFIG_COLUMNS)
    .join(Server, Server.id == UserServerConfig.server_id)
    .where(UserServerConfig.user_id == bindparam("user_id"))
    .order_by(*CONFIG_ORDER)
)


def with_configs_of(
    query: Select[*tuple[Any, ...]], columns: Sequence[Any]
) -> Select[*tuple[Any, ...]]:
    """``query`` (over ``users``, one account) with ``columns`` of the account's configurations
    outer-joined: a row per configuration, or one whose ``columns`` are NULL."""
    return (
        query.add_columns(*columns)
        .outerjoin(UserServerConfig, UserServerConfig.user_id == User.id)
        .outerjoin(Server, Server.id == UserServerConfig.server_id)
    )


async def list_configs(db: AsyncSession | AsyncConnection, user_id: str) -> list[ServerConfigOut]:
    return configs_of(await db.execute(LIST_CONFIGS, {"user_id": user_id}))


def configs_of(rows: Iterable[Row[*tuple[Any, ...]]]) -> list[ServerConfigOut]:
    """The configurations of rows holding :data:`CONFIG_COLUMNS`."""
    return [config_out(row, row, row.website_count) for row in rows]


async def server_detail(session: AsyncSession, user_id: str, server_id: str) -> ServerDetail:
    config, server = await get_config(session, user_id, server_id)
    websites = await websites_service.list_websites(session, config.id)
    base = config_out(config, server, len(websites))
    return ServerDetail(**base.model_dump(), websites=websites)


async def _config_out(
    session: AsyncSession, config: UserServerConfig, server: Server
) -> ServerConfigOut:
    counts = await websites_service.website_counts(session, [config.id])
    return config_out(config, server, counts.get(config.id, 0))


# ------------------------------------------------------------------------------------ writing


async def _ensure_not_configured(session: AsyncSession, user_id: str, guild_id: str) -> None:
    server_id = await session.scalar(
        select(Server.id)
        .join(UserServerConfig, UserServerConfig.server_id == Server.id)
        .where(Server.guild_id == guild_id, UserServerConfig.user_id == user_id)
    )
    if server_id is not None:
        raise _already_configured(server_id)


def _already_configured(server_id: str) -> ApiError:
    return ApiError(
        409,
        "SERVER_ALREADY_CONFIGURED",
        "This Discord server is already configured; open it from your server list.",
        serverId=server_id,
    )


async def add_server(
    session: AsyncSession,
    cipher: TokenCipher,
    discord: DiscordRestClient,
    install: InstallEngines,
    user: User,
    guild_id: str,
) -> ServerConfigOut:
    """Add a configuration for a guild the user's bot is in (checked with Discord, whose name
    for the guild is used), answered by the engine the account has by default."""
    discord_service.bot_token(cipher, user)  # 409 before anything else when not connected
    await _ensure_not_configured(session, user.id, guild_id)
    guild = await discord_service.fetch_bot_guild(session, cipher, discord, user, guild_id)
    server = await _upsert_server(session, guild.id, guild.name, guild.icon)
    config = UserServerConfig(
        user_id=user.id,
        server_id=server.id,
        bot_name=(user.discord_bot_username or DEFAULT_BOT_NAME)[:BOT_NAME_MAX],
        engine=await engines_service.default_engine(session, install, user.id),
        created_at=now_ms(),
    )
    config.updated_at = config.created_at
    session.add(config)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _already_configured(server.id) from None
    await mark_config_changed(session, [user.id])
    await session.commit()
    return config_out(config, server, 0)


async def _upsert_server(
    session: AsyncSession, guild_id: str, name: str, icon: str | None
) -> Server:
    """The shared ``servers`` row of a guild, created or renamed to Discord's current name."""
    server = await session.scalar(select(Server).where(Server.guild_id == guild_id))
    if server is None:
        server = Server(guild_id=guild_id, guild_name=name, guild_icon=icon)
        try:
            async with session.begin_nested():
                session.add(server)
        except IntegrityError:  # another request created it meanwhile
            server = await session.scalar(select(Server).where(Server.guild_id == guild_id))
            if server is None:  # pragma: no cover - deleted again at once
                raise
        else:
            return server
    await _rename_servers(session, {guild_id: (name, icon)}, known=[server])
    return server


async def _rename_servers(
    session: AsyncSession,
    names: Mapping[str, tuple[str, str | None]],
    *,
    known: Sequence[Server] | None = None,
) -> bool:
    """Apply Discord's current guild names/icons; every account using a renamed guild gets a
    configuration change (the worker passes the guild name to agents). True when one changed."""
    servers = (
        list(known)
        if known is not None
        else list(
            (await session.scalars(select(Server).where(Server.guild_id.in_(list(names))))).all()
        )
    )
    renamed: list[str] = []
    for server in servers:
        name, icon = names[server.guild_id]
        if server.guild_icon != icon:
            server.guild_icon = icon
        if server.guild_name != name:
            server.guild_name = name
            renamed.append(server.id)
    if not renamed:
        return bool(session.dirty)
    user_ids = (
        await session.scalars(
            select(UserServerConfig.user_id).where(UserServerConfig.server_id.in_(renamed))
        )
    ).all()
    await session.flush()
    await mark_config_changed(session, user_ids)
    return True


async def update_config(
    session: AsyncSession,
    cipher: TokenCipher,
    discord: DiscordRestClient,
    install: InstallEngines,
    user: User,
    server_id: str,
    changes: dict[str, Any],
) -> ServerConfigOut:
    """Apply the fields that were sent. Channel ids added to the configuration are checked with
    Discord first (400 ``UNKNOWN_CHANNEL`` naming those that are not channels of the guild);
    ids already stored, and removing ids, need no check."""
    if not changes:
        raise ApiError(400, "NOTHING_TO_UPDATE", NOTHING_TO_UPDATE)
    if changes.get("bot_active") is True and user.discord_token is None:
        raise discord_service.not_connected()
    if "channel_ids" in changes:
        await _check_new_channels(session, cipher, discord, user, server_id, changes["channel_ids"])
    config, server = await get_config(session, user.id, server_id, for_update=True)
    engine = changes.get("engine")
    if engine in ("huma", "openai") and engine != config.engine:
        await engines_service.require_available(session, install, user.id, engine)
    changed = False
    for name, value in changes.items():
        if getattr(config, name) != value:
            setattr(config, name, value)
            changed = True
    if changed:
        config.updated_at = now_ms()
        await session.flush()
        await mark_config_changed(session, [user.id])
        await session.commit()
    return await _config_out(session, config, server)


async def _check_new_channels(
    session: AsyncSession,
    cipher: TokenCipher,
    discord: DiscordRestClient,
    user: User,
    server_id: str,
    channel_ids: Sequence[str],
) -> None:
    """Ask Discord about the ids not yet in the configuration (before the row is locked: the
    answer may take seconds)."""
    if not plausible_id(server_id):
        raise ServerNotFound()
    row = (
        await session.execute(
            select(UserServerConfig.channel_ids, Server.guild_id)
            .join(Server, Server.id == UserServerConfig.server_id)
            .where(UserServerConfig.user_id == user.id, UserServerConfig.server_id == server_id)
        )
    ).first()
    if row is None:
        raise ServerNotFound()
    stored, guild_id = set(row[0] or ()), row[1]
    added = [channel_id for channel_id in channel_ids if channel_id not in stored]
    if not added:
        return
    unknown = await discord_service.unknown_channels(
        session, cipher, discord, user, guild_id, added
    )
    if unknown:
        raise ApiError(
            400,
            "UNKNOWN_CHANNEL",
            f"{_count(len(unknown), 'channel id')} {'is' if len(unknown) == 1 else 'are'} not "
            "a text, announcement, forum, voice or stage channel of this Discord server: "
            f"{', '.join(unknown)}.",
            details={"channelIds": unknown},
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


async def delete_config(session: AsyncSession, user_id: str, server_id: str) -> None:
    """Delete the configuration with its websites, scrapes, stats and agent actions (cascades);
    chat groups keep pointing at the shared server row. The caller commits (see
    ``neonrain.flows.delete_server``)."""
    config, _server = await get_config(session, user_id, server_id)
    await session.execute(delete(UserServerConfig).where(UserServerConfig.id == config.id))
    await mark_config_changed(session, [user_id])


# ------------------------------------------------------------------------------------ channels


async def server_channels(
    session: AsyncSession,
    cipher: TokenCipher,
    discord: DiscordRestClient,
    cache: ChannelCache,
    user: User,
    server_id: str,
) -> tuple[BotChannel, ...]:
    """The channels of the configuration's guild with what the user's bot may do in each (see
    ``discord_link.service.bot_channels``); 404 when the configuration is not the user's."""
    _config, server = await get_config(session, user.id, server_id)
    return await discord_service.bot_channels(
        session, cipher, discord, cache, user, server.guild_id
    )


# ------------------------------------------------------------------------------------ guilds


async def guild_choices(
    session: AsyncSession, user_id: str, guilds: Sequence[PartialGuild]
) -> list[GuildOut]:
    """The bot's guilds, marked with the user's configurations (and stored names refreshed)."""
    configured = dict(
        (
            await session.execute(
                select(Server.guild_id, Server.id)
                .join(UserServerConfig, UserServerConfig.server_id == Server.id)
                .where(UserServerConfig.user_id == user_id)
            )
        ).all()
    )
    stored = {g.id: (g.name, g.icon) for g in guilds if g.id in configured}
    if stored and await _rename_servers(session, stored):
        await session.commit()
    return [
        GuildOut(
            guild_id=g.id,
            guild_name=g.name,
            icon_url=g.icon_url(),
            configured=g.id in configured,
            server_id=configured.get(g.id),
        )
        for g in guilds
    ]


# ------------------------------------------------------------------------------------- summaries


@dataclass(frozen=True, slots=True)
class ConfigSummary:
    """What the dashboard's status needs of one configuration: its switch, engine and counts."""

    guild_id: str
    guild_name: str
    bot_active: bool
    engine: str
    messages_sent: int
    messages_received: int


# Built once: the dashboard polls it (one short row per configuration, no texts).
SUMMARY_COLUMNS = (
    Server.guild_id,
    Server.guild_name,
    UserServerConfig.bot_active,
    UserServerConfig.engine,
    UserServerConfig.messages_sent_count,
    UserServerConfig.messages_received_count,
)
SUMMARIES = (
    select(*SUMMARY_COLUMNS)
    .join(Server, Server.id == UserServerConfig.server_id)
    .where(UserServerConfig.user_id == bindparam("user_id"))
)


async def summaries(db: AsyncSession | AsyncConnection, user_id: str) -> list[ConfigSummary]:
    return summaries_of(await db.execute(SUMMARIES, {"user_id": user_id}))


def summaries_of(rows: Iterable[Row[*tuple[Any, ...]]]) -> list[ConfigSummary]:
    """The summaries of rows holding :data:`SUMMARY_COLUMNS`."""
    return [
        ConfigSummary(
            row.guild_id,
            row.guild_name,
            row.bot_active,
            _engine(row.engine),
            row.messages_sent_count,
            row.messages_received_count,
        )
        for row in rows
    ]


# ------------------------------------------------------------------------------------ stats


async def daily_stats(session: AsyncSession, user_id: str, server_id: str, days: int) -> StatsOut:
    config, _server = await get_config(session, user_id, server_id)
    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    rows = await session.execute(
        select(
            ServerDailyStat.day,
            ServerDailyStat.messages_received,
            ServerDailyStat.messages_sent,
            ServerDailyStat.messages_held_back,
        ).where(
            ServerDailyStat.user_server_config_id == config.id,
            ServerDailyStat.day >= first,
            ServerDailyStat.day <= today,
        )
    )
    by_day: dict[date, tuple[int, int, int]] = {
        day: (received, sent, held) for day, received, sent, held in rows.all()
    }
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        received, sent, held = by_day.get(day, (0, 0, 0))
        out.append(
            DayStat(
                date=day.isoformat(),
                messages_received=received,
                messages_sent=sent,
                messages_held_back=held,
            )
        )
    return StatsOut(days=out)


async def activity_series(session: AsyncSession, user_id: str, days: int) -> dict[str, list[int]]:
    """Messages (received + sent) per day of the last ``days`` UTC days, oldest first, for each
    of the user's configurations that had any (one query; the dashboard's sparklines)."""
    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    rows = await session.execute(
        select(
            ServerDailyStat.user_server_config_id,
            ServerDailyStat.day,
            ServerDailyStat.messages_received + ServerDailyStat.messages_sent,
        )
        .join(UserServerConfig, UserServerConfig.id == ServerDailyStat.user_server_config_id)
        .where(
            UserServerConfig.user_id == user_id,
            ServerDailyStat.day >= first,
            ServerDailyStat.day <= today,
        )
    )
    per_config: dict[str, list[int]] = {}
    for config_id, day, total in rows:
        series = per_config.setdefault(config_id, [0] * days)
        series[(day - first).days] += int(total or 0)
    return per_config


# ------------------------------------------------------------------------------------ actions


class ActionNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(
            404,
            "ACTION_NOT_FOUND",
            "before: no such action on this server (use the nextCursor of the previous page).",
        )


async def list_actions(
    session: AsyncSession,
    user_id: str,
    server_id: str,
    limit: int,
    before: str | None,
    delivered: bool | None = None,
) -> ActionPage:
    """A page of the configuration's agent actions, newest first; ``delivered`` keeps only the
    posted messages (True) or only the held-back drafts (False). ``before`` is the last id of the
    previous page (of the same filter)."""
    config, _server = await get_config(session, user_id, server_id)
    query = select(AgentAction).where(AgentAction.user_server_config_id == config.id)
    if delivered is not None:
        query = query.where(AgentAction.delivered.is_(delivered))
    if before is not None:
        if not plausible_id(before):
            raise ActionNotFound()
        cursor = (
            await session.execute(
                select(AgentAction.created_at, AgentAction.id).where(
                    AgentAction.id == before, AgentAction.user_server_config_id == config.id
                )
            )
        ).first()
        if cursor is None:
            raise ActionNotFound()
        created_at, action_id = cursor
        query = query.where(
            or_(
                AgentAction.created_at < created_at,
                and_(AgentAction.created_at == created_at, AgentAction.id < action_id),
            )
        )
    actions = list(
        (
            await session.scalars(
                query.order_by(AgentAction.created_at.desc(), AgentAction.id.desc()).limit(
                    limit + 1
                )
            )
        ).all()
    )
    more = len(actions) > limit
    actions = actions[:limit]
    return ActionPage(
        actions=[
            ActionOut(
                id=a.id,
                channel_id=a.channel_id,
                channel_name=a.channel_name,
                agent_message=a.agent_message,
                trigger_description=a.trigger_description,
                message_history=a.message_history,
                created_at=iso(a.created_at) or "",
                delivered=a.delivered,
                held_back=None if a.delivered else _HELD_BACK.get(a.held_back),
            )
            for a in actions
        ],
        next_cursor=actions[-1].id if more and actions else None,
    )


_HELD_BACK: dict[str | None, HeldBack] = {"silent": "silent", "rate_limited": "rate_limited"}


# --------------------------------------------------------------------- as the agent sees it

#: A configuration's columns in the order of ``contract.SERVER_ENTRY_KEYS`` (the tokens read
#: model selects them for every account at once, ``server_entry`` for one).
SERVER_ENTRY_COLUMNS = (
    Server.id,
    Server.guild_id,
    Server.guild_name,
    UserServerConfig.bot_active,
    UserServerConfig.bot_name,
    UserServerConfig.personality,
    UserServerConfig.rules,
    UserServerConfig.information,
    UserServerConfig.channel_mode,
    UserServerConfig.channel_ids,
    UserServerConfig.reply_mode,
    UserServerConfig.max_replies_per_hour,
    UserServerConfig.min_seconds_between_replies,
    UserServerConfig.engine,
)
assert len(SERVER_ENTRY_COLUMNS) == len(SERVER_ENTRY_KEYS)


def server_entry_fields(values: Sequence[Any]) -> dict[str, Any]:
    """A server entry (without websites) from ``SERVER_ENTRY_COLUMNS`` values, by wire name."""
    return dict(zip(SERVER_ENTRY_KEYS, values, strict=True))


def entries_of(condition: ColumnElement[bool]) -> Any:
    """``SELECT`` of the configurations matching ``condition``: their id, user id, then
    ``SERVER_ENTRY_COLUMNS``, in ``CONFIGURATION_ORDER``."""
    return (
        select(UserServerConfig.id, UserServerConfig.user_id, *SERVER_ENTRY_COLUMNS)
        .join(Server, Server.id == UserServerConfig.server_id)
        .where(condition)
        .order_by(*CONFIGURATION_ORDER)
    )


async def server_entry(
    session: AsyncSession, user_id: str, server_id: str | None
) -> ServerEntry | None:
    """The user's current configuration of the server with its websites' newest successful
    scrapes, as the worker gets it in the tokens answer; ``None`` when there is none."""
    if server_id is None or not plausible_id(server_id):
        return None
    row = (
        await session.execute(
            entries_of(
                (UserServerConfig.user_id == user_id) & (UserServerConfig.server_id == server_id)
            )
        )
    ).first()
    if row is None:
        return None
    config_id = row[0]
    contents = await websites_service.successful_contents(session, UserServerConfig.id == config_id)
    websites = [
        dict(zip(WEBSITE_ENTRY_KEYS, (c.url, c.name, c.markdown, iso(c.scraped_at)), strict=True))
        for c in contents
    ]
    return ServerEntry.model_validate({**server_entry_fields(row[2:]), "websites": websites})


__all__ = [
    "SERVER_ENTRY_COLUMNS",
    "ConfigSummary",
    "ServerNotFound",
    "activity_series",
    "add_server",
    "config_out",
    "daily_stats",
    "delete_config",
    "entries_of",
    "get_config",
    "guild_choices",
    "list_actions",
    "list_configs",
    "server_channels",
    "server_detail",
    "server_entry",
    "server_entry_fields",
    "summaries",
    "update_config",
]
