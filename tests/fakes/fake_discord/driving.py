"""Driving the fake: people post messages and start threads, bots join and leave guilds,
connections drop, and any gateway event can be sent as is.

A mixin of :class:`~.server.FakeDiscord`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from .gateway import CloseCode, Op
from .gateway_server import GatewayServer
from .models import (
    JSON,
    MESSAGEABLE_CHANNEL_TYPES,
    THREAD_PARENT_TYPES,
    ChannelType,
    FakeAttachment,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMessage,
    FakeThread,
    FakeUser,
    MessageType,
)
from .records import Changes
from .state import FakeState, Someone


class Driver:
    state: FakeState
    gateway: GatewayServer
    changes: Changes
    bots: dict[str, FakeBot]
    guilds: dict[int, FakeGuild]

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

        - ``from_message``: the thread hangs off that message and has its id (the message gets
          a ``thread``: MESSAGE_UPDATE);
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
        if private and (parent.type != ChannelType.GUILD_TEXT or from_message is not None):
            raise ValueError("private threads live in text channels and start without a message")
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
            id=starter.id if starter is not None else self.state.new_id(),
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
            thread.members[self.state.person_id(guild, who)] = now
        self.state.register_channel(guild, thread)
        self.gateway.thread_created(guild, thread)
        if starter is not None:
            starter.thread = thread  # it now links to its thread: MESSAGE_UPDATE
            self.gateway.message_created(starter, event="MESSAGE_UPDATE")
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
        found = self.state.locate(thread_id)
        thread = found[1] if found is not None else None
        if found is None or not isinstance(thread, FakeThread):
            raise KeyError(f"{thread_id} is not a thread")
        guild = found[0]
        user_id = self.state.person_id(guild, who)
        if user_id not in thread.members:
            thread.members[user_id] = dt.datetime.now(dt.UTC)
            self.gateway.thread_members_added(guild, thread, [user_id])
        await self.flush()

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
            author = FakeUser(id=self.state.new_id(), username=author_name, bot=True)
        else:
            author = self.state.user_for(author_name, author_id, author_is_bot)
            self.state.ensure_member(guild, author)
        message = self._new_message(
            guild, channel, author, content, type=message_type, webhook=webhook
        )
        message.attachments = [
            FakeAttachment(id=self.state.new_id(), filename=a) for a in attachments
        ]
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
            id=message_id or self.state.new_id(),
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
            channel_id = self.state.new_id()
            self.state.dm_channels[channel_id] = (bot.id, author.id)
            self.state.history[channel_id] = []
        message = FakeMessage(
            id=self.state.new_id(),
            channel_id=channel_id,
            guild_id=None,
            author=author,
            content=content,
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
            id=self.state.new_id(),
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
