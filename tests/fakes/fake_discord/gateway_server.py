"""The fake gateway: the WebSocket endpoint (HELLO, IDENTIFY, RESUME, heartbeats, member
requests) and the routing of events to the sessions that Discord would send them to.

Routing follows Discord: guild events go to the sessions of the bots in that guild whose shard
covers it and whose intents ask for them; a message, a typing event or a thread goes only to bots
that can VIEW_CHANNEL where it happened; content is blanked for a bot without the message content
intent. Every dispatch is numbered and kept by its session, so a RESUME replays what was missed.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable

from aiohttp import WSMsgType, web

from .gateway import CloseCode, GatewayConnection, GatewaySession, Op, parse_payload
from .models import (
    ALL_INTENTS,
    JSON,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeThread,
    Intent,
)
from .permissions import Permission
from .records import Changes, GatewayLogin, Records
from .state import FakeState

_log = logging.getLogger(__name__)

GATEWAY_PATH = "/gateway"
RESUME_GATEWAY_PATH = "/gateway-resume"
PRIVILEGED_INTENTS = Intent.MESSAGE_CONTENT | Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES

#: Event data: one payload for every session, or one built per session.
EventData = JSON | Callable[[GatewaySession], JSON]


class GatewayServer:
    def __init__(
        self,
        state: FakeState,
        records: Records,
        changes: Changes,
        *,
        heartbeat_interval_ms: int,
        zlib_chunk_size: int | None,
    ) -> None:
        self.state = state
        self.records = records
        self.changes = changes
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.zlib_chunk_size = zlib_chunk_size
        self.ack_heartbeats = True
        #: Set by the facade once it listens: READY's ``resume_gateway_url``.
        self.resume_url = ""
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[GatewayConnection] = set()

    def add_routes(self, app: web.Application) -> None:
        for path in (GATEWAY_PATH, RESUME_GATEWAY_PATH):
            app.router.add_get(path, self._handler)
            app.router.add_get(path + "/", self._handler)

    # ---------------------------------------------------------------- routing events

    def guild_sessions(self, guild: FakeGuild) -> list[GatewaySession]:
        """Live sessions of the bots in ``guild`` whose shard covers it."""
        return [
            s
            for s in self.sessions.values()
            if not s.invalidated and s.bot.id in guild.members and s.covers_guild(guild.id)
        ]

    def bot_sessions(self, bot: FakeBot) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.bot is bot and not s.invalidated]

    def dispatch_to_guild(
        self,
        guild: FakeGuild,
        event: str,
        data: EventData,
        *,
        intent: int = Intent.GUILDS,
        visible_in: FakeChannel | None = None,
        only: Callable[[GatewaySession], bool] | None = None,
    ) -> None:
        """Dispatch to the guild's sessions that have ``intent`` (0: any), can see ``visible_in``
        and pass ``only``."""
        for session in self.guild_sessions(guild):
            if intent and not session.has_intent(intent):
                continue
            if visible_in is not None and not guild.can(
                session.bot.id, visible_in, Permission.VIEW_CHANNEL
            ):
                continue
            if only is not None and not only(session):
                continue
            session.dispatch(event, data(session) if callable(data) else dict(data))

    def message_created(self, message: FakeMessage, event: str = "MESSAGE_CREATE") -> None:
        """MESSAGE_CREATE (or ``event``: MESSAGE_UPDATE) to every bot that can see the channel
        (DMs: the bot in the DM)."""
        if message.guild_id is None:
            bot_id, _ = self.state.dm_channels[message.channel_id]
            bot = self.state.bot(bot_id)
            for session in self.bot_sessions(bot):
                if session.has_intent(Intent.DIRECT_MESSAGES):
                    session.dispatch(event, self._message_event(message, session))
            return
        found = self.state.locate(message.channel_id)
        if found is None:
            return
        guild, channel = found
        self.dispatch_to_guild(
            guild,
            event,
            lambda session: self._message_event(message, session),
            intent=Intent.GUILD_MESSAGES,
            visible_in=channel,
        )

    def _message_event(self, message: FakeMessage, session: GatewaySession) -> JSON:
        return self.state.message_payload(
            message, session.bot, intents=session.intents, gateway=True
        )

    def member_added(self, guild: FakeGuild, member: FakeMember) -> None:
        """GUILD_MEMBER_ADD: to bots with the GUILD_MEMBERS intent."""
        data = member.payload()
        data["guild_id"] = str(guild.id)
        self.dispatch_to_guild(guild, "GUILD_MEMBER_ADD", data, intent=Intent.GUILD_MEMBERS)

    def member_updated(self, guild: FakeGuild, member: FakeMember) -> None:
        """GUILD_MEMBER_UPDATE: to the member's own sessions, others only with GUILD_MEMBERS."""
        data = member.payload()
        data["guild_id"] = str(guild.id)
        self.dispatch_to_guild(
            guild,
            "GUILD_MEMBER_UPDATE",
            data,
            intent=0,
            only=lambda s: s.bot.id == member.user.id or s.has_intent(Intent.GUILD_MEMBERS),
        )

    def thread_created(self, guild: FakeGuild, thread: FakeThread) -> None:
        """THREAD_CREATE (``newly_created``) to every bot that can see the new thread."""

        def data(session: GatewaySession) -> JSON:
            payload = thread.payload(member_of=session.bot.id)
            payload["newly_created"] = True
            return payload

        self.dispatch_to_guild(guild, "THREAD_CREATE", data, visible_in=thread)

    def thread_members_added(
        self, guild: FakeGuild, thread: FakeThread, user_ids: Iterable[int]
    ) -> None:
        """THREAD_MEMBERS_UPDATE: to bots with GUILD_MEMBERS, and to a bot that was added; a
        bot added to a private thread it could not see first gets the thread (THREAD_CREATE)."""
        added = list(user_ids)
        data: JSON = {
            "id": str(thread.id),
            "guild_id": str(guild.id),
            "member_count": min(len(thread.members), 50),
            "added_members": [thread.member_payload(u) for u in added],
        }
        for session in self.guild_sessions(guild):
            bot_id = session.bot.id
            if not session.has_intent(Intent.GUILDS):
                continue
            if not guild.can(bot_id, thread, Permission.VIEW_CHANNEL):
                continue
            if bot_id in added and thread.private:
                session.dispatch("THREAD_CREATE", thread.payload(member_of=bot_id))
            if bot_id in added or session.has_intent(Intent.GUILD_MEMBERS):
                session.dispatch("THREAD_MEMBERS_UPDATE", dict(data))

    def access_changed(self, guild: FakeGuild, before: dict[int, set[int]]) -> None:
        """THREAD_LIST_SYNC for the channels a bot can now see and could not before.

        ``before`` maps each bot id to the channel ids it could see before the change."""
        for session in self.guild_sessions(guild):
            if not session.has_intent(Intent.GUILDS):
                continue
            bot_id = session.bot.id
            seen_before = before.get(bot_id, set())
            gained = [
                c.id
                for c in guild.channels
                if c.id not in seen_before and guild.can(bot_id, c, Permission.VIEW_CHANNEL)
            ]
            threads = [t for t in guild.visible_threads(bot_id) if t.parent_id in gained]
            if not threads:
                continue
            session.dispatch(
                "THREAD_LIST_SYNC",
                {
                    "guild_id": str(guild.id),
                    "channel_ids": [str(c) for c in gained],
                    "threads": [t.payload() for t in threads],
                    "members": [t.member_payload(bot_id) for t in threads if bot_id in t.members],
                },
            )

    def visible_channels(self, guild: FakeGuild) -> dict[int, set[int]]:
        """For each bot in the guild, the channels it can see (see :meth:`access_changed`)."""
        return {
            bot_id: {c.id for c in guild.channels if guild.can(bot_id, c, Permission.VIEW_CHANNEL)}
            for bot_id in (b.id for b in self.state.bots.values() if b.id in guild.members)
        }

    # ---------------------------------------------------------------- connections

    def live_connections(self, token: str | None = None) -> list[GatewayConnection]:
        conns = [c for c in self.connections if not c.closed]
        if token is None:
            return conns
        bot = self.state.bots[token]
        return [c for c in conns if c.session is not None and c.session.bot is bot]

    async def flush(self, conns: Iterable[GatewayConnection] | None = None) -> None:
        for conn in list(self.connections if conns is None else conns):
            await conn.flush()

    def revoke(self, bot: FakeBot) -> None:
        """The token was reset: sessions end and live connections close with 4004."""
        for session in list(self.sessions.values()):
            if session.bot is bot:
                session.invalidated = True
                if session.connection is not None:
                    session.connection.close(
                        CloseCode.AUTHENTICATION_FAILED, "Authentication failed."
                    )

    async def close_all(self) -> None:
        for conn in list(self.connections):
            conn.close(1001, "fake Discord stopping")
            await conn.flush(timeout=1.0)

    # ---------------------------------------------------------------- the WebSocket

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024, autoping=True)
        await ws.prepare(request)
        # zlib-stream is what discord.py asks for unless zstandard is installed; for any other
        # value (zstd-stream) the fake sends plain text frames, which discord.py also accepts.
        compress = request.query.get("compress")
        conn = GatewayConnection(
            ws,
            request,
            zlib_stream=compress == "zlib-stream",
            zlib_chunk_size=self.zlib_chunk_size,
        )
        self.connections.add(conn)
        version = request.query.get("v")
        encoding = request.query.get("encoding", "json")
        try:
            if version is not None and version not in ("9", "10"):
                conn.close(CloseCode.INVALID_API_VERSION, "Invalid API version.")
            elif encoding != "json":
                conn.close(CloseCode.DECODE_ERROR, "Error while decoding payload.")
            else:
                conn.send(
                    {
                        "op": Op.HELLO,
                        "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                        "s": None,
                        "t": None,
                    }
                )
            async for msg in ws:
                if conn.closed:
                    break
                if msg.type == WSMsgType.TEXT:
                    self._on_payload(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.close(CloseCode.DECODE_ERROR, "Error while decoding payload.")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await self._on_connection_end(conn)
        return ws

    async def _on_connection_end(self, conn: GatewayConnection) -> None:
        with contextlib.suppress(Exception):
            await conn.flush(timeout=1.0)
        conn.finish()
        self.connections.discard(conn)
        client_code = conn.ws.close_code if conn.server_close_code is None else None
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            # A client that closes with 1000/1001 ends its session; anything else may RESUME.
            if client_code in (1000, 1001):
                session.invalidated = True
            if session.invalidated:
                self.sessions.pop(session.id, None)
        bot = session.bot if session is not None else conn.identified_bot
        self.records.closed_connections.append(
            (bot.id if bot is not None else None, conn.server_close_code or client_code)
        )
        self.changes.notify()

    def _on_payload(self, conn: GatewayConnection, raw: str) -> None:
        payload = parse_payload(raw)
        if payload is None:
            conn.close(CloseCode.DECODE_ERROR, "Error while decoding payload.")
            return
        op = payload.get("op")
        data = payload.get("d")
        if op == Op.HEARTBEAT:
            conn.heartbeats += 1
            if self.ack_heartbeats:
                conn.send({"op": Op.HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            self.changes.notify()
        elif op in (Op.IDENTIFY, Op.RESUME):
            if conn.session is not None:
                conn.close(CloseCode.ALREADY_AUTHENTICATED, "Already authenticated.")
            elif op == Op.IDENTIFY:
                self._identify(conn, data if isinstance(data, dict) else {})
            else:
                self._resume(conn, data if isinstance(data, dict) else {})
        elif op in (Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE, Op.REQUEST_GUILD_MEMBERS):
            if conn.session is None:
                conn.close(CloseCode.NOT_AUTHENTICATED, "Not authenticated.")
            elif op == Op.REQUEST_GUILD_MEMBERS and isinstance(data, dict):
                self._request_members(conn.session, data)
        else:
            conn.close(CloseCode.UNKNOWN_OPCODE, "Unknown opcode.")

    def _identify(self, conn: GatewayConnection, data: JSON) -> None:
        token = data.get("token")
        bot = self.state.bots.get(token) if isinstance(token, str) else None
        if bot is None or bot.revoked:
            conn.close(CloseCode.AUTHENTICATION_FAILED, "Authentication failed.")
            return
        conn.identified_bot = bot
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents & ~ALL_INTENTS:
            conn.close(CloseCode.INVALID_INTENTS, "Invalid intent(s).")
            return
        # A privileged intent the bot's owner did not switch on in the developer portal.
        if intents & PRIVILEGED_INTENTS & ~bot.allowed_privileged_intents():
            conn.close(CloseCode.DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        shard = data.get("shard", [0, 1])
        if (
            not isinstance(shard, list)
            or len(shard) != 2
            or not all(isinstance(x, int) for x in shard)
            or shard[1] < 1
            or not 0 <= shard[0] < shard[1]
        ):
            conn.close(CloseCode.INVALID_SHARD, "Invalid shard.")
            return
        session = GatewaySession(
            id=uuid.uuid4().hex, bot=bot, intents=intents, shard=(shard[0], shard[1])
        )
        self.sessions[session.id] = session
        self._forget_old_sessions(bot)
        session.connection = conn
        conn.session = session
        guilds = sorted(
            (
                g
                for g in self.state.guilds.values()
                if bot.id in g.members and session.covers_guild(g.id)
            ),
            key=lambda g: g.id,
        )
        ready: JSON = {
            "v": 10,
            "user": bot.me_payload(),
            "user_settings": {},
            "session_type": "normal",
            "session_id": session.id,
            "resume_gateway_url": self.resume_url,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "application": {"id": str(bot.id), "flags": bot.application_flags()},
            "auth": {},
            "_trace": ['["fake-discord-gateway"]'],
        }
        if "shard" in data:
            ready["shard"] = [shard[0], shard[1]]
        session.dispatch("READY", ready)
        for g in guilds:
            session.dispatch("GUILD_CREATE", g.gateway_payload(bot.id, initial=True))
        self.records.logins.append(
            GatewayLogin(
                "identify", bot.id, session.id, intents, conn.zlib_stream, conn.request.path
            )
        )
        conn.call_when_flushed(lambda: self._mark_online(conn))

    def _resume(self, conn: GatewayConnection, data: JSON) -> None:
        """Replay what the session missed after ``seq``, then RESUMED; else INVALID_SESSION."""
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        if (
            session is None
            or session.invalidated
            or session.bot.token != data.get("token")
            or session.bot.revoked
            or not isinstance(seq, int)
        ):
            conn.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        missed = session.replay_after(seq)
        if missed is None:
            session.invalidated = True
            conn.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        old = session.connection
        if old is not None and old is not conn:
            old.abort()
        session.connection = conn
        conn.session = session
        for payload in missed:
            conn.send(payload)
        session.dispatch("RESUMED", {"_trace": ['["fake-discord-gateway"]']})
        self.records.logins.append(
            GatewayLogin(
                "resume",
                session.bot.id,
                session.id,
                session.intents,
                conn.zlib_stream,
                conn.request.path,
            )
        )
        conn.call_when_flushed(lambda: self._mark_online(conn))

    def _mark_online(self, conn: GatewayConnection) -> None:
        conn.online = True
        self.changes.notify()

    def _forget_old_sessions(self, bot: FakeBot, keep: int = 5) -> None:
        """Keep a few disconnected sessions per bot for RESUME; forget older ones."""
        idle = [s for s in self.sessions.values() if s.bot is bot and s.connection is None]
        for session in idle[:-keep] if len(idle) > keep else []:
            self.sessions.pop(session.id, None)

    def _request_members(self, session: GatewaySession, data: JSON) -> None:
        raw_ids = data.get("guild_id")
        guild_ids = raw_ids if isinstance(raw_ids, list) else [raw_ids]
        query = str(data.get("query") or "").lower()
        limit = data.get("limit") or 0
        wanted = data.get("user_ids")
        wanted_ids = {
            int(u) for u in (wanted if isinstance(wanted, list) else [wanted] if wanted else [])
        }
        for raw in guild_ids:
            guild = (
                self.state.guilds.get(int(raw)) if raw is not None and str(raw).isdigit() else None
            )
            if guild is None or session.bot.id not in guild.members:
                continue
            members = [
                m
                for m in guild.members.values()
                if (not wanted_ids or m.user.id in wanted_ids)
                and m.user.username.lower().startswith(query)
            ]
            if isinstance(limit, int) and limit > 0:
                members = members[:limit]
            chunk: JSON = {
                "guild_id": str(guild.id),
                "members": [m.payload() for m in members],
                "chunk_index": 0,
                "chunk_count": 1,
            }
            if wanted_ids:
                found = {m.user.id for m in members}
                chunk["not_found"] = [str(i) for i in wanted_ids - found]
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
