"""One Discord gateway connection (discord.py client) per bot token, serving every account that
uses the token, and the message pipeline from a gateway event to the right HUMA agents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import discord

from neonrain.contract import (
    EVENT_RECEIVED,
    STATUS_DETAIL_MAX,
    ServerEntry,
    TokenEntry,
    WorkerState,
    WorkerTokenState,
)
from neonrain.worker import discord_compat
from neonrain.worker.agent import GuildAgent, HumaSettings
from neonrain.worker.history import ChannelHistory, Entry
from neonrain.worker.reporting import Reporter

log = logging.getLogger(__name__)

USER_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)
RETRY_DELAYS = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)


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
        )
        self.owner = owner

    async def on_ready(self) -> None:
        await self.owner.on_ready()

    async def on_resumed(self) -> None:
        self.owner.report("online")

    async def on_disconnect(self) -> None:
        if not self.is_closed():
            self.owner.report("connecting", "gateway connection lost; resuming")

    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self.owner.sync_nicknames([str(guild.id)])

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.owner.sync_nicknames([str(guild.id)])

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
    ) -> None:
        self.token = token
        self.accounts: dict[str, TokenEntry] = {a.user_id: a for a in accounts}
        self.reporter = reporter
        self.huma = huma
        self.client = _GatewayClient(self)
        self.histories: dict[int, ChannelHistory] = {}
        self.agents: dict[tuple[str, str], GuildAgent] = {}
        self.invalid = False
        self._history_locks: dict[int, asyncio.Lock] = {}
        self._nicknames: dict[str, str] = {}
        self._nickname_refused: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._huma_missing_logged: set[str] = set()

    # -- identity and reporting

    @property
    def bot_user_id(self) -> int | None:
        return self.client.user.id if self.client.user else None

    def _ids(self) -> str:
        return "users=" + ",".join(sorted(self.accounts))

    def guild(self, guild_id: int) -> discord.Guild | None:
        return self.client.get_guild(guild_id)

    async def send_typing(self, channel_id: int) -> None:
        await discord_compat.send_typing(self.client, channel_id)

    def report(self, state: WorkerState, detail: str = "") -> None:
        for user_id, account in self.accounts.items():
            self.reporter.state(
                WorkerTokenState(
                    user_id=user_id,
                    state=state,
                    detail=detail[:STATUS_DETAIL_MAX],
                    guild_ids=tuple(sorted(account.active_guilds)),
                )
            )

    # -- lifecycle

    def start(self) -> None:
        self.report("connecting", "starting")
        self._task = asyncio.create_task(self._run(), name=f"discord-{self._ids()}")

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self.client.login(self.token)
                break
            except discord.LoginFailure:
                self._invalid("Discord rejected the bot token (401)")
                return
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                attempt += 1
                log.warning(
                    "discord login failed %s (%s); retrying in %.0fs", self._ids(), exc, delay
                )
                self.report("connecting", f"Discord unreachable ({type(exc).__name__})")
                await asyncio.sleep(delay)
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            log.error("message content intent not enabled %s", self._ids())
            self.report(
                "offline",
                "Discord refused the message content intent: switch it on for this bot in "
                "Discord's developer portal, then reconnect the token.",
            )
        except discord.ConnectionClosed as exc:
            if exc.code == 4004:
                self._invalid("Discord closed the gateway: authentication failed (4004)")
            else:
                log.warning("gateway closed %s code=%s", self._ids(), exc.code)
                self.report("offline", f"gateway closed ({exc.code})")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("discord client stopped %s", self._ids())
            self.report("offline", f"stopped: {type(exc).__name__}")

    def _invalid(self, detail: str) -> None:
        """Report once and do not retry until the token changes."""
        self.invalid = True
        log.error("invalid Discord token %s: %s", self._ids(), detail)
        self.report("token_invalid", detail)

    async def stop(self) -> None:
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
        or server name means a new agent on the next message; texts apply to the next message.
        Every delta reaches every connection, so an unchanged one returns at once (the snapshot
        keeps the same objects for accounts the delta did not touch)."""
        by_user = {a.user_id: a for a in accounts}
        if by_user == self.accounts:
            return
        self.accounts = by_user
        closing = []
        for key, agent in list(self.agents.items()):
            user_id, guild_id = key
            account = self.accounts.get(user_id)
            config = account.active_guilds.get(guild_id) if account else None
            if config is None or agent.needs_new_agent(config):
                closing.append(agent.close(delete_agent=True))
                del self.agents[key]
            else:
                agent.update(config)
        await asyncio.gather(*closing, return_exceptions=True)
        if self.client.is_ready():
            self.report("online")
            await self.sync_nicknames()

    async def on_ready(self) -> None:
        user = self.client.user
        log.info(
            "discord connected %s bot=%s guilds=%d",
            self._ids(),
            user.id if user else None,
            len(self.client.guilds),
        )
        self.report("online")
        await self.sync_nicknames()

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

    # -- messages

    def entry(self, message: discord.Message) -> Entry:
        content = message.content or ""
        if message.attachments:
            described = " ".join(f"[attachment: {a.filename}]" for a in message.attachments)
            content = f"{content} {described}".strip()
        return Entry(
            id=message.id,
            author=message.author.display_name,
            author_id=str(message.author.id),
            content=content,
            timestamp=message.created_at,
        )

    def record(self, message: discord.Message) -> None:
        """Add a message (for example the bot's own reply) to its channel's history."""
        history = self.histories.get(message.channel.id)
        if history is not None:
            history.add(self.entry(message))

    async def _history(self, channel: Any) -> ChannelHistory:
        """The channel's history, loaded from Discord the first time the channel is seen."""
        history = self.histories.get(channel.id)
        if history is not None and history.loaded:
            return history
        lock = self._history_locks.setdefault(channel.id, asyncio.Lock())
        async with lock:
            history = self.histories.setdefault(channel.id, ChannelHistory())
            if not history.loaded:
                try:
                    history.extend([self.entry(m) async for m in channel.history(limit=50)])
                except discord.HTTPException as exc:
                    log.warning(
                        "cannot load history %s channel=%s: %s", self._ids(), channel.id, exc
                    )
                history.loaded = True
        return history

    async def on_message(self, message: discord.Message) -> None:
        guild = message.guild
        if guild is None:
            return  # direct messages are not served
        guild_id = str(guild.id)
        interested = self._configs_for_guild(guild_id)
        if not interested:
            log.debug("message ignored: guild not active %s guild=%s", self._ids(), guild_id)
            return
        history = await self._history(message.channel)
        entry = self.entry(message)
        history.add(entry)
        if message.author.id == self.bot_user_id:
            return
        if message.author.bot or message.webhook_id is not None:
            log.debug("message ignored: from a bot or webhook %s", self._message_fields(message))
            return
        if message.type not in USER_MESSAGE_TYPES:
            log.debug("message ignored: system message %s", self._message_fields(message))
            return
        if not entry.content:
            log.debug("message ignored: no text %s", self._message_fields(message))
            return
        for user_id, config in interested:
            self.reporter.count(user_id, guild_id, EVENT_RECEIVED)
            if self.huma is None:
                if guild_id not in self._huma_missing_logged:
                    self._huma_missing_logged.add(guild_id)
                    log.warning(
                        "message not answered: HUMA_API_KEY is not set user=%s guild=%s",
                        user_id,
                        guild_id,
                    )
                continue
            agent = self.agents.get((user_id, guild_id))
            if agent is None:
                agent = self.agents[(user_id, guild_id)] = GuildAgent(self, user_id, config)
            try:
                await agent.on_user_message(message.channel, entry)
            except Exception:
                log.exception(
                    "message not answered: agent unavailable user=%s %s",
                    user_id,
                    self._message_fields(message),
                )

    def _message_fields(self, message: discord.Message) -> str:
        guild_id = message.guild.id if message.guild is not None else None
        return f"{self._ids()} guild={guild_id} channel={message.channel.id} message={message.id}"
