"""The account's bot token: connecting it (checked with Discord), disconnecting, and the Discord
REST calls made with it (the bot's guilds, one guild).

Tokens are stored encrypted (``state.cipher``) and are never returned, logged or put in an error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain.accounts.models import TOKEN_STATUSES, User
from neonrain.crypto import TokenDecryptionError
from neonrain.db.changes import mark_config_changed
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
from neonrain.discord_link.schemas import BotOut, ConnectOut, DisconnectOut
from neonrain.errors import ApiError
from neonrain.servers.models import WorkerReport
from neonrain.state import AppState

log = logging.getLogger(__name__)

TOKEN_VALID, TOKEN_INVALID, TOKEN_UNCHECKED = TOKEN_STATUSES

#: ``state.services`` key of a shared :class:`DiscordRestClient` (tests put one with short
#: timeouts there); without it each request opens its own.
DISCORD_CLIENT_SERVICE = "discord_rest"


@asynccontextmanager
async def discord_client(state: AppState) -> AsyncIterator[DiscordRestClient]:
    shared = state.services.get(DISCORD_CLIENT_SERVICE)
    if isinstance(shared, DiscordRestClient):
        yield shared
        return
    async with DiscordRestClient(state.settings.discord_api_url) as client:
        yield client


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


def bot_out(user: User) -> BotOut | None:
    if user.discord_token is None or user.discord_bot_id is None:
        return None
    return BotOut(
        id=user.discord_bot_id,
        username=user.discord_bot_username or "",
        avatar_url=avatar_url(user.discord_bot_id, user.discord_bot_avatar),
    )


def bot_invite_url(user: User) -> str | None:
    if user.discord_token is None or user.discord_bot_id is None:
        return None
    return invite_url(user.discord_bot_id)


def bot_token(state: AppState, user: User) -> str:
    """The user's decrypted bot token; 409 ``DISCORD_NOT_CONNECTED`` when there is none."""
    if user.discord_token is None:
        raise not_connected()
    try:
        return state.cipher.decrypt(user.discord_token)
    except TokenDecryptionError:
        log.warning("stored Discord token of user %s cannot be decrypted", user.id)
        raise ApiError(
            409,
            "DISCORD_NOT_CONNECTED",
            "The stored bot token can no longer be read; connect your bot again.",
        ) from None


async def connect(session: AsyncSession, state: AppState, user: User, raw_token: str) -> ConnectOut:
    token = clean_token(raw_token)
    async with discord_client(state) as discord:
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
    user.discord_token = state.cipher.encrypt(token)
    user.discord_token_status = TOKEN_VALID
    user.discord_bot_id = me.id
    user.discord_bot_username = me.username
    user.discord_bot_avatar = me.avatar
    # The previous token's live state no longer applies.
    await session.execute(delete(WorkerReport).where(WorkerReport.user_id == user.id))
    await mark_config_changed(session, [user.id])
    await session.commit()
    bot = bot_out(user)
    assert bot is not None
    return ConnectOut(connected=True, bot=bot, invite_url=invite_url(me.id))


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


async def list_bot_guilds(session: AsyncSession, state: AppState, user: User) -> list[PartialGuild]:
    """Every guild the user's bot is in (all pages)."""
    token = bot_token(state, user)
    async with discord_client(state) as discord:
        try:
            return await discord.list_guilds(token)
        except DiscordUnauthorized:
            raise await _token_refused(session, user) from None
        except DiscordError:
            raise discord_unavailable() from None


async def fetch_bot_guild(
    session: AsyncSession, state: AppState, user: User, guild_id: str
) -> DiscordGuild:
    """The guild, if the user's bot is in it; 404 ``GUILD_NOT_FOUND`` otherwise."""
    token = bot_token(state, user)
    async with discord_client(state) as discord:
        try:
            return await discord.get_guild(token, guild_id)
        except DiscordNotFound:
            raise ApiError(
                404,
                "GUILD_NOT_FOUND",
                "Your bot is not in that Discord server; invite it with the invite link first.",
            ) from None
        except DiscordUnauthorized:
            raise await _token_refused(session, user) from None
        except DiscordError:
            raise discord_unavailable() from None
