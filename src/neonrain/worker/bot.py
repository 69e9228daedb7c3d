"""One Discord gateway connection (discord.py client) per bot token, serving every account that
uses the token, and the message pipeline from a gateway event to the right agents.

Per message: guilds switched off and channels outside a server's channel scope are ignored
completely (not counted, no history loaded); the message enters the channel's history (authors
under one name per guild: server nickname, else global name, else username); it is counted; and
each account's agent is asked, unless the reply mode says otherwise. Why a message got no answer
is logged at INFO, once per reason and channel per minute.

The connection is supervised: a rejected token stops it until the token changes; a missing
message-content intent is reported as such and retried every minute (the owner may switch it on);
an unexpected crash of discord.py is followed by a restart with backoff. The state reported to
the dashboard says which, and a reconnect attempt never hides the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from neonrain.contract import (
    EVENT_RECEIVED,
    STATUS_DETAIL_MAX,
    ChannelCursor,
    EngineState,
    GuildReport,
    ServerEntry,
    TokenEntry,
    WorkerReason,
    WorkerState,
    WorkerTokenState,
    clean_text,
)
from neonrain.worker import behaviour, discord_compat
from neonrain.worker.agent import (
    TEXT_BEARING,
    GuildAgent,
    HumaSettings,
    can_read,
    can_send,
    parent_id_of,
)
from neonrain.worker.history import ChannelHistory, Entry
from neonrain.worker.quiet_log import NoAnswerLog
from neonrain.worker.reporting import Reporter

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger(__name__)

USER_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)
RETRY_DELAYS = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)
#: A bot without the message-content intent is tried again this often (the owner may switch the
#: intent on in the developer portal without touching the token).
INTENT_RETRY_SECONDS = 60.0
#: discord.py waits out a rate limit up to this long, then gives up with ``RateLimited``.
MAX_RATE_LIMIT_WAIT = 30.0
#: After a restart or a new gateway session, what was posted meanwhile is read back, at most
#: this far back and this many messages per channel.
CATCH_UP_WINDOW = timedelta(minutes=15)
CATCH_UP_MESSAGES = 100
#: Authors of messages read over REST whose server nickname is unknown are looked up (a REST
#: call each), at most this many per history load.
NAME_LOOKUPS_PER_LOAD = 10
NAMES_PER_GUILD = 5000

TOKEN_REJECTED_DETAIL = "Discord rejected the bot token; connect the bot again with a new token."  # noqa: S105
INTENT_DETAIL = (
    "Discord refused the message content intent: switch it on for this bot in Discord's "
    "developer portal (Bot → Privileged Gateway Intents); the worker tries again every minute."
)

CursorSource = Callable[[Sequence[str]], Awaitable[Sequence[ChannelCursor]]]


def intents() -> discord.Intents:
    """Guilds, guild messages and message content (a privileged intent the owner switches on)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.message_content = True
    return wanted


class _GatewayClient(discord.Client):
    """discord.py's client, forwarding the events we use to its :class:`TokenClient`."""

    def __init__(self, owner: TokenClient) -> None:
        super().__init__(
            intents=intents(),
            member_cache_flags=discord.MemberCacheFlags.none(),
            max_messages=None,  # our own per-channel history replaces discord.py's cache
            chunk_guilds_at_startup=False,
            max_ratelimit_timeout=MAX_RATE_LIMIT_WAIT,
        )
        self.owner = owner

    async def on_ready(self) -> None:
        await self.owner.on_ready()

    async def on_resumed(self) -> None:
        self.owner.resumed()

    async def on_disconnect(self) -> None:
        if not self.is_closed():
            self.owner.gateway_lost()

    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self.owner.guild_changed(guild.id, nicknames=True)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.owner.guild_changed(guild.id, nicknames=True)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.owner.guild_changed(guild.id)

    async def on_guild_channel_create(self, channel: Any) -> None:
        await self.owner.guild_changed(channel.guild.id)

    async def on_guild_channel_delete(self, channel: Any) -> None:
        await self.owner.guild_changed(channel.guild.id)

    async def on_guild_channel_update(self, _before: Any, after: Any) -> None:
        await self.owner.guild_changed(after.guild.id, permissions=True)

    async def on_guild_role_update(self, _before: discord.Role, after: discord.Role) -> None:
        await self.owner.guild_changed(after.guild.id, permissions=True)

    async def on_guild_role_delete(self, role: discord.Role) -> None:
        await self.owner.guild_changed(role.guild.id, permissions=True)

    async def on_guild_update(self, _before: discord.Guild, after: discord.Guild) -> None:
        await self.owner.guild_changed(after.id, permissions=True)  # e.g. a new owner

    async def on_member_update(self, _before: discord.Member, after: discord.Member) -> None:
        # Discord sends the bot its own member updates (its roles) without the members intent.
        if self.user is not None and after.id == self.user.id:
            await self.owner.guild_changed(after.guild.id, permissions=True)

    async def on_message(self, message: discord.Message) -> None:
        await self.owner.on_message(message)


class TokenClient:
    """The connection of one bot token and the agents of the accounts that use it (the
    ``agent.Connection`` its guild agents use)."""

    def __init__(
        self,
        token: str,
        accounts: list[TokenEntry],
        *,
        reporter: Reporter,
        huma: HumaSettings | None,
        typing_wpm: float = 90.0,
        openai_http: Callable[[], httpx2.AsyncClient] | None = None,
        cursors: CursorSource | None = None,
    ) -> None:
        self.token = token
        self.accounts: dict[str, TokenEntry] = {a.user_id: a for a in accounts}
        self.reporter = reporter
        self.huma = huma
        self.typing_wpm = typing_wpm
        self.no_answer = NoAnswerLog()
        self._openai_http = openai_http
        self._cursor_source = cursors
        self.client = _GatewayClient(self)
        self.histories: dict[int, ChannelHistory] = {}
        self.agents: dict[tuple[str, str], GuildAgent] = {}
        self.invalid = False
        self.state: WorkerState = "connecting"
        self.detail = "starting"
        self.reason: WorkerReason | None = None
        self._history_locks: dict[int, asyncio.Lock] = {}
        self._history_guild: dict[int, int] = {}
        self._names: dict[int, dict[int, str]] = {}
        self._nicknames: dict[str, str] = {}
        self._nickname_refused: set[str] = set()
        self._problems: dict[str, tuple[int, str]] = {}
        self._refusals_logged: set[tuple[int, str]] = set()
        self._engine: dict[str, tuple[EngineState, str]] = {}
        self._last_seen: dict[int, int] = {}
        self._counted: dict[int, deque[int]] = {}
        self._thread_parents: dict[int, int | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._catch_up_from: dict[int, int] | None = None
        #: The first message of each channel handed to the agents in this gateway session: the
        #: messages before it came while the worker was away (caught up on, not handed twice).
        self._first_handed: dict[int, int] = {}
        #: Each guild's channels the bot can read (``readable_channels``), until that guild's
        #: channels, roles, the bot's member or the gateway session change.
        self._readable: dict[int, list[Any]] = {}

    # -- identity and reporting

    @property
    def bot_user_id(self) -> int | None:
        return self.client.user.id if self.client.user else None

    def _ids(self) -> str:
        return "users=" + ",".join(sorted(self.accounts))

    def set_state(
        self, state: WorkerState, detail: str = "", *, reason: WorkerReason | None = None
    ) -> None:
        """The connection's state. A reason (token rejected, intent missing, crashed) stays until
        the connection is online again: the reconnect attempts that follow do not hide it."""
        if state == "online":
            self.reason = None
        elif reason is not None:
            self.reason = reason
        elif self.reason is not None and state == "connecting":
            return  # keep showing why the bot is not online
        self.state = state
        self.detail = detail
        self.publish()

    def publish(self) -> None:
        """Report every account's state, guilds and engine (the reporter sends only changes)."""
        ready = self.client.is_ready() and self.state == "online"
        for user_id, account in self.accounts.items():
            engine = self._engine.get(user_id)
            self.reporter.state(
                WorkerTokenState(
                    user_id=user_id,
                    state=self.state,
                    detail=self.detail[:STATUS_DETAIL_MAX],
                    guild_ids=tuple(sorted(account.active_guilds)),
                    reason=self.reason,
                    guilds=tuple(
                        self._guild_report(config) for config in account.active_guilds.values()
                    )
                    if ready
                    else (),
                    engine_state=engine[0] if engine else None,
                    engine_detail=engine[1][:STATUS_DETAIL_MAX] if engine else "",
                )
            )

    def _guild_report(self, config: ServerEntry) -> GuildReport:
        guild = self.client.get_guild(int(config.guild_id))
        if guild is None:
            return GuildReport(guild_id=config.guild_id, present=False)
        me = guild.me
        watched = [
            c for c in guild.channels if c.type in TEXT_BEARING and behaviour.watches(config, c.id)
        ]
        problem = self._problems.get(config.guild_id)
        return GuildReport(
            guild_id=config.guild_id,
            present=True,
            channels_watched=len(watched),
            channels_readable=sum(1 for c in watched if can_read(c, me)),
            channels_sendable=sum(1 for c in watched if can_read(c, me) and can_send(c, me)),
            problem=problem[1][:STATUS_DETAIL_MAX] if problem else "",
        )

    def refused(self, guild_id: str, channel: Any, detail: str | None) -> None:
        """Discord refused the bot's action in ``channel`` (logged once per channel and reason,
        shown in the server's readiness), or accepted it again (``detail`` None)."""
        if detail is None:
            known = self._problems.get(guild_id)
            if known is not None and known[0] == channel.id:
                del self._problems[guild_id]
                self.publish()
            return
        self._problems[guild_id] = (channel.id, f"{detail} in #{channel.name}")
        if (channel.id, detail) not in self._refusals_logged:
            self._refusals_logged.add((channel.id, detail))
            log.warning(
                "discord refused the bot %s guild=%s channel=%s: %s",
                self._ids(),
                guild_id,
                channel.id,
                detail,
            )
        self.publish()

    def engine_state(self, user_id: str, state: EngineState, detail: str) -> None:
        self._engine[user_id] = (state, detail)
        self.publish()

    def openai_http(self) -> httpx2.AsyncClient:
        assert self._openai_http is not None, "the worker provides the OpenAI HTTP client"
        return self._openai_http()

    # -- lifecycle

    def start(self) -> None:
        self.set_state("connecting", "starting")
        self._task = asyncio.create_task(self._run(), name=f"discord-{self._ids()}")

    async def _run(self) -> None:
        """Log in and stay connected; restart after a crash, until stopped or the token is bad."""
        failures = 0
        while True:
            outcome = await self._connect_once()
            if outcome == "stop":
                return
            if outcome == "intent":
                delay = INTENT_RETRY_SECONDS
            else:
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                self.set_state(
                    "connecting",
                    f"{self.detail}; reconnecting in {delay:.0f} s",
                    reason=self.reason,
                )
            await asyncio.sleep(delay)
            with contextlib.suppress(Exception):
                await self.client.close()
            self.client = _GatewayClient(self)

    async def _connect_once(self) -> str:
        """One life of the discord.py client: ``stop`` (closed, or a bad token), ``intent``
        (message content refused) or ``retry`` (unreachable, crashed)."""
        try:
            await self.client.login(self.token)
        except discord.LoginFailure:
            self._invalid("Discord rejected the bot token (401)")
            return "stop"
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("discord login failed %s (%s)", self._ids(), exc)
            self.set_state("connecting", f"Discord unreachable ({type(exc).__name__})")
            return "retry"
        await self._load_cursors()
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            log.error(
                "message content intent not enabled %s; retrying every %.0fs",
                self._ids(),
                INTENT_RETRY_SECONDS,
            )
            self.set_state("offline", INTENT_DETAIL, reason="intent_missing")
            return "intent"
        except discord.ConnectionClosed as exc:
            if exc.code == 4004:
                self._invalid("Discord closed the gateway: authentication failed (4004)")
                return "stop"
            log.warning("gateway closed %s code=%s", self._ids(), exc.code)
            self.set_state("connecting", f"gateway closed ({exc.code})")
            return "retry"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("discord client crashed %s; restarting it", self._ids())
            self.set_state(
                "connecting",
                f"the Discord connection failed ({type(exc).__name__})",
                reason="crashed",
            )
            return "retry"
        return "stop" if self.client.is_closed() else "retry"

    def _invalid(self, detail: str) -> None:
        """Report once and do not retry until the token changes."""
        self.invalid = True
        log.error("invalid Discord token %s: %s", self._ids(), detail)
        self.set_state("token_invalid", detail or TOKEN_REJECTED_DETAIL, reason="token_rejected")

    async def stop(self) -> None:
        """Stop taking events (what arrives now is read by the next start's catch-up), then
        close the agents (messages being typed are canceled) and the connection."""
        self._stopping = True
        await asyncio.gather(
            *(agent.close(delete_agent=True) for agent in self.agents.values()),
            return_exceptions=True,
        )
        self.agents.clear()
        discord_compat.cancel_ready_task(self.client)
        with contextlib.suppress(Exception):
            await self.client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for user_id in self.accounts:
            self.reporter.state(
                WorkerTokenState(user_id=user_id, state="offline", detail="stopped")
            )

    # -- configuration

    async def update(self, accounts: list[TokenEntry]) -> None:
        """Apply new configurations: agents of guilds switched off or removed go; a changed bot
        or server name, engine or endpoint means a new agent on the next message; texts and
        behaviour apply to the next message. Every delta reaches every connection, so an
        unchanged one returns at once (the snapshot keeps the same objects for accounts the
        delta did not touch)."""
        by_user = {a.user_id: a for a in accounts}
        if by_user == self.accounts:
            return
        self.accounts = by_user
        closing = []
        for key, agent in list(self.agents.items()):
            user_id, guild_id = key
            account = self.accounts.get(user_id)
            config = account.active_guilds.get(guild_id) if account else None
            if account is None or config is None or agent.needs_new_agent(config, account.openai):
                closing.append(agent.close(delete_agent=True))
                del self.agents[key]
            else:
                agent.update(config)
        for user_id in list(self._engine):
            if user_id not in self.accounts:
                del self._engine[user_id]
        await asyncio.gather(*closing, return_exceptions=True)
        self.publish()
        if self.client.is_ready():
            await self.sync_nicknames()

    async def on_ready(self) -> None:
        user = self.client.user
        log.info(
            "discord connected %s bot=%s guilds=%d",
            self._ids(),
            user.id if user else None,
            len(self.client.guilds),
        )
        self.set_state("online")
        await self.sync_nicknames()
        await self._catch_up()

    def readable_channels(self, guild: discord.Guild) -> list[Any]:
        """The guild's text-bearing channels the bot can read, in Discord's order. Asked for
        every message (the agent sees only these), so kept per guild until an event that can
        change it (:meth:`guild_changed`, a lost gateway session)."""
        readable = self._readable.get(guild.id)
        if readable is None:
            me = guild.me
            readable = [c for c in guild.channels if c.type in TEXT_BEARING and can_read(c, me)]
            self._readable[guild.id] = readable
        return readable

    async def guild_changed(
        self, guild_id: int, *, nicknames: bool = False, permissions: bool = False
    ) -> None:
        """A guild appeared, left, or its channels or roles changed: report anew."""
        self._readable.pop(guild_id, None)
        if permissions:
            self._problems.pop(str(guild_id), None)  # Discord may accept the bot there now
        self.publish()
        if nicknames:
            await self.sync_nicknames([str(guild_id)])

    def _configs_for_guild(self, guild_id: str) -> list[tuple[str, ServerEntry]]:
        return [
            (user_id, config)
            for user_id, account in self.accounts.items()
            if (config := account.active_guilds.get(guild_id)) is not None
        ]

    async def sync_nicknames(self, guild_ids: list[str] | None = None) -> None:
        """Set the bot's nickname in each active guild to that server's bot name."""
        for account in self.accounts.values():
            for guild_id, config in account.active_guilds.items():
                if guild_ids is not None and guild_id not in guild_ids:
                    continue
                await self._set_nickname(guild_id, config.bot_name)

    async def _set_nickname(self, guild_id: str, bot_name: str) -> None:
        guild = self.client.get_guild(int(guild_id))
        if guild is None or self._nicknames.get(guild_id) == bot_name:
            return
        me = guild.me
        current = (me.nick or me.name) if me is not None else None
        if current == bot_name:
            self._nicknames[guild_id] = bot_name
            return
        try:
            await discord_compat.set_own_nickname(self.client, guild.id, bot_name)
            self._nicknames[guild_id] = bot_name
            log.info("nickname set %s guild=%s nick=%s", self._ids(), guild_id, bot_name)
        except discord.Forbidden:
            if guild_id not in self._nickname_refused:
                self._nickname_refused.add(guild_id)
                log.warning(
                    "cannot set the bot's nickname %s guild=%s: missing Change Nickname permission",
                    self._ids(),
                    guild_id,
                )
        except discord.HTTPException as exc:
            log.warning("nickname change failed %s guild=%s: %s", self._ids(), guild_id, exc)

    # -- channels and names

    def guild(self, guild_id: int) -> discord.Guild | None:
        return self.client.get_guild(guild_id)

    async def send_typing(self, channel_id: int) -> None:
        await discord_compat.send_typing(self.client, channel_id)

    async def resolve_channel(self, guild: discord.Guild, channel_id: int) -> Any | None:
        """A channel or thread of ``guild``; a thread missing from the cache (archived, or
        private and the bot not yet in it) is fetched over REST."""
        channel = guild.get_channel_or_thread(channel_id)
        if channel is not None:
            return channel
        try:
            fetched = await self.client.fetch_channel(channel_id)
        except (discord.NotFound, discord.Forbidden, discord.InvalidData):
            return None
        except discord.HTTPException as exc:
            log.info("channel lookup failed %s channel=%s: %s", self._ids(), channel_id, exc)
            return None
        if getattr(fetched, "guild", None) is None or fetched.guild.id != guild.id:  # type: ignore[union-attr]
            return None
        return fetched

    async def _parent_of(self, message: discord.Message) -> int | None:
        """The parent channel of a message's thread (``None`` when not in a thread)."""
        channel = message.channel
        if isinstance(channel, discord.Thread):
            return channel.parent_id
        if isinstance(channel, discord.PartialMessageable) and message.guild is not None:
            if channel.id not in self._thread_parents:
                resolved = await self.resolve_channel(message.guild, channel.id)
                self._thread_parents[channel.id] = parent_id_of(resolved)
            return self._thread_parents[channel.id]
        return None

    def _display_name(self, guild: discord.Guild | None, author: Any) -> str:
        """One name per person per guild: server nickname, else global name, else username.
        Names learned from live messages (which carry the member) are remembered; a change
        re-labels the person's lines in the guild's histories."""
        if guild is None:
            return str(author.display_name)
        if author.id == self.bot_user_id and guild.me is not None:
            return guild.me.display_name
        names = self._names.setdefault(guild.id, {})
        if isinstance(author, discord.Member):
            name = author.display_name
            known = names.get(author.id)
            if known != name:
                self._remember_name(guild.id, author.id, name)
                if known is not None:
                    self._rename(guild.id, str(author.id), name)
            return name
        return names.get(author.id) or str(author.display_name)

    def _remember_name(self, guild_id: int, user_id: int, name: str) -> None:
        names = self._names.setdefault(guild_id, {})
        names.pop(user_id, None)
        names[user_id] = name
        if len(names) > NAMES_PER_GUILD:
            names.pop(next(iter(names)))

    def _rename(self, guild_id: int, author_id: str, name: str) -> None:
        for channel_id, owner in self._history_guild.items():
            if owner == guild_id:
                self.histories[channel_id].rename(author_id, name)

    @staticmethod
    def _content(message: discord.Message) -> str:
        content = message.content or ""
        if message.attachments:
            described = " ".join(f"[attachment: {a.filename}]" for a in message.attachments)
            content = f"{content} {described}".strip()
        return content

    def entry(self, message: discord.Message) -> Entry:
        """A message as the history keeps it; text from Discord is cleaned here, at the edge, of
        what the web app cannot store (NUL, lone surrogates), so no report is ever refused."""
        return Entry(
            id=message.id,
            author=clean_text(self._display_name(message.guild, message.author)),
            author_id=str(message.author.id),
            content=clean_text(self._content(message)),
            timestamp=message.created_at,
        )

    async def entries(
        self, guild: discord.Guild, messages: Sequence[discord.Message]
    ) -> list[Entry]:
        """Entries of messages read over REST (without members): authors whose server name is
        not known yet are looked up, a few per call."""
        names = self._names.setdefault(guild.id, {})
        unknown = []
        for message in messages:
            author = message.author
            if (
                author.id != self.bot_user_id
                and not isinstance(author, discord.Member)
                and author.id not in names
                and not author.bot
                and author.id not in unknown
            ):
                unknown.append(author.id)
        for user_id in unknown[:NAME_LOOKUPS_PER_LOAD]:
            try:
                member = await guild.fetch_member(user_id)
            except discord.NotFound:
                continue  # no longer in the guild: the account's own name it is
            except discord.HTTPException as exc:
                log.info("member lookup failed %s guild=%s: %s", self._ids(), guild.id, exc)
                break
            self._remember_name(guild.id, user_id, member.display_name)
        return [self.entry(message) for message in messages]

    def record(self, message: discord.Message) -> None:
        """Add a message (for example the bot's own reply) to its channel's history."""
        history = self.histories.get(message.channel.id)
        if history is not None:
            history.add(self.entry(message))

    async def _history(self, guild: discord.Guild, channel: Any) -> ChannelHistory:
        """The channel's history, loaded from Discord the first time the channel is seen."""
        history = self.histories.get(channel.id)
        if history is not None and history.loaded:
            return history
        lock = self._history_locks.setdefault(channel.id, asyncio.Lock())
        async with lock:
            history = self.histories.setdefault(channel.id, ChannelHistory())
            self._history_guild[channel.id] = guild.id
            if not history.loaded:
                try:
                    messages = [m async for m in channel.history(limit=50)]
                    history.extend(await self.entries(guild, messages))
                except discord.Forbidden as exc:
                    self.refused(str(guild.id), channel, f"Discord refused to list: {exc.text}")
                except (discord.HTTPException, discord.RateLimited) as exc:
                    log.warning(
                        "cannot load history %s channel=%s: %s", self._ids(), channel.id, exc
                    )
                history.loaded = True
        return history

    # -- messages

    def _note(self, reason: str, message: discord.Message, **ids: object) -> None:
        self.no_answer.note(
            reason,
            channel=str(message.channel.id),
            guild=message.guild.id if message.guild else None,
            message=message.id,
            **ids,
        )

    def _count_once(self, channel_id: int, message_id: int) -> bool:
        """Whether ``message_id`` is counted now (a message can come live and in a catch-up)."""
        seen = self._counted.setdefault(channel_id, deque(maxlen=CATCH_UP_MESSAGES * 2))
        if message_id in seen:
            return False
        seen.append(message_id)
        return True

    async def on_message(self, message: discord.Message) -> None:
        guild = message.guild
        if guild is None or self._stopping:
            return  # direct messages are not served; a stopping worker takes no more events
        guild_id = str(guild.id)
        interested = self._configs_for_guild(guild_id)
        if not interested:
            if message.author.id != self.bot_user_id and not message.author.bot:
                self._note("the server is switched off", message)
            return
        parent = await self._parent_of(message)
        watching = [
            (user_id, config)
            for user_id, config in interested
            if behaviour.watches(config, message.channel.id, parent)
        ]
        if not watching:
            if message.author.id != self.bot_user_id and not message.author.bot:
                self._note("channel not watched", message)
            return
        history = await self._history(guild, message.channel)
        entry = self.entry(message)
        history.add(entry)
        for user_id, _config in watching:
            self.reporter.cursor(user_id, guild_id, str(message.channel.id), str(message.id))
        self._last_seen[message.channel.id] = max(
            message.id, self._last_seen.get(message.channel.id, 0)
        )
        if message.author.id == self.bot_user_id:
            return
        if message.author.bot or message.webhook_id is not None:
            self._note("from a bot or webhook", message)
            return
        if message.type not in USER_MESSAGE_TYPES:
            self._note("system message", message)
            return
        if not entry.content:
            self._note("no text", message)
            return
        counted = self._count_once(message.channel.id, message.id)
        for user_id, config in watching:
            if counted:
                self.reporter.count(user_id, guild_id, EVENT_RECEIVED, at=message.created_at)
            await self._hand_to_agent(user_id, config, message, entry)

    async def _hand_to_agent(
        self, user_id: str, config: ServerEntry, message: discord.Message, entry: Entry
    ) -> None:
        account = self.accounts[user_id]
        agent = self.agents.get((user_id, config.guild_id))
        if agent is None:
            agent = GuildAgent(self, user_id, config, account.openai)
            self.agents[(user_id, config.guild_id)] = agent
        why_not = agent.unavailable()
        if why_not is not None:
            self._note(why_not, message, user=user_id)
            return
        if config.reply_mode == "mentioned" and not self._addresses_bot(config, message):
            self._note("not mentioned", message, user=user_id)
            return
        self._first_handed.setdefault(message.channel.id, message.id)
        try:
            await agent.on_user_message(message.channel, entry)
        except Exception:
            log.exception(
                "message not answered: agent unavailable user=%s guild=%s channel=%s message=%s",
                user_id,
                config.guild_id,
                message.channel.id,
                message.id,
            )

    def _addresses_bot(self, config: ServerEntry, message: discord.Message) -> bool:
        bot_id = self.bot_user_id
        replies_to_bot = False
        reference = message.reference
        if reference is not None and reference.message_id is not None:
            resolved = reference.resolved
            if isinstance(resolved, discord.Message):
                replies_to_bot = resolved.author.id == bot_id
            else:
                history = self.histories.get(message.channel.id)
                earlier = history.get(reference.message_id) if history is not None else None
                replies_to_bot = earlier is not None and earlier.author_id == str(bot_id)
        return behaviour.addresses_bot(
            content=message.content or "",
            mentioned_ids=message.raw_mentions,
            bot_id=bot_id,
            bot_name=config.bot_name,
            replies_to_bot=replies_to_bot,
        )

    # -- catching up after a restart or a new gateway session

    async def _load_cursors(self) -> None:
        """Where each watched channel was left (by a previous worker process), once per start."""
        if self._cursor_source is None or self._last_seen:
            return
        cursors = list(self.reporter.pending_cursors(set(self.accounts)))  # spooled, not sent
        try:
            cursors += await self._cursor_source(sorted(self.accounts))
        except Exception as exc:
            log.warning("cannot read where the last worker stopped %s: %s", self._ids(), exc)
        for cursor in cursors:
            channel_id, message_id = int(cursor.channel_id), int(cursor.message_id)
            self._last_seen[channel_id] = max(message_id, self._last_seen.get(channel_id, 0))
        self._catch_up_from = dict(self._last_seen)

    def gateway_lost(self) -> None:
        """Where each channel was when the gateway went away: what comes after is caught up on
        if Discord starts a new session (a resumed one replays it instead)."""
        if self._catch_up_from is None:
            self._catch_up_from = dict(self._last_seen)
        self._first_handed.clear()
        self._readable.clear()
        self.set_state("connecting", "gateway connection lost; resuming")

    def resumed(self) -> None:
        self._catch_up_from = None
        self.set_state("online")

    async def _catch_up(self) -> None:
        """Read what was posted in watched channels while the worker was away (at most 15
        minutes and 100 messages per channel), count it, and let the agents answer the newest."""
        since = discord.utils.time_snowflake(datetime.now(UTC) - CATCH_UP_WINDOW)
        # Where the channels were before this session: live messages of the new session may
        # already have moved ``_last_seen`` on.
        left_at, self._catch_up_from = self._catch_up_from or {}, None
        if left_at:
            log.info(
                "catching up %s channels=%d (what was written while the worker was away)",
                self._ids(),
                len(left_at),
            )
        for channel_id, last in left_at.items():
            try:
                await self._catch_up_channel(channel_id, max(last, since))
            except Exception:
                log.exception("catching up failed %s channel=%s", self._ids(), channel_id)

    async def _catch_up_channel(self, channel_id: int, after: int) -> None:
        for guild in self.client.guilds:
            channel = guild.get_channel_or_thread(channel_id)
            if channel is not None:
                break
        else:
            return
        if not isinstance(channel, discord.abc.Messageable):
            return
        watching = [
            (user_id, config)
            for user_id, config in self._configs_for_guild(str(guild.id))
            if behaviour.watches(config, channel.id, parent_id_of(channel))
        ]
        if not watching or not can_read(channel, guild.me):
            return
        try:
            missed = [
                m
                async for m in channel.history(
                    after=discord.Object(after), limit=CATCH_UP_MESSAGES, oldest_first=True
                )
            ]
        except (discord.HTTPException, discord.RateLimited) as exc:
            log.warning("cannot catch up %s channel=%s: %s", self._ids(), channel_id, exc)
            return
        history = await self._history(guild, channel)
        entries = await self.entries(guild, missed)
        history.extend(entries)
        counted = 0
        pairs = list(zip(missed, entries, strict=True))
        for message, entry in pairs:
            for user_id, _config in watching:
                self.reporter.cursor(user_id, str(guild.id), str(channel_id), str(message.id))
            self._last_seen[channel_id] = max(message.id, self._last_seen.get(channel_id, 0))
            if (
                self._from_a_person(message)
                and entry.content
                and self._count_once(channel_id, message.id)
            ):
                counted += 1
                for user_id, _config in watching:
                    self.reporter.count(
                        user_id, str(guild.id), EVENT_RECEIVED, at=message.created_at
                    )
        if missed:
            log.info(
                "caught up %s guild=%s channel=%s missed=%d counted=%d",
                self._ids(),
                guild.id,
                channel_id,
                len(missed),
                counted,
            )
        await self._answer_the_unanswered(guild, channel, watching, pairs)

    async def _answer_the_unanswered(
        self,
        guild: discord.Guild,
        channel: Any,
        watching: list[tuple[str, ServerEntry]],
        missed: list[tuple[discord.Message, Entry]],
    ) -> None:
        """The agent answers the newest message written while the worker was away, unless the
        bot spoke after it; the person messages before it are answered through it (logged as
        superseded). When this session's live flow has already handed a newer message, all of
        them are answered through that one."""
        first_live = self._first_handed.get(channel.id)
        away = [(m, e) for m, e in missed if first_live is None or m.id < first_live]
        last_reply = max((m.id for m, _e in away if m.author.id == self.bot_user_id), default=0)
        waiting = [
            (m, e) for m, e in away if m.id > last_reply and self._from_a_person(m) and e.content
        ]
        if not waiting:
            return
        newest = None if first_live is not None else waiting.pop()
        for older, _entry in waiting:
            log.info(
                "reply superseded %s guild=%s channel=%s trigger_message=%s reason=a newer "
                "message was written while the worker was away",
                self._ids(),
                guild.id,
                channel.id,
                older.id,
            )
        if newest is None:
            return
        for user_id, config in watching:
            await self._hand_to_agent(user_id, config, *newest)

    def _from_a_person(self, message: discord.Message) -> bool:
        return (
            message.author.id != self.bot_user_id
            and not message.author.bot
            and message.webhook_id is None
            and message.type in USER_MESSAGE_TYPES
        )
