"""The fake Discord's world: accounts, guilds, channels, threads and message history.

Plain state and the rules that need no connection: where a channel lives, who may see a message's
content, how a message looks to a given bot over REST or the gateway. The REST API, the gateway
and the facade share one :class:`FakeState`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from .models import (
    BOT_ROLE_PERMISSIONS,
    JSON,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeThread,
    FakeUser,
    Intent,
    SnowflakeGenerator,
)

_MENTION = re.compile(r"<@!?(\d{1,20})>")

#: Who a helper acts on: a user or bot object, a member, or a user id.
Someone = FakeUser | FakeBot | FakeMember | int


def user_id_of(who: Someone) -> int:
    if isinstance(who, int):
        return who
    if isinstance(who, FakeMember):
        return who.user.id
    return who.id


class FakeState:
    def __init__(self, *, history_limit: int | None = None) -> None:
        #: When set, a channel's history is cut back to its newest ``history_limit`` messages
        #: whenever a message makes it twice as long (load tests post for minutes).
        self.history_limit = history_limit
        self._ids = SnowflakeGenerator()
        self.bots: dict[str, FakeBot] = {}
        self.users: dict[int, FakeUser] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channel_guild: dict[int, int] = {}
        self.dm_channels: dict[int, tuple[int, int]] = {}  # channel id -> (bot id, user id)
        self.history: dict[int, list[FakeMessage]] = {}
        self.messages: dict[int, FakeMessage] = {}
        #: Called when someone becomes a member of a guild (the gateway's GUILD_MEMBER_ADD).
        self.on_member_join: Callable[[FakeGuild, FakeMember], None] = lambda guild, member: None

    def new_id(self) -> int:
        return self._ids.next()

    # ---------------------------------------------------------------- people

    def add_user(
        self,
        username: str,
        *,
        user_id: int | None = None,
        bot: bool = False,
        global_name: str | None = None,
    ) -> FakeUser:
        """A Discord user. Reuses an existing id (and then leaves that user as it is)."""
        if user_id is not None and user_id in self.users:
            return self.users[user_id]
        user = FakeUser(
            id=user_id or self.new_id(), username=username, bot=bot, global_name=global_name
        )
        self.users[user.id] = user
        return user

    def user_named(self, username: str) -> FakeUser | None:
        return next((u for u in self.users.values() if u.username == username), None)

    def user_for(self, name: str, user_id: int | None, is_bot: bool) -> FakeUser:
        """The user with that id, else the (non-)bot user with that name, else a new one."""
        if user_id is not None:
            return self.add_user(name, user_id=user_id, bot=is_bot)
        existing = self.user_named(name)
        if existing is not None and existing.bot == is_bot:
            return existing
        return self.add_user(name, bot=is_bot)

    def bot(self, token_or_id: str | int) -> FakeBot:
        if isinstance(token_or_id, str):
            return self.bots[token_or_id]
        for bot in self.bots.values():
            if bot.id == token_or_id:
                return bot
        raise KeyError(token_or_id)

    def ensure_member(self, guild: FakeGuild, user: FakeUser) -> FakeMember:
        member = guild.members.get(user.id)
        if member is None:
            member = FakeMember(user=user, joined_at=dt.datetime.now(dt.UTC))
            guild.members[user.id] = member
            self.on_member_join(guild, member)
        return member

    def person_id(self, guild: FakeGuild, who: Someone | str) -> int:
        """The user id of ``who``; a username names a person, created (and made a member of
        ``guild``) if needed."""
        if isinstance(who, str):
            user = self.user_for(who, None, False)
            self.ensure_member(guild, user)
            return user.id
        return user_id_of(who)

    def join(self, guild: FakeGuild, bot: FakeBot) -> FakeMember:
        """The bot joins with its managed role, which has what the invite link asked for."""
        role = FakeRole(
            id=self.new_id(),
            name=bot.username,
            permissions=BOT_ROLE_PERMISSIONS,
            position=max((r.position for r in guild.roles), default=0) + 1,
            managed=True,
            bot_id=bot.id,
        )
        guild.roles.append(role)
        member = FakeMember(user=bot.user, joined_at=dt.datetime.now(dt.UTC), role_ids=[role.id])
        guild.members[bot.id] = member
        return member

    # ---------------------------------------------------------------- channels

    def register_channel(self, guild: FakeGuild, channel: FakeChannel) -> None:
        if isinstance(channel, FakeThread):
            guild.threads.append(channel)
        else:
            guild.channels.append(channel)
        self.channel_guild[channel.id] = guild.id
        self.history.setdefault(channel.id, [])

    def locate(self, channel_id: int) -> tuple[FakeGuild, FakeChannel] | None:
        """The guild channel or thread with that id, and its guild."""
        guild_id = self.channel_guild.get(channel_id)
        guild = self.guilds.get(guild_id) if guild_id is not None else None
        channel = guild.channel(channel_id) if guild is not None else None
        if guild is None or channel is None:
            return None
        return guild, channel

    # ---------------------------------------------------------------- messages

    def mentions_in(self, content: str) -> list[int]:
        """Users mentioned as ``<@id>`` or ``<@!id>``, once each, in order."""
        ids = [int(m) for m in _MENTION.findall(content)]
        return [i for i in dict.fromkeys(ids) if i in self.users]

    def store(self, message: FakeMessage) -> None:
        """Add a message to its channel's history and update the channel's counters."""
        history = self.history.setdefault(message.channel_id, [])
        history.append(message)
        self.messages[message.id] = message
        if self.history_limit is not None and len(history) > 2 * self.history_limit:
            for old in history[: -self.history_limit]:
                self.messages.pop(old.id, None)
            del history[: -self.history_limit]
        found = self.locate(message.channel_id)
        if found is None:
            return
        _, channel = found
        channel.last_message_id = message.id
        if isinstance(channel, FakeThread) and message.id != channel.id:
            channel.message_count += 1
            channel.total_message_sent += 1

    def content_visible(self, message: FakeMessage, bot: FakeBot, intents: int | None) -> bool:
        """Discord blanks content for apps without the message content intent, except in DMs,
        their own messages and messages that mention them."""
        if message.guild_id is None or message.author.id == bot.id or bot.id in message.mention_ids:
            return True
        if not bot.message_content_intent:
            return False
        return intents is None or bool(intents & Intent.MESSAGE_CONTENT)

    def message_payload(
        self, message: FakeMessage, bot: FakeBot, *, intents: int | None = None, gateway: bool
    ) -> JSON:
        """The message as ``bot`` gets it: over REST (``intents`` None) or in MESSAGE_CREATE."""
        guild = self.guilds.get(message.guild_id) if message.guild_id is not None else None
        return message.payload(
            users=self.users,
            members=guild.members if guild is not None else None,
            with_content=self.content_visible(message, bot, intents),
            for_gateway=gateway,
            referenced=self.messages.get(message.reference_id or 0),
        )
