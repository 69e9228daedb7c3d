"""Discord's permission algorithm, as documented, on plain values (no I/O).

https://discord.com/developers/docs/topics/permissions#permission-overwrites

1. **Base permissions** in the guild: the owner has every permission; otherwise the ``@everyone``
   role's (the role whose id is the guild id) OR the member's roles'; ADMINISTRATOR grants every
   permission.
2. **Overwrites** of a channel, in order: the ``@everyone`` overwrite (deny, then allow), then the
   denies of all the member's role overwrites together, then their allows together, then the
   member's own overwrite. ADMINISTRATOR (from the base) skips them.
3. **Implicit rule**: without VIEW_CHANNEL a member can do nothing else in the channel.

A channel "synced" with its category in Discord's client has the same overwrites as the category,
copied onto the channel, so a channel's own ``permission_overwrites`` are all there is to apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final


class Permission:
    """The permission bits the product reads (Discord's numbering)."""

    ADMINISTRATOR: Final = 1 << 3
    VIEW_CHANNEL: Final = 1 << 10
    SEND_MESSAGES: Final = 1 << 11
    READ_MESSAGE_HISTORY: Final = 1 << 16
    CHANGE_NICKNAME: Final = 1 << 26


#: Every permission bit Discord defines today and any it adds later (what owners and
#: administrators have).
ALL_PERMISSIONS: Final = (1 << 64) - 1

#: ``type`` of an overwrite.
ROLE: Final = 0
MEMBER: Final = 1

CAN_READ: Final = Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY
CAN_SEND: Final = Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES


@dataclass(frozen=True, slots=True)
class Overwrite:
    """A channel's permission overwrite for a role (``type`` 0) or a member (``type`` 1)."""

    id: str
    type: int
    allow: int = 0
    deny: int = 0


@dataclass(frozen=True, slots=True)
class Member:
    """Who the permissions are computed for: a user and the ids of the guild roles they hold."""

    user_id: str
    role_ids: frozenset[str]


def base_permissions(
    *, guild_id: str, owner_id: str | None, roles: Mapping[str, int], member: Member
) -> int:
    """The member's guild-wide permissions. ``roles`` maps each role id of the guild (``@everyone``
    included, under the guild id) to its permission bits; roles it does not know are ignored."""
    if owner_id is not None and member.user_id == owner_id:
        return ALL_PERMISSIONS
    value = roles.get(guild_id, 0)
    for role_id in member.role_ids:
        value |= roles.get(role_id, 0)
    if value & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    return value


def overwritten(
    base: int, overwrites: Iterable[Overwrite], *, guild_id: str, member: Member
) -> int:
    """``base`` with a channel's overwrites applied in Discord's order, then the implicit rule."""
    if base & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    by_target = {(o.type, o.id): o for o in overwrites}
    value = base
    everyone = by_target.get((ROLE, guild_id))
    if everyone is not None:
        value &= ~everyone.deny
        value |= everyone.allow
    allow = deny = 0
    for role_id in member.role_ids:
        role = by_target.get((ROLE, role_id)) if role_id != guild_id else None
        if role is not None:
            allow |= role.allow
            deny |= role.deny
    value &= ~deny
    value |= allow
    own = by_target.get((MEMBER, member.user_id))
    if own is not None:
        value &= ~own.deny
        value |= own.allow
    return value if value & Permission.VIEW_CHANNEL else 0


def channel_permissions(
    *,
    guild_id: str,
    owner_id: str | None,
    roles: Mapping[str, int],
    member: Member,
    overwrites: Iterable[Overwrite],
) -> int:
    """The member's permissions in one channel: base permissions, then the channel's overwrites."""
    base = base_permissions(guild_id=guild_id, owner_id=owner_id, roles=roles, member=member)
    return overwritten(base, overwrites, guild_id=guild_id, member=member)


def has_all(value: int, wanted: int) -> bool:
    return value & wanted == wanted
