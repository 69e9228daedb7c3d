"""A guild's channels as the bot sees them: the text-bearing channels in the order Discord's client
shows them, each with whether the bot can read and send there (Discord's permission algorithm over
the guild's roles, the bot member's roles and the channel's overwrites).

:func:`fetch_bot_channels` asks Discord (four reads, at once); :func:`bot_view` is the pure part;
:class:`ChannelCache` keeps answers for a short while per (token, guild), in process.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from neonrain.discord_link.client import (
    DiscordGuild,
    DiscordRestClient,
    GuildChannel,
    GuildMember,
    GuildRole,
)
from neonrain.discord_link.permissions import (
    CAN_READ,
    CAN_SEND,
    Member,
    channel_permissions,
    has_all,
)

ChannelType = Literal["text", "announcement", "forum", "voice", "stage"]

#: Discord's channel type numbers of the channels a bot can watch (threads belong to these).
CHANNEL_TYPES: Final[dict[int, ChannelType]] = {
    0: "text",
    5: "announcement",
    15: "forum",
    2: "voice",
    13: "stage",
}
CATEGORY: Final = 4
#: Discord's client lists voice-like channels after the text-like ones of the same category.
_VOICE_LIKE: Final = frozenset({2, 13})

#: How long an answer is reused, and how many (token, guild) answers a process keeps.
CACHE_SECONDS: Final = 60.0
CACHE_ENTRIES: Final = 1_000


@dataclass(frozen=True, slots=True)
class BotChannel:
    """One channel of the guild, with what the bot may do there."""

    id: str
    name: str
    type: ChannelType
    category_id: str | None
    category_name: str | None
    position: int
    bot_can_read: bool
    bot_can_send: bool


def bot_view(
    *,
    guild: DiscordGuild,
    bot_id: str,
    channels: Sequence[GuildChannel],
    roles: Sequence[GuildRole],
    member: GuildMember,
) -> list[BotChannel]:
    """The guild's text-bearing channels, uncategorised first, then by category (position, id),
    inside each the text-like channels before the voice-like ones, each by (position, id)."""
    role_bits = {role.id: role.permissions for role in roles}
    who = Member(user_id=bot_id, role_ids=frozenset(member.role_ids))
    categories = {c.id: c for c in channels if c.type == CATEGORY}

    def group(channel: GuildChannel) -> tuple[int, int, int]:
        category = categories.get(channel.parent_id) if channel.parent_id else None
        if category is None:
            return (0, 0, 0)
        return (1, category.position, int(category.id))

    listed = sorted(
        (c for c in channels if c.type in CHANNEL_TYPES),
        key=lambda c: (*group(c), c.type in _VOICE_LIKE, c.position, int(c.id)),
    )
    out: list[BotChannel] = []
    for channel in listed:
        category = categories.get(channel.parent_id) if channel.parent_id else None
        allowed = channel_permissions(
            guild_id=guild.id,
            owner_id=guild.owner_id,
            roles=role_bits,
            member=who,
            overwrites=channel.overwrites,
        )
        out.append(
            BotChannel(
                id=channel.id,
                name=channel.name,
                type=CHANNEL_TYPES[channel.type],
                category_id=category.id if category else None,
                category_name=category.name if category else None,
                position=channel.position,
                bot_can_read=has_all(allowed, CAN_READ),
                bot_can_send=has_all(allowed, CAN_SEND),
            )
        )
    return out


async def fetch_bot_channels(
    discord: DiscordRestClient, token: str, guild_id: str, bot_id: str
) -> list[BotChannel]:
    """Ask Discord for the guild, its channels, its roles and the bot member (concurrently; the
    first failure cancels the others and is raised as the client raised it)."""
    guild, channels, roles, member = await _all(
        discord.get_guild(token, guild_id),
        discord.list_guild_channels(token, guild_id),
        discord.list_guild_roles(token, guild_id),
        discord.get_guild_member(token, guild_id, bot_id),
    )
    return bot_view(guild=guild, bot_id=bot_id, channels=channels, roles=roles, member=member)


async def _all(
    *calls: Coroutine[Any, Any, Any],
) -> tuple[DiscordGuild, list[GuildChannel], list[GuildRole], GuildMember]:
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        guild, channels, roles, member = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    return guild, channels, roles, member


CacheKey = tuple[str, str]


class ChannelCache:
    """Answers of :func:`fetch_bot_channels` per (token, guild) for ``ttl`` seconds, at most
    ``max_entries`` of them (the oldest go first). Keys hold a hash of the token, not the token."""

    def __init__(
        self,
        *,
        ttl: float = CACHE_SECONDS,
        max_entries: int = CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, tuple[BotChannel, ...]]] = OrderedDict()

    @staticmethod
    def key(token: str, guild_id: str) -> CacheKey:
        return hashlib.sha256(token.encode()).hexdigest(), guild_id

    def get(self, key: CacheKey) -> tuple[BotChannel, ...] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, channels = entry
        if self._clock() - stored_at >= self.ttl:
            del self._entries[key]
            return None
        return channels

    def put(self, key: CacheKey, channels: Sequence[BotChannel]) -> tuple[BotChannel, ...]:
        kept = tuple(channels)
        self._entries.pop(key, None)
        self._entries[key] = (self._clock(), kept)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return kept

    def __len__(self) -> int:
        return len(self._entries)
