"""The fake Discord's facade: one aiohttp app serving the REST API v10 and the gateway.

It runs in the test's event loop on an ephemeral port. The real discord.py client and the product's
own REST client talk to it exactly as they would talk to Discord; tests build the world (guilds,
channels, roles, overwrites, people, threads), drive it (post a message as a user, inject failures,
drop connections) and read what bots did (messages sent, typing, nickname changes, 429s) through
the attributes and coroutines of :class:`FakeDiscord`. The work is done by :mod:`.state` (the
world), :mod:`.rest`, :mod:`.gateway_server` and :mod:`.ratelimit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator, Sequence

from aiohttp import web

from .control import add_control_routes
from .gateway import CloseCode, GatewayConnection, GatewaySession, Op
from .gateway_server import GatewayServer
from .models import (
    EVERYONE_PERMISSIONS,
    JSON,
    MESSAGEABLE_CHANNEL_TYPES,
    THREAD_PARENT_TYPES,
    ChannelType,
    FakeAttachment,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeThread,
    FakeUser,
    MessageType,
)
from .permissions import MEMBER, ROLE, Overwrite, Permission
from .ratelimit import Limit, RateLimiter, RateLimits
from .records import (
    Changes,
    FailureRule,
    GatewayLogin,
    NicknameChange,
    RateLimitHit,
    RecordedRequest,
    Records,
    TypingCall,
)
from .rest import API_PREFIX, HistoryWithoutPermission, RestApi
from .state import FakeState

__all__ = [
    "FailureRule",
    "FakeDiscord",
    "GatewayLogin",
    "NicknameChange",
    "RateLimitHit",
    "RecordedRequest",
    "TypingCall",
]

#: Who a helper acts on: a user or bot object, a member, or a user id.
Someone = FakeUser | FakeBot | FakeMember | int


class FakeDiscord:
    """A local Discord for tests. Use ``async with FakeDiscord() as fake:`` (or start/stop)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_ms: int = 41250,
        zlib_chunk_size: int | None = None,
        history_limit: int | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = FakeState(history_limit=history_limit)
        self.records = Records()
        self.changes = Changes()
        self.gateway = GatewayServer(
            self.state,
            self.records,
            self.changes,
            heartbeat_interval_ms=heartbeat_interval_ms,
            zlib_chunk_size=zlib_chunk_size,
        )
        self.limiter = RateLimiter(rate_limits or RateLimits.generous())
        self._stopping = asyncio.Event()
        self.rest = RestApi(
            self.state,
            self.gateway,
            self.records,
            self.changes,
            self.limiter,
            self._stopping,
            self._bot_left,
        )
        # The world and the records, shared with the REST API and the gateway.
        self.bots = self.state.bots
        self.users = self.state.users
        self.guilds = self.state.guilds
        self.failures = self.records.failures
        self.requests = self.records.requests
        self.sent_messages = self.records.sent_messages
        self.typing_calls = self.records.typing_calls
        self.nickname_changes = self.records.nickname_changes
        self.logins = self.records.logins
        self.closed_connections = self.records.closed_connections
        #: Every 429 the fake answered (rate limit buckets and injected ones).
        self.rate_limit_hits = self.records.rate_limit_hits
        self._consumed: set[int] = set()
        self._runner: web.AppRunner | None = None
        self._base_http = ""

    # ---------------------------------------------------------------- settings

    @property
    def history_limit(self) -> int | None:
        """When set, a channel's history is cut back to its newest ``history_limit`` messages
        whenever a message makes it twice as long (load tests post for minutes)."""
        return self.state.history_limit

    @history_limit.setter
    def history_limit(self, value: int | None) -> None:
        self.state.history_limit = value

    @property
    def heartbeat_interval_ms(self) -> int:
        """HELLO's heartbeat interval; tests that want to see heartbeats lower it."""
        return self.gateway.heartbeat_interval_ms

    @heartbeat_interval_ms.setter
    def heartbeat_interval_ms(self, value: int) -> None:
        self.gateway.heartbeat_interval_ms = value

    @property
    def zlib_chunk_size(self) -> int | None:
        """When set, each zlib-compressed gateway message is split over frames of this size."""
        return self.gateway.zlib_chunk_size

    @zlib_chunk_size.setter
    def zlib_chunk_size(self, value: int | None) -> None:
        self.gateway.zlib_chunk_size = value

    @property
    def ack_heartbeats(self) -> bool:
        """Answer heartbeats with HEARTBEAT_ACK (switch off to make a client think the link
        died)."""
        return self.gateway.ack_heartbeats

    @ack_heartbeats.setter
    def ack_heartbeats(self, value: bool) -> None:
        self.gateway.ack_heartbeats = value

    @property
    def rate_limits(self) -> RateLimits:
        """The REST rate limits (``RateLimits.generous()`` unless set); setting them resets
        every bucket."""
        return self.limiter.limits

    @rate_limits.setter
    def rate_limits(self, value: RateLimits) -> None:
        self.limiter.limits = value
        self.limiter.reset()

    def set_rate_limit(self, route: str, limit: int, window: float) -> None:
        """Limit one route, e.g. ``set_rate_limit("POST /channels/{channel_id}/messages", 1,
        0.5)``: one message per half second per channel."""
        self.limiter.limits.routes[route] = Limit(limit, window)
        self.limiter.reset()

    @property
    def history_without_permission(self) -> HistoryWithoutPermission:
        """``"forbidden"`` (403 50013, the default) or ``"empty"`` (an empty list): how history
        answers a bot without READ_MESSAGE_HISTORY."""
        return self.rest.history_without_permission

    @history_without_permission.setter
    def history_without_permission(self, value: HistoryWithoutPermission) -> None:
        self.rest.history_without_permission = value

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self.rest.middleware])
        self.gateway.add_routes(app)
        self.rest.add_routes(app)
        add_control_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._base_http = f"http://{self.host}:{self.port}"
        self.gateway.resume_url = self.resume_gateway_url
        self.rest.gateway_url = self.gateway_url
        return self

    async def stop(self) -> None:
        self._stopping.set()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the server itself (control endpoints live under /_fake)."""
        return self._base_http

    @property
    def api_url(self) -> str:
        """The REST base, the value for ``DISCORD_API_URL`` / ``discord.http.Route.BASE``."""
        return self._base_http + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The gateway: ``DISCORD_GATEWAY_URL`` / ``DiscordWebSocket.DEFAULT_GATEWAY``."""
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway-resume"

    @contextlib.contextmanager
    def patch_discord_py(self) -> Iterator[None]:
        """Point discord.py's REST base and gateway at this fake for the ``with`` block."""
        from .discord_py import discord_py_pointed_at

        with discord_py_pointed_at(self.api_url, self.gateway_url):
            yield

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
        return guild.members[_user_id(who)]

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
        user = self.user_named(who) if isinstance(who, str) else self.users[_user_id(who)]
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
            user_id = _user_id(who)
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
        return _user_id(target), MEMBER

    def _channel_updated(self, guild: FakeGuild, channel: FakeChannel) -> None:
        self.gateway.dispatch_to_guild(guild, "CHANNEL_UPDATE", channel.payload())

    @contextlib.contextmanager
    def _access_change(self, guild: FakeGuild) -> Iterator[None]:
        """Around a permission change: tell bots about the channels they can now see."""
        before = self.gateway.visible_channels(guild)
        yield
        self.gateway.access_changed(guild, before)

    # ---------------------------------------------------------------- threads

    async def create_thread(
        self,
        guild_id: int,
        channel_id: int,
        name: str,
        *,
        author: str = "someone",
        private: bool = False,
        from_message: int | None = None,
        content: str | None = None,
        members: Iterable[Someone | str] = (),
    ) -> FakeThread:
        """A person starts a thread in a text, announcement or forum channel.

        - ``from_message``: the thread hangs off that message and has its id;
        - in a forum channel it is a post: its first message (``content``, by default the name)
          has the thread's id and is posted into it;
        - otherwise a public thread leaves a THREAD_CREATED notice in the parent channel;
        - ``private=True`` (text channels only) makes a private thread, visible only to its
          members (``members``: users, bots, ids or usernames) and to MANAGE_THREADS.

        Bots that can see it get THREAD_CREATE (``newly_created``). Post into it with
        :meth:`post_user_message` and the thread's id as channel.
        """
        guild = self.guilds[guild_id]
        parent = guild.channel(channel_id)
        if parent is None or parent.type not in THREAD_PARENT_TYPES:
            raise ValueError(f"channel {channel_id} cannot hold threads")
        in_forum = parent.type == ChannelType.GUILD_FORUM
        if private and parent.type != ChannelType.GUILD_TEXT:
            raise ValueError("private threads live in text channels")
        kind = ChannelType.PRIVATE_THREAD if private else THREAD_PARENT_TYPES[parent.type]
        owner = self.state.user_for(author, None, False)
        self.state.ensure_member(guild, owner)
        starter: FakeMessage | None = None
        if from_message is not None:
            starter = self.state.messages.get(from_message)
            if starter is None or starter.channel_id != parent.id:
                raise KeyError(f"message {from_message} is not in channel {channel_id}")
        now = dt.datetime.now(dt.UTC)
        thread = FakeThread(
            id=starter.id if starter is not None else self.new_id(),
            guild_id=guild.id,
            name=name,
            type=kind,
            parent_id=parent.id,
            owner_id=owner.id,
            members={owner.id: now},
            in_forum=in_forum,
            created_at=now,
        )
        for who in members:
            thread.members[self._someone_id(guild, who)] = now
        self.state.register_channel(guild, thread)
        if starter is not None:
            starter.thread = thread
        self.gateway.thread_created(guild, thread)
        if in_forum:
            opening = self._new_message(guild, thread, owner, content or name, message_id=thread.id)
            parent.last_message_id = thread.id
            self._publish(opening)
        elif starter is None and not private:
            notice = self._new_message(guild, parent, owner, name, type=MessageType.THREAD_CREATED)
            notice.reference_channel_id = thread.id
            self._publish(notice)
        await self.flush()
        return thread

    async def add_thread_member(self, thread_id: int, who: Someone | str) -> None:
        """Add someone to a thread (THREAD_MEMBERS_UPDATE; a bot added to a private thread
        gets the thread first)."""
        guild, thread = self._guild_channel(thread_id, threads=True)
        if not isinstance(thread, FakeThread):
            raise KeyError(f"{thread_id} is not a thread")
        user_id = self._someone_id(guild, who)
        if user_id not in thread.members:
            thread.members[user_id] = dt.datetime.now(dt.UTC)
            self.gateway.thread_members_added(guild, thread, [user_id])
        await self.flush()

    def _someone_id(self, guild: FakeGuild, who: Someone | str) -> int:
        if isinstance(who, str):
            user = self.state.user_for(who, None, False)
            self.state.ensure_member(guild, user)
            return user.id
        return _user_id(who)

    # ---------------------------------------------------------------- failure injection

    def add_failure(
        self,
        path: str = "*",
        *,
        method: str | None = None,
        status: int | None = 500,
        body: JSON | None = None,
        delay: float = 0.0,
        token: str | None = None,
        times: int | None = None,
        skip: int = 0,
        headers: dict[str, str] | None = None,
    ) -> FailureRule:
        """Make matching REST requests fail (see :class:`FailureRule`)."""
        rule = FailureRule(
            path=path,
            method=method,
            status=status,
            body=body,
            delay=delay,
            token=token,
            times=times,
            skip=skip,
            headers=dict(headers or {}),
        )
        self.failures.append(rule)
        return rule

    def hang(
        self, path: str = "*", *, method: str | None = None, token: str | None = None
    ) -> FailureRule:
        """Matching requests never answer (until the fake stops): for client timeouts."""
        return self.add_failure(path, method=method, status=503, delay=math.inf, token=token)

    def rate_limit(
        self, path: str, *, retry_after: float = 0.05, method: str | None = None, times: int = 1
    ) -> FailureRule:
        """Answer 429 as Discord does (``retry_after`` body, ``Retry-After`` and ``Via``), whatever
        the bucket says (for a real bucket, see :meth:`set_rate_limit`)."""
        from .ratelimit import too_many_requests_headers

        return self.add_failure(
            path,
            method=method,
            status=429,
            times=times,
            body={
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": False,
                "code": 0,
            },
            headers=too_many_requests_headers(retry_after),
        )

    def clear_failures(self) -> None:
        self.failures.clear()

    # ---------------------------------------------------------------- driving the gateway

    async def post_user_message(
        self,
        guild_id: int,
        channel_id: int,
        author_name: str,
        content: str,
        *,
        author_id: int | None = None,
        author_is_bot: bool = False,
        webhook: bool = False,
        message_type: int = 0,
        attachments: Sequence[str] = (),
        reply_to: int | None = None,
        mention_author: bool = True,
    ) -> FakeMessage:
        """A person (or another bot, a webhook, a system message) posts in a guild channel or
        thread.

        ``<@id>`` in the content mentions that user; ``reply_to`` makes it a reply (type 19, with
        ``message_reference`` and ``referenced_message``) that also mentions the replied-to
        author unless ``mention_author=False``. The message joins the channel's history and
        MESSAGE_CREATE goes to every gateway session of every bot in that guild that can see the
        channel (sent now if connected, kept for RESUME otherwise). Returns once the events have
        been written to the connected sockets.
        """
        message = self.dispatch_user_message(
            guild_id,
            channel_id,
            author_name,
            content,
            author_id=author_id,
            author_is_bot=author_is_bot,
            webhook=webhook,
            message_type=message_type,
            attachments=attachments,
            reply_to=reply_to,
            mention_author=mention_author,
        )
        await self.flush()
        return message

    def dispatch_user_message(
        self,
        guild_id: int,
        channel_id: int,
        author_name: str,
        content: str,
        *,
        author_id: int | None = None,
        author_is_bot: bool = False,
        webhook: bool = False,
        message_type: int = 0,
        attachments: Sequence[str] = (),
        reply_to: int | None = None,
        mention_author: bool = True,
    ) -> FakeMessage:
        """:meth:`post_user_message` without waiting for the sockets: the events are queued on
        the connections when this returns (for load generators that post faster than a flush)."""
        guild = self.guilds[guild_id]
        channel = guild.channel(channel_id)
        if channel is None:
            raise KeyError(f"channel {channel_id} is not in guild {guild_id}")
        if channel.type not in MESSAGEABLE_CHANNEL_TYPES:
            raise ValueError(f"#{channel.name} cannot hold messages (type {int(channel.type)})")
        if webhook:
            author = FakeUser(id=self.new_id(), username=author_name, bot=True)
        else:
            author = self.state.user_for(author_name, author_id, author_is_bot)
            self.state.ensure_member(guild, author)
        message = self._new_message(
            guild, channel, author, content, type=message_type, webhook=webhook
        )
        message.attachments = [FakeAttachment(id=self.new_id(), filename=a) for a in attachments]
        if reply_to is not None:
            message.reference_id = reply_to
            if message_type == 0:
                message.type = MessageType.REPLY
            replied = self.state.messages.get(reply_to)
            replied_id = replied.author.id if replied is not None else author.id
            if mention_author and replied_id not in (author.id, *message.mention_ids):
                message.mention_ids.append(replied_id)
        if isinstance(channel, FakeThread) and author.id not in channel.members and not webhook:
            channel.members[author.id] = message.timestamp
            self.gateway.thread_members_added(guild, channel, [author.id])
        self._publish(message)
        return message

    def _new_message(
        self,
        guild: FakeGuild,
        channel: FakeChannel,
        author: FakeUser,
        content: str,
        *,
        type: int = 0,
        webhook: bool = False,
        message_id: int | None = None,
    ) -> FakeMessage:
        return FakeMessage(
            id=message_id or self.new_id(),
            channel_id=channel.id,
            guild_id=guild.id,
            author=author,
            content=content,
            type=type,
            mention_ids=self.state.mentions_in(content),
            webhook_id=author.id if webhook else None,
        )

    def _publish(self, message: FakeMessage) -> None:
        self.state.store(message)
        self.gateway.message_created(message)
        self.changes.notify()

    async def post_direct_message(self, token: str, author_name: str, content: str) -> FakeMessage:
        """A person sends the bot a direct message (DMs need the DIRECT_MESSAGES intent)."""
        bot = self.bots[token]
        author = self.state.user_for(author_name, None, False)
        channel_id = next(
            (cid for cid, pair in self.state.dm_channels.items() if pair == (bot.id, author.id)),
            None,
        )
        if channel_id is None:
            channel_id = self.new_id()
            self.state.dm_channels[channel_id] = (bot.id, author.id)
            self.state.history[channel_id] = []
        message = FakeMessage(
            id=self.new_id(), channel_id=channel_id, guild_id=None, author=author, content=content
        )
        self._publish(message)
        await self.flush()
        return message

    async def add_bot_to_guild(self, guild_id: int, token: str) -> None:
        """The bot is invited: it becomes a member and its sessions get GUILD_CREATE."""
        guild = self.guilds[guild_id]
        bot = self.bots[token]
        if bot.id in guild.members:
            return
        self.state.join(guild, bot)
        for session in self.gateway.bot_sessions(bot):
            if session.covers_guild(guild.id):
                session.dispatch("GUILD_CREATE", guild.gateway_payload(bot.id, initial=False))
        await self.flush()

    async def remove_bot_from_guild(self, guild_id: int, token: str) -> None:
        """The bot is kicked: its sessions get GUILD_DELETE (without ``unavailable``)."""
        await self._bot_left(self.guilds[guild_id], self.bots[token])

    async def _bot_left(self, guild: FakeGuild, bot: FakeBot) -> None:
        if guild.members.pop(bot.id, None) is None:
            return
        guild.roles = [r for r in guild.roles if r.bot_id != bot.id]
        for session in self.gateway.bot_sessions(bot):
            if session.covers_guild(guild.id):
                session.dispatch("GUILD_DELETE", {"id": str(guild.id)})
        await self.flush()

    async def send_event(self, token: str, event: str, data: JSON) -> int:
        """Dispatch any event, as is, to the bot's sessions (numbered and kept for RESUME).
        Returns how many sessions got it."""
        sessions = self.gateway.bot_sessions(self.bots[token])
        for session in sessions:
            session.dispatch(event, data)
        await self.flush()
        return len(sessions)

    async def send_parser_crash(self, token: str, guild_id: int) -> int:
        """A CHANNEL_CREATE for a voice channel without ``bitrate``: discord.py's parser raises
        KeyError and the client's ``start()`` ends with it (crash-recovery tests). The channel
        is not added to the guild."""
        channel = FakeChannel(
            id=self.new_id(),
            guild_id=guild_id,
            name="broken-voice",
            type=ChannelType.GUILD_VOICE,
            omit=frozenset({"bitrate"}),
        )
        return await self.send_event(token, "CHANNEL_CREATE", channel.payload())

    async def drop_connections(self, token: str | None = None) -> int:
        """Cut the TCP connections (no close frame) of one bot or all; sessions stay resumable.

        Returns how many connections were dropped."""
        conns = self.gateway.live_connections(token)
        for conn in conns:
            conn.abort()
        await self.gateway.flush(conns)
        return len(conns)

    async def close_connections(
        self,
        token: str | None = None,
        *,
        code: int = CloseCode.UNKNOWN_ERROR,
        reason: str = "",
        invalidate_session: bool = False,
    ) -> int:
        """Close gateway connections with ``code`` (4000: discord.py resumes; 4004: it stops)."""
        conns = self.gateway.live_connections(token)
        for conn in conns:
            if invalidate_session and conn.session is not None:
                conn.session.invalidated = True
            conn.close(code, reason)
        await self.gateway.flush(conns)
        return len(conns)

    async def send_reconnect(self, token: str | None = None) -> int:
        """Send op 7 RECONNECT: the client should close and RESUME."""
        conns = self.gateway.live_connections(token)
        for conn in conns:
            conn.send({"op": Op.RECONNECT, "d": None, "s": None, "t": None})
        await self.gateway.flush(conns)
        return len(conns)

    async def invalidate_sessions(
        self, token: str | None = None, *, resumable: bool = False
    ) -> int:
        """Send op 9 INVALID_SESSION; with ``resumable=False`` the sessions are forgotten."""
        conns = self.gateway.live_connections(token)
        for conn in conns:
            if not resumable and conn.session is not None:
                conn.session.invalidated = True
            conn.send({"op": Op.INVALID_SESSION, "d": resumable, "s": None, "t": None})
        await self.gateway.flush(conns)
        return len(conns)

    async def flush(self) -> None:
        """Wait until everything queued for the connected sockets has been written."""
        await self.gateway.flush()

    # ---------------------------------------------------------------- reading what happened

    def connections(self, token: str | None = None) -> list[GatewayConnection]:
        """Open gateway connections (of one bot, or all); each counts its ``heartbeats``."""
        return self.gateway.live_connections(token)

    def connection_count(self, token: str | None = None) -> int:
        return len(self.gateway.live_connections(token))

    def is_online(self, token: str) -> bool:
        """A connection of this bot has been sent READY (or RESUMED) and its guilds."""
        bot = self.bots[token]
        return any(
            c.online and c.session and c.session.bot is bot for c in self.gateway.live_connections()
        )

    def sessions_of(self, token: str) -> list[GatewaySession]:
        return self.gateway.bot_sessions(self.bots[token])

    def history(self, channel_id: int) -> list[FakeMessage]:
        """The channel's messages, oldest first."""
        return list(self.state.history.get(channel_id, []))

    def messages_sent_to(self, channel_id: int) -> list[FakeMessage]:
        return [m for m in self.sent_messages if m.channel_id == channel_id]

    async def wait_for_online(self, token: str, timeout: float = 5.0) -> None:
        await self.changes.wait(lambda: self.is_online(token), timeout, f"bot {token[:4]}… online")

    async def wait_for_bot_message(
        self,
        channel_id: int | None = None,
        timeout: float = 5.0,
        *,
        predicate: Callable[[FakeMessage], bool] | None = None,
    ) -> FakeMessage:
        """The oldest bot-sent message (in that channel, matching ``predicate``) that no earlier
        call returned; waits up to ``timeout`` seconds for one."""
        found: list[FakeMessage] = []

        def ready() -> bool:
            for message in self.sent_messages:
                if message.id in self._consumed:
                    continue
                if channel_id is not None and message.channel_id != channel_id:
                    continue
                if predicate is not None and not predicate(message):
                    continue
                found.append(message)
                return True
            return False

        await self.changes.wait(ready, timeout, f"a bot message in channel {channel_id}")
        self._consumed.add(found[0].id)
        return found[0]

    async def wait_for_typing(self, channel_id: int, timeout: float = 5.0) -> TypingCall:
        await self.changes.wait(
            lambda: any(t.channel_id == channel_id for t in self.typing_calls),
            timeout,
            f"typing in channel {channel_id}",
        )
        return next(t for t in self.typing_calls if t.channel_id == channel_id)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked whenever the fake records something)."""
        await self.changes.wait(predicate, timeout, "condition")


def _user_id(who: Someone) -> int:
    if isinstance(who, int):
        return who
    if isinstance(who, FakeMember):
        return who.user.id
    return who.id
