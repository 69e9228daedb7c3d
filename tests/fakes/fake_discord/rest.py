"""The fake's REST API v10: routes, Discord's error shapes, permissions, rate limits.

Every answer is ``application/json`` exactly (discord.py parses nothing else). Errors have
Discord's ``{"message", "code"}`` shape: 401 ``0`` for a bad token, 404 ``10003``/``10004``/…
for unknown objects, 403 ``50001`` Missing Access for a guild the bot is not in or a channel it
cannot see, 403 ``50013`` Missing Permissions for an action its permissions do not allow, 400
``50035`` Invalid Form Body with per-field ``errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from aiohttp import web

from .gateway_server import GatewayServer
from .models import (
    JSON,
    MESSAGEABLE_CHANNEL_TYPES,
    ChannelType,
    FakeAttachment,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMessage,
    FakeThread,
    Intent,
    MessageType,
)
from .permissions import Permission
from .ratelimit import RateLimiter
from .records import Changes, NicknameChange, RateLimitHit, RecordedRequest, Records, TypingCall
from .state import FakeState

API_PREFIX = "/api/v10"
MAX_MESSAGE_LENGTH = 2000
MAX_NICK_LENGTH = 32
_SNOWFLAKE = re.compile(r"^\d{1,20}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DiscordHTTPError(Exception):
    """Raised inside handlers to answer with Discord's error shape."""

    def __init__(
        self, status: int, message: str, code: int = 0, errors: JSON | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.errors = errors

    def response(self) -> web.Response:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer with ``Content-Type: application/json`` exactly (discord.py insists)."""
    response = web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
    )
    response.headers["Content-Type"] = "application/json"
    return response


def missing_access() -> DiscordHTTPError:
    return DiscordHTTPError(403, "Missing Access", 50001)


def missing_permissions() -> DiscordHTTPError:
    return DiscordHTTPError(403, "Missing Permissions", 50013)


def _unauthorized() -> DiscordHTTPError:
    return DiscordHTTPError(401, "401: Unauthorized", 0)


def _invalid_form(field_name: str, code: str, message: str) -> DiscordHTTPError:
    errors = {field_name: {"_errors": [{"code": code, "message": message}]}}
    return DiscordHTTPError(400, "Invalid Form Body", 50035, errors)


def _snowflake(value: str, field_name: str) -> int:
    if not _SNOWFLAKE.match(value):
        raise _invalid_form(field_name, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
    return int(value)


def _int_param(query: Any, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid_form(name, "NUMBER_TYPE_COERCE", f'Value "{raw}" is not int.') from None
    if value < low:
        raise _invalid_form(
            name, "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}."
        )
    if value > high:
        raise _invalid_form(
            name, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}."
        )
    return value


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None or not header.startswith("Bot "):
        return None
    return header[4:]


def _route_key(request: web.Request) -> str | None:
    """``POST /channels/{channel_id}/messages``: the method and the matched route template."""
    resource = request.match_info.route.resource
    if resource is None or not resource.canonical.startswith(API_PREFIX + "/"):
        return None
    return f"{request.method} {resource.canonical[len(API_PREFIX) :]}"


#: What ``GET /channels/{id}/messages`` answers a bot without READ_MESSAGE_HISTORY: a 403
#: ``50013``, or (as Discord's documentation describes it) an empty list.
HistoryWithoutPermission = Literal["forbidden", "empty"]


class RestApi:
    def __init__(
        self,
        state: FakeState,
        gateway: GatewayServer,
        records: Records,
        changes: Changes,
        limiter: RateLimiter,
        stopping: asyncio.Event,
        leave_guild: Callable[[FakeGuild, FakeBot], Awaitable[None]],
    ) -> None:
        self.state = state
        self.gateway = gateway
        self.records = records
        self.changes = changes
        self.limiter = limiter
        self.history_without_permission: HistoryWithoutPermission = "forbidden"
        #: Set by the facade once it listens: what ``GET /gateway(/bot)`` answers.
        self.gateway_url = ""
        self._stopping = stopping
        self._leave_guild = leave_guild

    # ---------------------------------------------------------------- plumbing

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        path = request.path[len(API_PREFIX) :]
        token = _bearer_token(request)
        bot = self.state.bots.get(token) if token is not None else None
        body: Any = None
        if request.can_read_body and request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                body = await request.json()
        status = 500
        arrived = time.time()
        response: web.StreamResponse | None = None
        bucket: str | None = None
        try:
            response = await self._injected_failure(request, path, token)
            if response is None:
                route = _route_key(request)
                decision = (
                    self.limiter.check(token, route, request.match_info)
                    if route is not None
                    else None
                )
                if decision is not None:
                    bucket = decision.bucket
                if decision is not None and not decision.allowed:
                    response = json_response(
                        decision.too_many_requests_body(), status=429, headers=decision.headers
                    )
                else:
                    response = await self._answer(request, handler)
                    if decision is not None:
                        response.headers.update(decision.headers)
            status = response.status
            return response
        finally:
            self.records.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=path,
                    query=dict(request.query),
                    bot_id=bot.id if bot else None,
                    status=status,
                    body=body,
                    at=arrived,
                )
            )
            if response is not None and status == 429:
                self._record_429(request, path, bot, bucket, response)
            self.changes.notify()

    async def _injected_failure(
        self, request: web.Request, path: str, token: str | None
    ) -> web.StreamResponse | None:
        rule = next(
            (r for r in self.records.failures if r.applies(request.method, path, token)), None
        )
        if rule is None:
            return None
        if rule.delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), None if math.isinf(rule.delay) else rule.delay
                )
        if rule.status is None:
            return None
        default = {"message": f"{rule.status}: injected failure", "code": 0}
        return json_response(
            rule.body if rule.body is not None else default,
            status=rule.status,
            headers=rule.headers,
        )

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except DiscordHTTPError as exc:
            return exc.response()
        except web.HTTPNotFound:
            return json_response({"message": "404: Not Found", "code": 0}, status=404)
        except web.HTTPMethodNotAllowed:
            return json_response({"message": "405: Method Not Allowed", "code": 0}, status=405)

    def _record_429(
        self,
        request: web.Request,
        path: str,
        bot: FakeBot | None,
        bucket: str | None,
        response: web.StreamResponse,
    ) -> None:
        body = response.body if isinstance(response, web.Response) else None
        retry_after = 0.0
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            retry_after = float(json.loads(body)["retry_after"])  # type: ignore[arg-type]
        self.records.rate_limit_hits.append(
            RateLimitHit(
                bot_id=bot.id if bot else None,
                method=request.method,
                path=path,
                bucket=bucket,
                retry_after=retry_after,
                scope=response.headers.get("X-RateLimit-Scope", ""),
                injected=bucket is None,
                at=time.time(),
            )
        )

    def _auth(self, request: web.Request) -> FakeBot:
        token = _bearer_token(request)
        bot = self.state.bots.get(token) if token is not None else None
        if bot is None or bot.revoked:
            raise _unauthorized()
        return bot

    def _guild_for_bot(self, request: web.Request, bot: FakeBot) -> FakeGuild:
        guild_id = _snowflake(request.match_info["guild_id"], "guild_id")
        guild = self.state.guilds.get(guild_id)
        if guild is None:
            raise DiscordHTTPError(404, "Unknown Guild", 10004)
        if bot.id not in guild.members:
            raise missing_access()
        return guild

    def _channel_for_bot(self, request: web.Request, bot: FakeBot) -> FakeChannel | int:
        """A guild channel or thread the bot can see, or the id of a DM channel of this bot."""
        channel_id = _snowflake(request.match_info["channel_id"], "channel_id")
        dm = self.state.dm_channels.get(channel_id)
        if dm is not None:
            if dm[0] != bot.id:
                raise missing_access()
            return channel_id
        found = self.state.locate(channel_id)
        if found is None:
            raise DiscordHTTPError(404, "Unknown Channel", 10003)
        guild, channel = found
        if not guild.can(bot.id, channel, Permission.VIEW_CHANNEL):
            raise missing_access()
        return channel

    def _require(self, bot: FakeBot, channel: FakeChannel | int, permission: int) -> None:
        """403 Missing Permissions unless the bot has ``permission`` there (DMs: always)."""
        if isinstance(channel, int):
            return
        guild = self.state.guilds[channel.guild_id]
        if not guild.can(bot.id, channel, permission):
            raise missing_permissions()

    def add_routes(self, app: web.Application) -> None:
        p = API_PREFIX
        r = app.router
        r.add_get(p + "/gateway", self._get_gateway)
        r.add_get(p + "/gateway/bot", self._get_gateway_bot)
        r.add_get(p + "/users/@me", self._get_me)
        r.add_get(p + "/users/@me/guilds", self._get_my_guilds)
        r.add_get(p + "/oauth2/applications/@me", self._get_application)
        r.add_get(p + "/applications/@me", self._get_application)
        r.add_get(p + "/guilds/{guild_id}", self._get_guild)
        r.add_get(p + "/guilds/{guild_id}/channels", self._get_guild_channels)
        r.add_get(p + "/guilds/{guild_id}/roles", self._get_guild_roles)
        r.add_get(p + "/guilds/{guild_id}/threads/active", self._get_active_threads)
        r.add_get(p + "/guilds/{guild_id}/members/{user_id}", self._get_member)
        r.add_patch(p + "/guilds/{guild_id}/members/{user_id}", self._patch_member)
        r.add_delete(p + "/users/@me/guilds/{guild_id}", self._leave)
        r.add_get(p + "/channels/{channel_id}", self._get_channel)
        r.add_get(p + "/channels/{channel_id}/messages", self._get_messages)
        r.add_get(p + "/channels/{channel_id}/messages/{message_id}", self._get_message)
        r.add_post(p + "/channels/{channel_id}/messages", self._post_message)
        r.add_post(p + "/channels/{channel_id}/typing", self._post_typing)

    # ---------------------------------------------------------------- accounts and guilds

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        self._auth(request)
        return json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response(self._auth(request).me_payload())

    async def _get_application(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guilds = sum(1 for g in self.state.guilds.values() if bot.id in g.members)
        return json_response(bot.application_payload(guilds))

    async def _get_my_guilds(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        limit = _int_param(request.query, "limit", 200, 1, 200)
        after = request.query.get("after")
        before = request.query.get("before")
        mine = sorted(
            (g for g in self.state.guilds.values() if bot.id in g.members), key=lambda g: g.id
        )
        if after is not None:
            after_id = _snowflake(after, "after")
            mine = [g for g in mine if g.id > after_id][:limit]
        elif before is not None:
            before_id = _snowflake(before, "before")
            mine = [g for g in mine if g.id < before_id][-limit:]
        else:
            mine = mine[:limit]
        with_counts = request.query.get("with_counts", "").lower() == "true"
        result = []
        for g in mine:
            entry = g.partial_payload(bot.id)
            if with_counts:
                entry["approximate_member_count"] = len(g.members)
                entry["approximate_presence_count"] = 0
            result.append(entry)
        return json_response(result)

    async def _get_guild(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        data = guild.base_payload()
        if request.query.get("with_counts", "").lower() == "true":
            data["approximate_member_count"] = len(guild.members)
            data["approximate_presence_count"] = 0
        return json_response(data)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        """Every channel of the guild, even those the bot cannot see (no threads), as Discord."""
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        return json_response([c.payload() for c in guild.channels])

    async def _get_guild_roles(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        return json_response([r.payload() for r in guild.roles])

    async def _get_active_threads(self, request: web.Request) -> web.Response:
        """Active threads of the guild (all of them, as Discord answers a bot), with the bot's
        own thread members."""
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        threads = [t for t in guild.threads if not t.archived]
        return json_response(
            {
                "threads": [t.payload() for t in threads],
                "members": [t.member_payload(bot.id) for t in threads if bot.id in t.members],
                "has_more": False,
            }
        )

    async def _get_member(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        user_id = _snowflake(request.match_info["user_id"], "user_id")
        member = guild.members.get(user_id)
        if member is None:
            raise DiscordHTTPError(404, "Unknown Member", 10007)
        return json_response(member.payload())

    async def _patch_member(self, request: web.Request) -> web.Response:
        """``PATCH /guilds/{id}/members/@me`` (or the bot's own id): change the nickname."""
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        target = request.match_info["user_id"]
        if target != "@me" and target != str(bot.id):
            raise missing_permissions()
        body = await _json_body(request)
        member = guild.members[bot.id]
        if "nick" in body:
            nick = body["nick"]
            if nick is not None and not isinstance(nick, str):
                raise _invalid_form("nick", "BASE_TYPE_STRING", "Must be a string.")
            if nick is not None and len(nick) > MAX_NICK_LENGTH:
                raise _invalid_form(
                    "nick", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
                )
            if not guild.permissions_of(bot.id) & Permission.CHANGE_NICKNAME:
                raise missing_permissions()
            member.nick = nick or None
            self.records.nickname_changes.append(NicknameChange(bot.id, guild.id, member.nick))
            self.gateway.member_updated(guild, member)
        return json_response(member.payload())

    async def _leave(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        guild = self._guild_for_bot(request, bot)
        await self._leave_guild(guild, bot)
        return web.Response(status=204)

    # ---------------------------------------------------------------- channels and messages

    async def _get_channel(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        if isinstance(channel, int):
            _, user_id = self.state.dm_channels[channel]
            return json_response(
                {
                    "id": str(channel),
                    "type": int(ChannelType.DM),
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": [self.state.users[user_id].payload()],
                }
            )
        if isinstance(channel, FakeThread):
            return json_response(channel.payload(member_of=bot.id))
        return json_response(channel.payload())

    def _readable_history(self, bot: FakeBot, channel: FakeChannel | int) -> bool:
        """Whether the bot may read the history; raises 403 50013 unless the fake is set to
        answer an empty list instead."""
        try:
            self._require(bot, channel, Permission.READ_MESSAGE_HISTORY)
        except DiscordHTTPError:
            if self.history_without_permission == "empty":
                return False
            raise
        return True

    async def _get_messages(self, request: web.Request) -> web.Response:
        """Channel history, newest first, with ``limit`` (1–100, default 50) and one of
        ``before``/``after``/``around``."""
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        channel_id = channel if isinstance(channel, int) else channel.id
        limit = _int_param(request.query, "limit", 50, 1, 100)
        if not self._readable_history(bot, channel):
            return json_response([])
        history = self.state.history.get(channel_id, [])  # oldest first
        q = request.query
        if "before" in q:
            before = _snowflake(q["before"], "before")
            picked = [m for m in history if m.id < before][-limit:]
        elif "after" in q:
            after = _snowflake(q["after"], "after")
            picked = [m for m in history if m.id > after][:limit]
        elif "around" in q:
            around = _snowflake(q["around"], "around")
            older = [m for m in history if m.id < around]
            newer = [m for m in history if m.id >= around]
            half = limit // 2
            picked = older[-half:] + newer[: limit - half] if half else newer[:limit]
        else:
            picked = history[-limit:]
        return json_response(
            [self.state.message_payload(m, bot, gateway=False) for m in reversed(picked)]
        )

    async def _get_message(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        channel_id = channel if isinstance(channel, int) else channel.id
        message_id = _snowflake(request.match_info["message_id"], "message_id")
        self._require(bot, channel, Permission.READ_MESSAGE_HISTORY)
        message = self.state.messages.get(message_id)
        if message is None or message.channel_id != channel_id:
            raise DiscordHTTPError(404, "Unknown Message", 10008)
        return json_response(self.state.message_payload(message, bot, gateway=False))

    async def _post_message(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        body = await _message_body(request)
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            content = str(content)
        embeds = body.get("embeds") or []
        has_files = bool(body.get("__files__"))
        if not content and not embeds and not body.get("sticker_ids") and not has_files:
            raise DiscordHTTPError(400, "Cannot send an empty message", 50006)
        if content is not None and len(content) > MAX_MESSAGE_LENGTH:
            raise _invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."
            )
        if isinstance(channel, int):
            guild_id, channel_id = None, channel
        else:
            if channel.type not in MESSAGEABLE_CHANNEL_TYPES:
                raise DiscordHTTPError(400, "Cannot send messages in a non-text channel", 50008)
            self._require(bot, channel, _send_permission(channel))
            guild_id, channel_id = channel.guild_id, channel.id
        reference_id = self._reference(bot, channel, body.get("message_reference"))
        message = FakeMessage(
            id=self.state.new_id(),
            channel_id=channel_id,
            guild_id=guild_id,
            author=bot.user,
            content=content or "",
            type=MessageType.REPLY if reference_id is not None else MessageType.DEFAULT,
            embeds=list(embeds),
            mention_ids=self.state.mentions_in(content or ""),
            reference_id=reference_id,
            nonce=body.get("nonce"),
            tts=bool(body.get("tts", False)),
            attachments=[
                FakeAttachment(id=self.state.new_id(), filename=name)
                for name in body.get("__files__", [])
            ],
        )
        self.records.sent_messages.append(message)
        self.state.store(message)
        if isinstance(channel, FakeThread) and bot.id not in channel.members:
            # Sending in a thread joins it, as in Discord.
            channel.members[bot.id] = message.timestamp
            guild = self.state.guilds[channel.guild_id]
            self.gateway.thread_members_added(guild, channel, [bot.id])
        self.gateway.message_created(message)
        self.changes.notify()
        return json_response(self.state.message_payload(message, bot, gateway=False))

    def _reference(self, bot: FakeBot, channel: FakeChannel | int, ref: Any) -> int | None:
        """The replied-to message id of a ``message_reference`` (replying needs the history)."""
        if not isinstance(ref, dict) or ref.get("message_id") is None:
            return None
        self._require(bot, channel, Permission.READ_MESSAGE_HISTORY)
        reference_id = _snowflake(str(ref["message_id"]), "message_reference.message_id")
        if reference_id not in self.state.messages and ref.get("fail_if_not_exists", True):
            raise _invalid_form(
                "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
            )
        return reference_id

    async def _post_typing(self, request: web.Request) -> web.Response:
        bot = self._auth(request)
        channel = self._channel_for_bot(request, bot)
        if not isinstance(channel, int):
            self._require(bot, channel, _send_permission(channel))
        channel_id = channel if isinstance(channel, int) else channel.id
        self.records.typing_calls.append(TypingCall(bot.id, channel_id, time.time()))
        if not isinstance(channel, int):
            guild = self.state.guilds[channel.guild_id]
            data: JSON = {
                "channel_id": str(channel.id),
                "guild_id": str(guild.id),
                "user_id": str(bot.id),
                "timestamp": int(time.time()),
                "member": guild.members[bot.id].payload(),
            }
            self.gateway.dispatch_to_guild(
                guild,
                "TYPING_START",
                data,
                intent=Intent.GUILD_MESSAGE_TYPING,
                visible_in=channel,
                only=lambda s: s.bot is not bot,
            )
        return web.Response(status=204)


def _send_permission(channel: FakeChannel) -> int:
    if channel.is_thread:
        return int(Permission.SEND_MESSAGES_IN_THREADS)
    return int(Permission.SEND_MESSAGES)


async def _json_body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except ValueError:
        raise DiscordHTTPError(400, "400: Bad Request", 50109) from None
    if not isinstance(body, dict):
        raise DiscordHTTPError(400, "Invalid Form Body", 50035)
    return body


async def _message_body(request: web.Request) -> JSON:
    """The body of a message create: JSON, or multipart with ``payload_json`` and files."""
    if request.content_type.startswith("multipart/"):
        body: JSON = {}
        files: list[str] = []
        reader = await request.multipart()
        async for name, filename, payload in _parts(reader):
            if name == "payload_json":
                with contextlib.suppress(ValueError):
                    loaded = json.loads(payload)
                    if isinstance(loaded, dict):
                        body.update(loaded)
            elif filename:
                files.append(filename)
        body["__files__"] = files
        return body
    return await _json_body(request)


async def _parts(reader: Any) -> AsyncIterator[tuple[str | None, str | None, str]]:
    while True:
        part = await reader.next()
        if part is None:
            return
        data = await part.read(decode=False)
        yield part.name, part.filename, data.decode(errors="replace")
