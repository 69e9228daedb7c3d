"""Discord's permission algorithm, as documented, on plain data.

https://discord.com/developers/docs/topics/permissions#permission-overwrites

1. Base permissions in the guild: the owner has everything; otherwise ``@everyone`` (the role whose
   id is the guild id) OR every role of the member; ADMINISTRATOR means everything.
2. In a channel: the ``@everyone`` overwrite (deny, then allow), then the union of the denies of all
   the member's role overwrites, then the union of their allows, then the member's own overwrite.
3. Implicit rules: without VIEW_CHANNEL nothing else applies; without SEND_MESSAGES (or, in a
   thread, SEND_MESSAGES_IN_THREADS) the permissions that only make sense with it are dropped.
4. A thread has no overwrites of its own: it takes its parent's permissions, and a private thread is
   visible only to its members and to members with MANAGE_THREADS.

This module knows nothing of the fake's models, so that it can be unit-tested on Discord's
documented cases and reused by anything that has roles, overwrites and a member.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class Permission(enum.IntFlag):
    """Permission bits (Discord's numbering)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    PRIORITY_SPEAKER = 1 << 8
    STREAM = 1 << 9
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    VIEW_GUILD_INSIGHTS = 1 << 19
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MUTE_MEMBERS = 1 << 22
    DEAFEN_MEMBERS = 1 << 23
    MOVE_MEMBERS = 1 << 24
    USE_VAD = 1 << 25
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    MANAGE_GUILD_EXPRESSIONS = 1 << 30
    USE_APPLICATION_COMMANDS = 1 << 31
    REQUEST_TO_SPEAK = 1 << 32
    MANAGE_EVENTS = 1 << 33
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    USE_EXTERNAL_STICKERS = 1 << 37
    SEND_MESSAGES_IN_THREADS = 1 << 38
    USE_EMBEDDED_ACTIVITIES = 1 << 39
    MODERATE_MEMBERS = 1 << 40
    VIEW_CREATOR_MONETIZATION_ANALYTICS = 1 << 41
    USE_SOUNDBOARD = 1 << 42
    CREATE_GUILD_EXPRESSIONS = 1 << 43
    CREATE_EVENTS = 1 << 44
    USE_EXTERNAL_SOUNDS = 1 << 45
    SEND_VOICE_MESSAGES = 1 << 46
    SET_VOICE_CHANNEL_STATUS = 1 << 48
    SEND_POLLS = 1 << 49
    USE_EXTERNAL_APPS = 1 << 50
    PIN_MESSAGES = 1 << 51
    BYPASS_SLOWMODE = 1 << 52


ALL_PERMISSIONS = int(sum(Permission))

#: Dropped in a channel where the member cannot send messages (Discord's implicit permissions).
_NEEDS_SEND = int(
    Permission.SEND_TTS_MESSAGES
    | Permission.MENTION_EVERYONE
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
)

ROLE = 0
MEMBER = 1


@dataclass(frozen=True)
class Overwrite:
    """A channel permission overwrite: ``type`` 0 targets a role, 1 a member."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        """Discord's shape: ids and bitfields as strings."""
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Overwrite:
        kind = data.get("type", ROLE)
        if kind in ("role", "member"):  # the shape of API v7 and older
            kind = ROLE if kind == "role" else MEMBER
        return cls(
            id=int(data["id"]),
            type=int(kind),
            allow=int(data.get("allow", 0)),
            deny=int(data.get("deny", 0)),
        )


def base_permissions(everyone: int, role_permissions: Iterable[int], *, is_owner: bool) -> int:
    """The member's guild-wide permissions (``everyone`` is the ``@everyone`` role's bitfield)."""
    if is_owner:
        return ALL_PERMISSIONS
    value = everyone
    for permissions in role_permissions:
        value |= permissions
    if value & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    return value


def overwritten_permissions(
    base: int,
    overwrites: Iterable[Overwrite],
    *,
    guild_id: int,
    role_ids: Collection[int],
    member_id: int,
) -> int:
    """The channel's overwrites applied to ``base``, in Discord's order."""
    if base & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    by_target = {(o.type, o.id): o for o in overwrites}
    value = base
    everyone = by_target.get((ROLE, guild_id))
    if everyone is not None:
        value &= ~everyone.deny
        value |= everyone.allow
    allow = deny = 0
    for role_id in role_ids:
        overwrite = by_target.get((ROLE, role_id))
        if overwrite is not None and role_id != guild_id:
            allow |= overwrite.allow
            deny |= overwrite.deny
    value &= ~deny
    value |= allow
    member = by_target.get((MEMBER, member_id))
    if member is not None:
        value &= ~member.deny
        value |= member.allow
    return value


def implicit_permissions(value: int, *, in_thread: bool = False) -> int:
    """Discord's implicit rules: no VIEW_CHANNEL, nothing; no send, no send-only extras."""
    if value & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    if not value & Permission.VIEW_CHANNEL:
        return 0
    send = Permission.SEND_MESSAGES_IN_THREADS if in_thread else Permission.SEND_MESSAGES
    if not value & send:
        value &= ~_NEEDS_SEND
    return value


def channel_permissions(
    *,
    guild_id: int,
    everyone: int,
    roles: Mapping[int, int],
    member_role_ids: Collection[int],
    member_id: int,
    is_owner: bool,
    overwrites: Iterable[Overwrite],
) -> int:
    """The member's permissions in a (non-thread) channel: base, overwrites, implicit rules.

    ``roles`` maps every role id of the guild to its bitfield; unknown role ids are ignored.
    """
    base = base_permissions(
        everyone,
        (roles[r] for r in member_role_ids if r in roles and r != guild_id),
        is_owner=is_owner,
    )
    value = overwritten_permissions(
        base, overwrites, guild_id=guild_id, role_ids=member_role_ids, member_id=member_id
    )
    return implicit_permissions(value)


def thread_permissions(parent: int, *, private: bool, is_thread_member: bool) -> int:
    """A thread's permissions from its parent channel's (already computed) permissions."""
    if private and not is_thread_member and not parent & Permission.MANAGE_THREADS:
        return 0
    return implicit_permissions(parent, in_thread=True)
