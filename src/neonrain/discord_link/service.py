"""The account's bot: connecting its token (checked with Discord), disconnecting, the Discord
REST calls made with it (the bot's guilds, one guild), and its live state as the worker reports it
(``worker_reports``).

Tokens are stored encrypted (``cipher``) and are never returned, logged or put in an error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Delete, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain.accounts.models import TOKEN_STATUSES, User
from neonrain.contract import WORKER_STATES, WorkerTokenState
from neonrain.crypto import TokenCipher, TokenDecryptionError
from neonrain.db.base import iso, utcnow
from neonrain.db.changes import mark_config_changed
from neonrain.db.dialect import dialect_insert
from neonrain.discord_link.channels import (
    CHANNEL_TYPES,
    BotChannel,
    ChannelCache,
    fetch_bot_channels,
)
from neonrain.discord_link.client import (
    DiscordError,
    DiscordGuild,
    DiscordNotFound,
    DiscordRestClient,
    DiscordUnauthorized,
    PartialGuild,
    avatar_url,
    invite_url,
)
from neonrain.discord_link.models import WorkerReport
from neonrain.discord_link.schemas import BotOut, ConnectOut, DisconnectOut, WorkerOut
from neonrain.errors import ApiError

log = logging.getLogger(__name__)

TOKEN_VALID, TOKEN_INVALID, TOKEN_UNCHECKED = TOKEN_STATUSES

TOKEN_REJECTED = "Discord rejected the bot token; connect the bot again with a new token."  # noqa: S105

#: A worker report older than this means the worker is gone (it re-reports at least every minute).
WORKER_REPORT_TTL = timedelta(minutes=2)


def not_connected() -> ApiError:
    return ApiError(
        409, "DISCORD_NOT_CONNECTED", "Connect your Discord bot first (Dashboard → Connect)."
    )


def discord_unavailable() -> ApiError:
    return ApiError(
        502, "DISCORD_UNAVAILABLE", "Discord could not be reached; try again in a moment."
    )


def clean_token(raw: str) -> str:
    """The token as pasted, without surrounding spaces or a leading ``Bot `` prefix."""
    token = raw.strip()
    if token[:4].lower() == "bot ":
        token = token[4:].strip()
    return token


class BotAccount(Protocol):
    """What the status reads of an account: its bot (an ORM ``User`` or a row of columns)."""

    @property
    def id(self) -> str: ...

    @property
    def discord_token(self) -> str | None: ...

    @property
    def discord_token_status(self) -> str: ...

    @property
    def discord_bot_id(self) -> str | None: ...

    @property
    def discord_bot_username(self) -> str | None: ...

    @property
    def discord_bot_avatar(self) -> str | None: ...


class ReportFacts(Protocol):
    """What is read of the worker's report (a ``WorkerReport`` or a row of its columns)."""

    @property
    def state(self) -> str: ...

    @property
    def detail(self) -> str: ...

    @property
    def updated_at(self) -> datetime: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def guilds(self) -> list[dict[str, Any]]: ...

    @property
    def engine_state(self) -> str | None: ...

    @property
    def engine_detail(self) -> str: ...


def bot_out(user: BotAccount) -> BotOut | None:
    if user.discord_token is None or user.discord_bot_id is None:
        return None
    return BotOut(
        id=user.discord_bot_id,
        username=user.discord_bot_username or "",
        avatar_url=avatar_url(user.discord_bot_id, user.discord_bot_avatar),
    )


def bot_invite_url(user: BotAccount) -> str | None:
    if user.discord_token is None or user.discord_bot_id is None:
        return None
    return invite_url(user.discord_bot_id)


def bot_token(cipher: TokenCipher, user: User) -> str:
    """The user's decrypted bot token; 409 ``DISCORD_NOT_CONNECTED`` when there is none."""
    if user.discord_token is None:
        raise not_connected()
    try:
        return cipher.decrypt(user.discord_token)
    except TokenDecryptionError:
        log.warning("stored Discord token of user %s cannot be decrypted", user.id)
        raise ApiError(
            409,
            "DISCORD_NOT_CONNECTED",
            "The stored bot token can no longer be read; connect your bot again.",
        ) from None


async def connect(
    session: AsyncSession,
    cipher: TokenCipher,
    discord: DiscordRestClient,
    user: User,
    raw_token: str,
) -> ConnectOut:
    token = clean_token(raw_token)
    try:
        me = await discord.get_current_user(token)
    except DiscordUnauthorized:
        raise ApiError(
            400,
            "DISCORD_TOKEN_INVALID",
            "Discord did not accept this token. Copy the bot token from the Discord "
            "Developer Portal (your application → Bot → Reset Token) and paste it here.",
        ) from None
    except DiscordError:
        raise discord_unavailable() from None
    if not me.bot:
        raise ApiError(
            400,
            "DISCORD_TOKEN_INVALID",
            "This token belongs to a person's account, not a bot. Create a bot in the Discord "
            "Developer Portal and use its token.",
        )
    same_bot = user.discord_token is not None and user.discord_bot_id == me.id
    user.discord_token = cipher.encrypt(token)
    user.discord_token_status = TOKEN_VALID
    user.discord_bot_id = me.id
    user.discord_bot_username = me.username
    user.discord_bot_avatar = me.avatar
    await session.execute(_stale_reports(user.id, same_bot=same_bot))
    await mark_config_changed(session, [user.id])
    await session.commit()
    bot = bot_out(user)
    assert bot is not None
    return ConnectOut(connected=True, bot=bot, invite_url=invite_url(me.id))


def _stale_reports(user_id: str, *, same_bot: bool) -> Delete:
    """The worker reports that no longer describe the account's bot after a connect. Another
    bot's live state does not apply; the same bot's does (the worker keeps its connection, so
    dropping the report would show it offline until the next heartbeat) — unless it says the
    token was rejected, which the token just accepted replaces."""
    query = delete(WorkerReport).where(WorkerReport.user_id == user_id)
    if same_bot:
        query = query.where(
            or_(WorkerReport.reason == "token_rejected", WorkerReport.state == "token_invalid")
        )
    return query


async def disconnect(session: AsyncSession, user: User) -> DisconnectOut:
    """Forget the token (configurations stay); the worker drops the connection on its next sync."""
    if user.discord_token is not None:
        user.discord_token = None
        user.discord_token_status = TOKEN_UNCHECKED
        user.discord_bot_id = None
        user.discord_bot_username = None
        user.discord_bot_avatar = None
        await session.execute(delete(WorkerReport).where(WorkerReport.user_id == user.id))
        await mark_config_changed(session, [user.id])
        await session.commit()
    return DisconnectOut(connected=False)


async def _token_refused(session: AsyncSession, user: User) -> ApiError:
    user.discord_token_status = TOKEN_INVALID
    await session.commit()
    return ApiError(
        409,
        "DISCORD_TOKEN_INVALID",
        "Discord no longer accepts your bot's token (was it reset?); connect the bot again.",
    )


async def list_bot_guilds(
    session: AsyncSession, cipher: TokenCipher, discord: DiscordRestClient, user: User
) -> list[PartialGuild]:
    """Every guild the user's bot is in (all pages)."""
    token = bot_token(cipher, user)
    async with _asking_discord(session, user):
        guilds = await discord.list_guilds(token)
    return guilds


def guild_not_found(message: str) -> ApiError:
    return ApiError(404, "GUILD_NOT_FOUND", message)


NOT_IN_GUILD = "Your bot is not in that Discord server; invite it with the invite link first."
LEFT_GUILD = "Your bot is no longer in this Discord server; invite it again with the invite link."


@contextlib.asynccontextmanager
async def _asking_discord(
    session: AsyncSession, user: User, not_in_guild: str = NOT_IN_GUILD
) -> AsyncIterator[None]:
    """Discord's answers as the API's errors: not in the guild 404 ``GUILD_NOT_FOUND``, a refused
    token 409 ``DISCORD_TOKEN_INVALID`` (and marked so), anything else 502."""
    try:
        yield
    except DiscordNotFound:
        raise guild_not_found(not_in_guild) from None
    except DiscordUnauthorized:
        raise await _token_refused(session, user) from None
    except DiscordError:
        raise discord_unavailable() from None


async def fetch_bot_guild(
    session: AsyncSession,
    cipher: TokenCipher,
    discord: DiscordRestClient,
    user: User,
    guild_id: str,
) -> DiscordGuild:
    """The guild, if the user's bot is in it; 404 ``GUILD_NOT_FOUND`` otherwise."""
    token = bot_token(cipher, user)
    async with _asking_discord(session, user):
        guild = await discord.get_guild(token, guild_id)
    return guild


# ------------------------------------------------------------------------ a guild's channels


async def bot_channels(
    session: AsyncSession,
    cipher: TokenCipher,
    discord: DiscordRestClient,
    cache: ChannelCache,
    user: User,
    guild_id: str,
) -> tuple[BotChannel, ...]:
    """The guild's text-bearing channels with what the user's bot may do in each, from the cache
    when Discord was asked less than a minute ago. 409 without a token, 404 ``GUILD_NOT_FOUND``
    when the bot is not in the guild, 502 when Discord cannot be asked."""
    token = bot_token(cipher, user)
    if user.discord_bot_id is None:
        raise not_connected()
    key = cache.key(token, guild_id)
    cached = cache.get(key)
    if cached is not None:
        return cached
    async with _asking_discord(session, user, LEFT_GUILD):
        found = await fetch_bot_channels(discord, token, guild_id, user.discord_bot_id)
    return cache.put(key, found)


async def unknown_channels(
    session: AsyncSession,
    cipher: TokenCipher,
    discord: DiscordRestClient,
    user: User,
    guild_id: str,
    channel_ids: Iterable[str],
) -> list[str]:
    """Those of ``channel_ids`` that are not text-bearing channels of the guild, asking Discord
    now (``GET /guilds/{id}/channels``; never the cache: a channel created a moment ago counts)."""
    token = bot_token(cipher, user)
    async with _asking_discord(session, user, LEFT_GUILD):
        channels = await discord.list_guild_channels(token, guild_id)
    known = {c.id for c in channels if c.type in CHANNEL_TYPES}
    return [channel_id for channel_id in channel_ids if channel_id not in known]


# ------------------------------------------------------------------------ the bot's live state

_WORKER_REPORT = select(WorkerReport).where(WorkerReport.user_id == bindparam("user_id"))


async def worker_report(session: AsyncSession, user_id: str) -> WorkerReport | None:
    report: WorkerReport | None = await session.scalar(_WORKER_REPORT, {"user_id": user_id})
    return report


def worker_state(user: BotAccount, report: ReportFacts | None) -> WorkerOut:
    """The bot's live state as the worker last reported it; stale reports mean ``offline``."""
    if user.discord_token is None:
        return WorkerOut(state="offline", detail="No bot is connected.", updated_at=None)
    updated_at = iso(report.updated_at) if report is not None else None
    if user.discord_token_status == TOKEN_INVALID:
        return WorkerOut(
            state="token_invalid",
            detail=(report.detail if report is not None and report.detail else None)
            or TOKEN_REJECTED,
            updated_at=updated_at,
        )
    if report is None:
        return WorkerOut(
            state="offline", detail="The worker has not picked up this bot yet.", updated_at=None
        )
    if utcnow() - report.updated_at > WORKER_REPORT_TTL:
        return WorkerOut(
            state="offline",
            detail="The worker has not reported for over two minutes; is it running?",
            updated_at=updated_at,
        )
    state = report.state if report.state in WORKER_STATES else "offline"
    return WorkerOut(state=state, detail=report.detail, updated_at=updated_at)


async def record_worker_status(session: AsyncSession, reports: Sequence[WorkerTokenState]) -> None:
    """Store the worker's per-account state (the last report per user wins). ``token_invalid``
    marks the account's token invalid, ``online`` valid; neither is a configuration change."""
    latest = {report.user_id: report for report in reports}
    if not latest:
        return
    known = set((await session.scalars(select(User.id).where(User.id.in_(sorted(latest))))).all())
    rows: list[dict[str, Any]] = [
        {
            "user_id": r.user_id,
            "state": r.state,
            "detail": r.detail,
            "guild_ids": list(r.guild_ids),
            "updated_at": utcnow(),
            "reason": r.reason,
            "guilds": [guild.wire() for guild in r.guilds],
            "engine_state": r.engine_state,
            "engine_detail": r.engine_detail,
        }
        for user_id, r in sorted(latest.items())
        if user_id in known
    ]
    if not rows:
        return
    insert = dialect_insert(session, WorkerReport).values(rows)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                "state": insert.excluded.state,
                "detail": insert.excluded.detail,
                "guild_ids": insert.excluded.guild_ids,
                "updated_at": insert.excluded.updated_at,
                "reason": insert.excluded.reason,
                "guilds": insert.excluded.guilds,
                "engine_state": insert.excluded.engine_state,
                "engine_detail": insert.excluded.engine_detail,
            },
        )
    )
    for state, status in (("token_invalid", TOKEN_INVALID), ("online", TOKEN_VALID)):
        ids = sorted(row["user_id"] for row in rows if row["state"] == state)
        if ids:
            await session.execute(
                update(User)
                .where(
                    User.id.in_(ids),
                    User.discord_token.is_not(None),
                    User.discord_token_status != status,
                )
                .values(discord_token_status=status)
                .execution_options(synchronize_session=False)
            )
    await session.commit()
