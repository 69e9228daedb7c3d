"""State of the fake Discord (users, bots, guilds, channels, messages) and its JSON shapes.

The payload builders produce the shapes Discord's API v10 really sends: snowflakes as strings,
ISO 8601 timestamps with an explicit offset, and every key discord.py reads without a default.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .permissions import (
    Overwrite,
    Permission,
    base_permissions,
    channel_permissions,
    thread_permissions,
)

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000


class ChannelType(enum.IntEnum):
    """The channel types the fake knows (Discord's numbering)."""

    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_STAGE_VOICE = 13
    GUILD_FORUM = 15


THREAD_TYPES = frozenset(
    {ChannelType.ANNOUNCEMENT_THREAD, ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD}
)

#: Channel types a message can be posted in (voice and stage channels have a text chat).
MESSAGEABLE_CHANNEL_TYPES = frozenset(
    {
        ChannelType.GUILD_TEXT,
        ChannelType.DM,
        ChannelType.GUILD_VOICE,
        ChannelType.GUILD_ANNOUNCEMENT,
        ChannelType.GUILD_STAGE_VOICE,
    }
    | THREAD_TYPES
)

#: Channels that can hold threads, and the type of a (non-private) thread in each.
THREAD_PARENT_TYPES = {
    ChannelType.GUILD_TEXT: ChannelType.PUBLIC_THREAD,
    ChannelType.GUILD_ANNOUNCEMENT: ChannelType.ANNOUNCEMENT_THREAD,
    ChannelType.GUILD_FORUM: ChannelType.PUBLIC_THREAD,
}


class Intent(enum.IntFlag):
    """Gateway intents (bit values from Discord's documentation)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_INTEGRATIONS = 1 << 4
    GUILD_WEBHOOKS = 1 << 5
    GUILD_INVITES = 1 << 6
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    GUILD_SCHEDULED_EVENTS = 1 << 16
    AUTO_MODERATION_CONFIGURATION = 1 << 20
    AUTO_MODERATION_EXECUTION = 1 << 21
    GUILD_MESSAGE_POLLS = 1 << 24
    DIRECT_MESSAGE_POLLS = 1 << 25


ALL_INTENTS = int(sum(Intent))


#: A new guild's ``@everyone`` role, as Discord creates it.
EVERYONE_PERMISSIONS = int(
    Permission.CREATE_INSTANT_INVITE
    | Permission.ADD_REACTIONS
    | Permission.STREAM
    | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.CONNECT
    | Permission.SPEAK
    | Permission.USE_VAD
    | Permission.CHANGE_NICKNAME
    | Permission.USE_APPLICATION_COMMANDS
    | Permission.CREATE_PUBLIC_THREADS
    | Permission.CREATE_PRIVATE_THREADS
    | Permission.USE_EXTERNAL_STICKERS
    | Permission.SEND_MESSAGES_IN_THREADS
    | Permission.SEND_VOICE_MESSAGES
    | Permission.SEND_POLLS
)

#: The bot's managed role: what Neonrain's invite link asks for.
BOT_ROLE_PERMISSIONS = int(
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.CHANGE_NICKNAME
)

# Application flags Discord reports for an unverified app with the privileged intents switched on.
APP_FLAG_GATEWAY_PRESENCE_LIMITED = 1 << 13
APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19


class SnowflakeGenerator:
    """Time-based, strictly increasing snowflakes, like Discord's."""

    def __init__(self) -> None:
        self._last = 0
        self._counter = itertools.count()

    def next(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        candidate = (ms << 22) | (1 << 17) | (next(self._counter) & 0xFFF)
        self._last = max(candidate, self._last + 1)
        return self._last


def snowflake_time(snowflake: int) -> dt.datetime:
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def iso(moment: dt.datetime) -> str:
    """Discord's timestamp format: ``2024-05-01T12:00:00.123000+00:00``."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


@dataclass
class FakeUser:
    id: int
    username: str
    bot: bool = False
    avatar: str | None = None
    global_name: str | None = None

    @property
    def display_name(self) -> str:
        """What Discord shows outside a guild: the global name, else the username."""
        return self.global_name or self.username

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,
            "collectibles": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class FakeBot:
    """A bot account: its token, its user and what its owner switched on in the developer portal."""

    token: str
    user: FakeUser
    message_content_intent: bool = True
    members_intent: bool = False
    presence_intent: bool = False
    revoked: bool = False

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def username(self) -> str:
        return self.user.username

    def allowed_privileged_intents(self) -> int:
        allowed = 0
        if self.message_content_intent:
            allowed |= Intent.MESSAGE_CONTENT
        if self.members_intent:
            allowed |= Intent.GUILD_MEMBERS
        if self.presence_intent:
            allowed |= Intent.GUILD_PRESENCES
        return allowed

    def application_flags(self) -> int:
        flags = 0
        if self.message_content_intent:
            flags |= APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED
        if self.members_intent:
            flags |= APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED
        if self.presence_intent:
            flags |= APP_FLAG_GATEWAY_PRESENCE_LIMITED
        return flags

    def me_payload(self) -> JSON:
        """``GET /users/@me`` as a bot sees it."""
        data = self.user.payload()
        data.update(
            {
                "bot": self.user.bot,
                "mfa_enabled": False,
                "locale": "en-US",
                "premium_type": 0,
                "email": None,
                "verified": True,
                "bio": "",
                "banner_color": None,
            }
        )
        return data

    def application_payload(self, guild_count: int = 0) -> JSON:
        """``GET /oauth2/applications/@me``: the application id equals the bot user's id."""
        flags = self.application_flags()
        return {
            "id": str(self.id),
            "name": self.username,
            "icon": self.user.avatar,
            "description": "",
            "summary": "",
            "type": None,
            "is_monetized": False,
            "is_verified": False,
            "is_discoverable": False,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": flags,
            "flags_new": str(flags),
            "hook": True,
            "bot": self.user.payload(),
            "owner": {
                "id": str(self.id + 1),
                "username": f"{self.username}-owner",
                "discriminator": "0",
                "global_name": None,
                "avatar": None,
                "public_flags": 0,
                "flags": 0,
                "primary_guild": None,
            },
            "team": None,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "integration_types_config": {"0": {}},
            "approximate_guild_count": guild_count,
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": [],
        }


@dataclass
class FakeChannel:
    """A guild channel (text, announcement, voice, stage, category or forum)."""

    id: int
    guild_id: int
    name: str
    type: ChannelType = ChannelType.GUILD_TEXT
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False
    permission_overwrites: list[Overwrite] = field(default_factory=list)
    last_message_id: int | None = None
    rate_limit_per_user: int = 0
    bitrate: int = 64000
    user_limit: int = 0
    rtc_region: str | None = None
    #: Keys left out of this channel's payloads: a malformed channel (crash-recovery tests).
    omit: frozenset[str] = frozenset()

    @property
    def is_thread(self) -> bool:
        return False

    def overwrite_for(self, target_id: int) -> Overwrite | None:
        return next((o for o in self.permission_overwrites if o.id == target_id), None)

    def set_overwrite(self, overwrite: Overwrite | None, target_id: int) -> None:
        """Replace (or with None remove) the overwrite for ``target_id``."""
        kept = [o for o in self.permission_overwrites if o.id != target_id]
        self.permission_overwrites = kept + ([overwrite] if overwrite is not None else [])

    def payload(self, *, with_guild_id: bool = True) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "type": int(self.type),
            "name": self.name,
            "position": self.position,
            "parent_id": _opt_str(self.parent_id),
            "permission_overwrites": [o.payload() for o in self.permission_overwrites],
            "flags": 0,
        }
        if with_guild_id:
            data["guild_id"] = str(self.guild_id)
        kind = self.type
        if kind in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
            data.update(
                {
                    "topic": self.topic,
                    "nsfw": self.nsfw,
                    "last_message_id": _opt_str(self.last_message_id),
                    "rate_limit_per_user": self.rate_limit_per_user,
                    "default_auto_archive_duration": 1440,
                    "default_thread_rate_limit_per_user": 0,
                }
            )
        elif kind in (ChannelType.GUILD_VOICE, ChannelType.GUILD_STAGE_VOICE):
            data.update(
                {
                    "nsfw": self.nsfw,
                    "last_message_id": _opt_str(self.last_message_id),
                    "bitrate": self.bitrate,
                    "user_limit": self.user_limit,
                    "rtc_region": self.rtc_region,
                    "rate_limit_per_user": self.rate_limit_per_user,
                }
            )
            if kind == ChannelType.GUILD_STAGE_VOICE:
                data["topic"] = self.topic
            else:
                data["video_quality_mode"] = 1
        elif kind == ChannelType.GUILD_FORUM:
            data.update(
                {
                    "topic": self.topic,
                    "nsfw": self.nsfw,
                    "last_message_id": _opt_str(self.last_message_id),  # the newest post
                    "rate_limit_per_user": self.rate_limit_per_user,
                    "default_thread_rate_limit_per_user": 0,
                    "default_auto_archive_duration": 1440,
                    "available_tags": [],
                    "default_reaction_emoji": None,
                    "default_sort_order": None,
                    "default_forum_layout": 0,
                    "template": "",
                }
            )
        for key in self.omit:
            data.pop(key, None)
        return data


@dataclass
class FakeThread(FakeChannel):
    """A thread: public (11), private (12) or announcement (10); a forum post is a public thread
    whose parent is a forum channel. Its id is the id of the message it was started from, if any
    (for a forum post, the id of its first message)."""

    owner_id: int = 0
    #: Thread members: user id -> when they joined.
    members: dict[int, dt.datetime] = field(default_factory=dict)
    archived: bool = False
    locked: bool = False
    invitable: bool = True
    auto_archive_duration: int = 1440
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: Messages after the first one (Discord does not count a forum post's opening message).
    message_count: int = 0
    total_message_sent: int = 0
    in_forum: bool = False

    @property
    def is_thread(self) -> bool:
        return True

    @property
    def private(self) -> bool:
        return self.type == ChannelType.PRIVATE_THREAD

    def member_payload(self, user_id: int) -> JSON:
        """A thread member object (``THREAD_MEMBERS_UPDATE``, ``THREAD_LIST_SYNC``)."""
        joined = self.members.get(user_id, self.created_at)
        return {
            "id": str(self.id),
            "user_id": str(user_id),
            "join_timestamp": iso(joined),
            "flags": 1,
        }

    def payload(self, *, with_guild_id: bool = True, member_of: int | None = None) -> JSON:
        """The thread object; ``member_of`` adds that user's thread member when they joined."""
        metadata: JSON = {
            "archived": self.archived,
            "archive_timestamp": iso(self.created_at),
            "auto_archive_duration": self.auto_archive_duration,
            "locked": self.locked,
            "create_timestamp": iso(self.created_at),
        }
        if self.private:
            metadata["invitable"] = self.invitable
        data: JSON = {
            "id": str(self.id),
            "type": int(self.type),
            "guild_id": str(self.guild_id),
            "parent_id": _opt_str(self.parent_id),
            "owner_id": str(self.owner_id),
            "name": self.name,
            "last_message_id": _opt_str(self.last_message_id),
            "rate_limit_per_user": self.rate_limit_per_user,
            "flags": 0,
            "message_count": self.message_count,
            "member_count": min(len(self.members), 50),  # Discord stops counting at 50
            "total_message_sent": self.total_message_sent,
            "thread_metadata": metadata,
        }
        if self.in_forum:
            data["applied_tags"] = []
        if not with_guild_id:
            del data["guild_id"]
        if member_of is not None and member_of in self.members:
            data["member"] = self.member_payload(member_of)
        for key in self.omit:
            data.pop(key, None)
        return data


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: int | None = None
    color: int = 0
    hoist: bool = False
    mentionable: bool = False

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {
                "primary_color": self.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": self.hoist,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class FakeMember:
    """A user's membership of a guild."""

    user: FakeUser
    joined_at: dt.datetime
    nick: str | None = None
    role_ids: list[int] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        """One name per person: the server nickname, else the global name, else the username."""
        return self.nick or self.user.display_name

    def payload(self, *, with_user: bool = True) -> JSON:
        data: JSON = {
            "roles": [str(r) for r in self.role_ids],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    icon: str | None = None
    channels: list[FakeChannel] = field(default_factory=list)
    threads: list[FakeThread] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    members: dict[int, FakeMember] = field(default_factory=dict)

    def channel(self, channel_id: int) -> FakeChannel | None:
        """A channel or a thread of this guild."""
        found = next((c for c in self.channels if c.id == channel_id), None)
        return found if found is not None else self.thread(channel_id)

    def thread(self, thread_id: int) -> FakeThread | None:
        return next((t for t in self.threads if t.id == thread_id), None)

    def channel_named(self, name: str) -> FakeChannel:
        """The first channel (or else thread) with that name (handy in tests)."""
        for channel in [*self.channels, *self.threads]:
            if channel.name == name:
                return channel
        raise KeyError(name)

    @property
    def text_channels(self) -> list[FakeChannel]:
        return [c for c in self.channels if c.type == ChannelType.GUILD_TEXT]

    def role(self, role_id: int) -> FakeRole | None:
        return next((r for r in self.roles if r.id == role_id), None)

    @property
    def everyone_role(self) -> FakeRole:
        """``@everyone``: the role whose id is the guild's id."""
        role = self.role(self.id)
        assert role is not None, "a guild always has its @everyone role"
        return role

    def has_member(self, user_id: int) -> bool:
        return user_id in self.members

    def permissions_of(self, user_id: int) -> int:
        """The member's guild-wide (base) permissions; 0 for someone who is not a member."""
        member = self.members.get(user_id)
        if member is None:
            return 0
        role_ids = set(member.role_ids)
        return base_permissions(
            self.everyone_role.permissions,
            (r.permissions for r in self.roles if r.id in role_ids and r.id != self.id),
            is_owner=user_id == self.owner_id,
        )

    def permissions_in(self, channel: FakeChannel, user_id: int) -> int:
        """The member's permissions in a channel or thread of this guild (Discord's algorithm)."""
        if isinstance(channel, FakeThread):
            parent = self.channel(channel.parent_id) if channel.parent_id is not None else None
            return thread_permissions(
                self.permissions_in(parent, user_id) if parent is not None else 0,
                private=channel.private,
                is_thread_member=user_id in channel.members,
            )
        member = self.members.get(user_id)
        if member is None:
            return 0
        return channel_permissions(
            guild_id=self.id,
            everyone=self.everyone_role.permissions,
            roles={r.id: r.permissions for r in self.roles},
            member_role_ids=member.role_ids,
            member_id=user_id,
            is_owner=user_id == self.owner_id,
            overwrites=channel.permission_overwrites,
        )

    def can(self, user_id: int, channel: FakeChannel, permission: int) -> bool:
        return self.permissions_in(channel, user_id) & permission == permission

    def visible_threads(self, user_id: int) -> list[FakeThread]:
        """Active threads the user can see (``GUILD_CREATE``'s ``threads``)."""
        return [
            t
            for t in self.threads
            if not t.archived and self.can(user_id, t, Permission.VIEW_CHANNEL)
        ]

    def base_payload(self) -> JSON:
        """The guild object of ``GET /guilds/{id}`` (no channels or members, as in Discord)."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": self.icon,
            "icon_hash": self.icon,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "home_header": None,
            "owner_id": str(self.owner_id),
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": _opt_str(self.text_channels[0].id if self.text_channels else None),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw": False,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "incidents_data": None,
        }

    def partial_payload(self, user_id: int) -> JSON:
        """An entry of ``GET /users/@me/guilds``."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": self.icon,
            "banner": None,
            "owner": self.owner_id == user_id,
            "permissions": str(self.permissions_of(user_id)),
            "features": [],
        }

    def gateway_payload(self, bot_id: int, *, initial: bool) -> JSON:
        """``GUILD_CREATE``: the guild with its channels, roles, threads and the bot's own member.

        A bot gets every channel, even those it cannot see, but only the threads it can see.
        ``initial`` marks the GUILD_CREATE that follows READY (``unavailable: false``); a guild the
        bot joins later comes without the key, which is how discord.py tells join from available.
        """
        data = self.base_payload()
        me = self.members.get(bot_id)
        joined = me.joined_at if me else dt.datetime.now(dt.UTC)
        data.update(
            {
                "joined_at": iso(joined),
                "large": False,
                "member_count": len(self.members),
                "lazy": True,
                "voice_states": [],
                "members": [me.payload()] if me else [],
                "channels": [c.payload(with_guild_id=False) for c in self.channels],
                "threads": [t.payload(member_of=bot_id) for t in self.visible_threads(bot_id)],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
                "embedded_activities": [],
                "application_command_counts": {},
            }
        )
        if initial:
            data["unavailable"] = False
        return data


@dataclass
class FakeAttachment:
    id: int
    filename: str
    size: int = 1024
    content_type: str | None = None

    def payload(self, channel_id: int) -> JSON:
        url = f"https://cdn.discordapp.com/attachments/{channel_id}/{self.id}/{self.filename}"
        data: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": url,
            "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
        }
        if self.content_type:
            data["content_type"] = self.content_type
        return data


class MessageType(enum.IntEnum):
    """The message types the fake produces itself (any int may be posted)."""

    DEFAULT = 0
    USER_JOIN = 7
    THREAD_CREATED = 18
    REPLY = 19
    THREAD_STARTER_MESSAGE = 21


#: Message flag: a thread was started from this message.
FLAG_HAS_THREAD = 1 << 5


@dataclass
class FakeMessage:
    """A message in a channel's history, posted by a test user or sent by a bot."""

    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    content: str
    type: int = 0
    attachments: list[FakeAttachment] = field(default_factory=list)
    embeds: list[JSON] = field(default_factory=list)
    mention_ids: list[int] = field(default_factory=list)
    reference_id: int | None = None
    #: The channel a reference points to when it is not this one (a THREAD_CREATED notice).
    reference_channel_id: int | None = None
    webhook_id: int | None = None
    nonce: str | int | None = None
    tts: bool = False
    #: The thread started from this message.
    thread: FakeThread | None = None

    @property
    def timestamp(self) -> dt.datetime:
        return snowflake_time(self.id)

    @property
    def author_id(self) -> int:
        return self.author.id

    def payload(
        self,
        *,
        users: Mapping[int, FakeUser],
        members: Mapping[int, FakeMember] | None = None,
        with_content: bool = True,
        for_gateway: bool = False,
        referenced: FakeMessage | None = None,
        nested: bool = False,
    ) -> JSON:
        """The message object; ``with_content=False`` blanks what the content intent guards.

        ``for_gateway`` adds what only MESSAGE_CREATE carries: ``guild_id``, the author's
        ``member`` and a ``member`` on each mentioned guild member (``members`` is the guild's).
        """
        members = members if members is not None else {}
        mentions = []
        for user_id in self.mention_ids:
            if user_id not in users:
                continue
            mention = users[user_id].payload()
            if for_gateway and user_id in members:
                mention["member"] = members[user_id].payload(with_user=False)
            mentions.append(mention)
        data: JSON = {
            "id": str(self.id),
            "type": self.type,
            "channel_id": str(self.channel_id),
            "author": self.author.payload(),
            "content": self.content if with_content else "",
            "timestamp": iso(self.timestamp),
            "edited_timestamp": None,
            "tts": self.tts,
            "mention_everyone": False,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": [a.payload(self.channel_id) for a in self.attachments]
            if with_content
            else [],
            "embeds": list(self.embeds) if with_content else [],
            "components": [],
            "pinned": False,
            "flags": FLAG_HAS_THREAD if self.thread is not None else 0,
        }
        if self.nonce is not None:
            data["nonce"] = self.nonce
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.reference_id is not None or self.reference_channel_id is not None:
            reference: JSON = {
                "type": 0,
                "channel_id": str(self.reference_channel_id or self.channel_id),
            }
            if self.reference_id is not None:
                reference["message_id"] = str(self.reference_id)
            if self.guild_id is not None:
                reference["guild_id"] = str(self.guild_id)
            data["message_reference"] = reference
        if self.reference_id is not None and not nested:
            # Discord sends the replied-to message one level deep; null means it was deleted.
            data["referenced_message"] = (
                referenced.payload(users=users, with_content=with_content, nested=True)
                if referenced is not None
                else None
            )
        if self.thread is not None:
            data["thread"] = self.thread.payload()
        if for_gateway and self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
            member = members.get(self.author.id)
            if member is not None and self.webhook_id is None:
                data["member"] = member.payload(with_user=False)
        return data


def _opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)
