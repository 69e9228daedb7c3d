"""Building the fake's world: accounts, guilds, channels, members, roles and overwrites.

A mixin of :class:`~.server.FakeDiscord`. Changes that Discord announces are dispatched as it
does: CHANNEL_CREATE/UPDATE, GUILD_ROLE_CREATE/UPDATE, GUILD_MEMBER_UPDATE, and THREAD_LIST_SYNC
to a bot that can now see a channel holding threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

from .gateway_server import GatewayServer
from .models import (
    EVERYONE_PERMISSIONS,
    JSON,
    ChannelType,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
)
from .permissions import MEMBER, ROLE, Overwrite, Permission
from .state import FakeState, Someone, user_id_of


class WorldBuilder:
    state: FakeState
    gateway: GatewayServer
    bots: dict[str, FakeBot]
    users: dict[int, FakeUser]
    guilds: dict[int, FakeGuild]

    # ---------------------------------------------------------------- accounts

    def new_id(self) -> int:
        return self.state.new_id()

    def add_user(
        self,
        username: str,
        *,
        user_id: int | None = None,
        bot: bool = False,
        global_name: str | None = None,
    ) -> FakeUser:
        """A Discord user (people who post messages in tests). Reuses an existing id."""
        return self.state.add_user(username, user_id=user_id, bot=bot, global_name=global_name)

    def user_named(self, username: str) -> FakeUser | None:
        return self.state.user_named(username)

    def add_bot(
        self,
        token: str,
        username: str = "Neonrain Bot",
        *,
        bot_id: int | None = None,
        avatar: str | None = None,
        is_bot: bool = True,
        message_content_intent: bool = True,
        members_intent: bool = False,
        presence_intent: bool = False,
    ) -> FakeBot:
        """A bot account. ``*_intent`` are the privileged intents switched on in the portal
        (asking for one that is off closes the gateway with 4014); ``is_bot=False`` makes
        ``GET /users/@me`` describe a person (a user token)."""
        user = FakeUser(id=bot_id or self.new_id(), username=username, bot=is_bot, avatar=avatar)
        self.users[user.id] = user
        bot = FakeBot(
            token=token,
            user=user,
            message_content_intent=message_content_intent,
            members_intent=members_intent,
            presence_intent=presence_intent,
        )
        self.bots[token] = bot
        return bot

    def bot(self, token_or_id: str | int) -> FakeBot:
        return self.state.bot(token_or_id)

    def bots_in(self, guild_id: int) -> list[FakeBot]:
        guild = self.guilds[guild_id]
        return [b for b in self.bots.values() if b.id in guild.members]

    def revoke_token(self, token: str) -> None:
        """The owner reset the token: REST answers 401 and live gateway sessions close 4004."""
        bot = self.bots[token]
        bot.revoked = True
        self.gateway.revoke(bot)

    # ---------------------------------------------------------------- guilds and channels

    def add_guild(
        self,
        name: str,
        *,
        guild_id: int | None = None,
        icon: str | None = None,
        channels: Sequence[tuple[str, ChannelType]] | None = None,
        bots: Iterable[str | FakeBot] = (),
    ) -> FakeGuild:
        """A guild with an @everyone role and channels.

        Default channels: category "Text Channels" holding #general and #random, and category
        "Voice Channels" holding the voice channel "General". ``channels`` replaces them with
        ``(name, type)`` pairs (no categories). ``bots`` (tokens or bots) become members.
        """
        gid = guild_id or self.new_id()
        if gid in self.guilds:
            raise ValueError(f"guild {gid} exists")
        owner = self.add_user(f"owner-of-{name}")
        guild = FakeGuild(id=gid, name=name, owner_id=owner.id, icon=icon)
        guild.roles.append(FakeRole(id=gid, name="@everyone", permissions=EVERYONE_PERMISSIONS))
        self.state.ensure_member(guild, owner)
        self.guilds[gid] = guild
        if channels is None:
            text = self.add_channel(gid, "Text Channels", ChannelType.GUILD_CATEGORY)
            self.add_channel(gid, "general", parent_id=text.id)
            self.add_channel(gid, "random", parent_id=text.id)
            voice = self.add_channel(gid, "Voice Channels", ChannelType.GUILD_CATEGORY)
            self.add_channel(gid, "General", ChannelType.GUILD_VOICE, parent_id=voice.id)
        else:
            for channel_name, channel_type in channels:
                self.add_channel(gid, channel_name, channel_type)
        for b in bots:
            self.state.join(guild, b if isinstance(b, FakeBot) else self.bots[b])
        return guild

    def guild(self, guild_id: int) -> FakeGuild:
        return self.guilds[guild_id]

    def add_channel(
        self,
        guild_id: int,
        name: str,
        type: ChannelType = ChannelType.GUILD_TEXT,
        *,
        channel_id: int | None = None,
        parent_id: int | None = None,
        topic: str | None = None,
        position: int | None = None,
        permission_overwrites: Sequence[Overwrite | JSON] | None = None,
        omit: Iterable[str] = (),
    ) -> FakeChannel:
        """Add a channel; connected bots of the guild get CHANNEL_CREATE.

        Without ``permission_overwrites`` a channel in a category is synced with it (it copies
        the category's overwrites, as Discord does). ``omit`` leaves keys out of the channel's
        payloads, e.g. ``omit=["bitrate"]`` on a voice channel makes discord.py's parser raise
        on every GUILD_CREATE (crash-recovery tests).
        """
        guild = self.guilds[guild_id]
        if permission_overwrites is None:
            parent = guild.channel(parent_id) if parent_id is not None else None
            overwrites = list(parent.permission_overwrites) if parent is not None else []
        else:
            overwrites = [
                o if isinstance(o, Overwrite) else Overwrite.from_payload(o)
                for o in permission_overwrites
            ]
        channel = FakeChannel(
            id=channel_id or self.new_id(),
            guild_id=guild_id,
            name=name,
            type=type,
            position=(
                position
                if position is not None
                else sum(1 for c in guild.channels if c.type == type)
            ),
            parent_id=parent_id,
            topic=topic,
            permission_overwrites=overwrites,
            omit=frozenset(omit),
        )
        self.state.register_channel(guild, channel)
        self.gateway.dispatch_to_guild(guild, "CHANNEL_CREATE", channel.payload())
        return channel

    def channel(self, channel_id: int) -> FakeChannel:
        """A guild channel or thread by id."""
        found = self.state.locate(channel_id)
        if found is None:
            raise KeyError(channel_id)
        return found[1]

    def nickname(self, guild_id: int, token: str) -> str | None:
        """The bot's nickname in the guild."""
        member = self.guilds[guild_id].members.get(self.bots[token].id)
        return member.nick if member else None

    # ---------------------------------------------------------------- members and roles

    def add_member(
        self,
        guild_id: int,
        username: str,
        *,
        nick: str | None = None,
        global_name: str | None = None,
        roles: Iterable[FakeRole | int] = (),
        user_id: int | None = None,
    ) -> FakeMember:
        """A person in the guild (reused by name, like ``post_user_message``'s authors)."""
        guild = self.guilds[guild_id]
        user = self.state.user_for(username, user_id, False)
        if global_name is not None:
            user.global_name = global_name
        member = self.state.ensure_member(guild, user)
        member.nick = nick if nick is not None else member.nick
        for role in roles:
            role_id = role.id if isinstance(role, FakeRole) else role
            if role_id not in member.role_ids:
                member.role_ids.append(role_id)
        return member

    def member(self, guild_id: int, who: Someone | str) -> FakeMember:
        """The guild member for a user, bot, id or username."""
        guild = self.guilds[guild_id]
        if isinstance(who, str):
            user = self.user_named(who)
            if user is None:
                raise KeyError(who)
            return guild.members[user.id]
        return guild.members[user_id_of(who)]

    def set_nick(self, guild_id: int, who: Someone | str, nick: str | None) -> FakeMember:
        """Set a member's server nickname; GUILD_MEMBER_UPDATE goes to the member's own
        sessions and to bots with the GUILD_MEMBERS intent."""
        guild = self.guilds[guild_id]
        member = self.member(guild_id, who)
        member.nick = nick or None
        self.gateway.member_updated(guild, member)
        return member

    def set_global_name(self, who: Someone | str, global_name: str | None) -> FakeUser:
        """Set a person's global display name; every guild they are in sends
        GUILD_MEMBER_UPDATE (with the new user) like :meth:`set_nick`."""
        user = self.user_named(who) if isinstance(who, str) else self.users[user_id_of(who)]
        if user is None:
            raise KeyError(who)
        user.global_name = global_name
        for guild in self.guilds.values():
            member = guild.members.get(user.id)
            if member is not None:
                self.gateway.member_updated(guild, member)
        return user

    def add_role(
        self,
        guild_id: int,
        name: str,
        permissions: int = 0,
        *,
        position: int | None = None,
        members: Iterable[Someone] = (),
    ) -> FakeRole:
        """A role (GUILD_ROLE_CREATE), placed above the others unless ``position`` is given,
        and given to ``members``."""
        guild = self.guilds[guild_id]
        role = FakeRole(
            id=self.new_id(),
            name=name,
            permissions=int(permissions),
            position=(
                position
                if position is not None
                else max((r.position for r in guild.roles), default=0) + 1
            ),
        )
        guild.roles.append(role)
        self.gateway.dispatch_to_guild(
            guild, "GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role.payload()}
        )
        for who in members:
            self.give_role(guild_id, who, role)
        return role

    def everyone_role(self, guild_id: int) -> FakeRole:
        return self.guilds[guild_id].everyone_role

    def bot_role(self, guild_id: int, token: str) -> FakeRole:
        """The managed role the bot got when it joined."""
        bot_id = self.bots[token].id
        guild = self.guilds[guild_id]
        role = next((r for r in guild.roles if r.bot_id == bot_id), None)
        if role is None:
            raise KeyError(f"bot {bot_id} has no role in guild {guild_id}")
        return role

    def set_role_permissions(self, guild_id: int, role: FakeRole | int, permissions: int) -> None:
        """Change a role's permissions (GUILD_ROLE_UPDATE; THREAD_LIST_SYNC to bots that can
        now see more). ``role`` may be the guild id for ``@everyone``."""
        guild = self.guilds[guild_id]
        target = guild.role(role.id if isinstance(role, FakeRole) else role)
        if target is None:
            raise KeyError(role)
        with self._access_change(guild):
            target.permissions = int(permissions)
            self.gateway.dispatch_to_guild(
                guild, "GUILD_ROLE_UPDATE", {"guild_id": str(guild.id), "role": target.payload()}
            )

    def give_role(self, guild_id: int, who: Someone | str, role: FakeRole | int) -> None:
        """Give a member a role (GUILD_MEMBER_UPDATE, and THREAD_LIST_SYNC if it opens
        channels)."""
        self._change_roles(guild_id, who, role, add=True)

    def take_role(self, guild_id: int, who: Someone | str, role: FakeRole | int) -> None:
        self._change_roles(guild_id, who, role, add=False)

    def _change_roles(
        self, guild_id: int, who: Someone | str, role: FakeRole | int, *, add: bool
    ) -> None:
        guild = self.guilds[guild_id]
        member = self.member(guild_id, who)
        role_id = role.id if isinstance(role, FakeRole) else role
        if guild.role(role_id) is None:
            raise KeyError(role_id)
        with self._access_change(guild):
            if add and role_id not in member.role_ids:
                member.role_ids.append(role_id)
            elif not add and role_id in member.role_ids:
                member.role_ids.remove(role_id)
            self.gateway.member_updated(guild, member)

    # ---------------------------------------------------------------- permission overwrites

    def set_overwrite(
        self,
        channel_id: int,
        target: FakeRole | Someone,
        *,
        allow: int = 0,
        deny: int = 0,
    ) -> Overwrite:
        """Set the channel's overwrite for a role (``FakeRole``) or a member (user, bot, member;
        a bare int is a role if the guild has that role, else a member). CHANNEL_UPDATE goes to
        the guild; THREAD_LIST_SYNC to bots that can now see the channel's threads."""
        guild, channel = self._guild_channel(channel_id)
        target_id, kind = self._overwrite_target(guild, target)
        overwrite = Overwrite(id=target_id, type=kind, allow=int(allow), deny=int(deny))
        with self._access_change(guild):
            channel.set_overwrite(overwrite, target_id)
            self._channel_updated(guild, channel)
        return overwrite

    def remove_overwrite(self, channel_id: int, target: FakeRole | Someone) -> None:
        guild, channel = self._guild_channel(channel_id)
        target_id, _ = self._overwrite_target(guild, target)
        with self._access_change(guild):
            channel.set_overwrite(None, target_id)
            self._channel_updated(guild, channel)

    def sync_with_category(self, channel_id: int) -> None:
        """Copy the category's overwrites onto the channel ("synced" in Discord's client)."""
        guild, channel = self._guild_channel(channel_id)
        parent = guild.channel(channel.parent_id) if channel.parent_id is not None else None
        if parent is None:
            raise ValueError(f"channel {channel_id} is not in a category")
        with self._access_change(guild):
            channel.permission_overwrites = list(parent.permission_overwrites)
            self._channel_updated(guild, channel)

    def permissions_in(self, channel_id: int, who: Someone | str) -> Permission:
        """What a member (or a bot, by token) may do in a channel or thread: the truth the
        product's own computation is checked against."""
        guild, channel = self._guild_channel(channel_id, threads=True)
        if isinstance(who, str):
            user_id = self.bots[who].id if who in self.bots else self.member(guild.id, who).user.id
        else:
            user_id = user_id_of(who)
        return Permission(guild.permissions_in(channel, user_id))

    def _guild_channel(
        self, channel_id: int, *, threads: bool = False
    ) -> tuple[FakeGuild, FakeChannel]:
        found = self.state.locate(channel_id)
        if found is None or (found[1].is_thread and not threads):
            raise KeyError(f"no guild channel {channel_id}")
        return found

    @staticmethod
    def _overwrite_target(guild: FakeGuild, target: FakeRole | Someone) -> tuple[int, int]:
        if isinstance(target, FakeRole):
            return target.id, ROLE
        if isinstance(target, int) and guild.role(target) is not None:
            return target, ROLE
        return user_id_of(target), MEMBER

    def _channel_updated(self, guild: FakeGuild, channel: FakeChannel) -> None:
        self.gateway.dispatch_to_guild(guild, "CHANNEL_UPDATE", channel.payload())

    @contextlib.contextmanager
    def _access_change(self, guild: FakeGuild) -> Iterator[None]:
        """Around a permission change: tell bots about the channels they can now see."""
        before = self.gateway.visible_channels(guild)
        yield
        self.gateway.access_changed(guild, before)
