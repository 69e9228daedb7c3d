"""The product's one small Discord REST client: who is this bot, which guilds is it in.

It is used by the web app (connecting a token, listing guilds, checking that the bot is in a guild
before a server is added). The worker talks to Discord through discord.py instead.

The base URL and timeouts are parameters (the caller passes ``settings.discord_api_url``); nothing
here reads the environment. Tokens go only into the ``Authorization`` header of each request: they
are never logged, never put in an exception message and never kept on the client.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlencode

import httpx

from neonrain.discord_link.permissions import ROLE, Overwrite, Permission

__all__ = [
    "BOT_PERMISSIONS",
    "DEFAULT_API_URL",
    "DEFAULT_CDN_URL",
    "DiscordError",
    "DiscordGuild",
    "DiscordNotFound",
    "DiscordRestClient",
    "DiscordUnauthorized",
    "DiscordUnavailable",
    "DiscordUser",
    "GuildChannel",
    "GuildMember",
    "GuildRole",
    "PartialGuild",
    "Permission",
    "avatar_url",
    "guild_icon_url",
    "invite_url",
]

_log = logging.getLogger(__name__)

DEFAULT_API_URL: Final = "https://discord.com/api/v10"
DEFAULT_CDN_URL: Final = "https://cdn.discordapp.com"
DEFAULT_AUTHORIZE_URL: Final = "https://discord.com/oauth2/authorize"
USER_AGENT: Final = "DiscordBot (https://github.com/neonrain/neonrain, 0.1) Neonrain"

#: ``GET /users/@me/guilds`` returns at most 200 guilds per page.
GUILD_PAGE_SIZE: Final = 200
#: A bot in more guilds than this needs sharding anyway; the cap stops a misbehaving server from
#: keeping us paging forever.
MAX_GUILD_PAGES: Final = 1000

_SNOWFLAKE = re.compile(r"^[0-9]{1,20}$")
# Printable ASCII without spaces: what a Discord token is made of. Anything else could not be a
# token (and would make an invalid HTTP header), so it is refused without asking Discord.
_TOKEN = re.compile(r"^[\x21-\x7e]{1,512}$")


#: What the bot needs in a guild: see channels, read their history, answer, set its server name.
BOT_PERMISSIONS: Final = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.CHANGE_NICKNAME
)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class DiscordError(Exception):
    """Base of this module's errors; ``status`` and ``code`` are Discord's when it answered."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DiscordUnauthorized(DiscordError):
    """Discord refused the token (401), or the string cannot be a token at all."""


class DiscordNotFound(DiscordError):
    """The guild does not exist or the bot is not in it (404, or 403 Missing Access)."""


class DiscordUnavailable(DiscordError):
    """Discord could not be used: 5xx, timeout, connection error, rate limit, malformed answer."""


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiscordUser:
    """The identity behind a token (``GET /users/@me``). Ids are strings, as Discord sends them."""

    id: str
    username: str
    avatar: str | None
    bot: bool
    discriminator: str = "0"
    global_name: str | None = None

    def avatar_url(self, *, cdn_url: str = DEFAULT_CDN_URL, size: int = 128) -> str:
        return avatar_url(
            self.id, self.avatar, discriminator=self.discriminator, cdn_url=cdn_url, size=size
        )


@dataclass(frozen=True, slots=True)
class PartialGuild:
    """An entry of ``GET /users/@me/guilds``."""

    id: str
    name: str
    icon: str | None
    owner: bool = False
    permissions: int | None = None

    def icon_url(self, *, cdn_url: str = DEFAULT_CDN_URL, size: int = 128) -> str | None:
        return guild_icon_url(self.id, self.icon, cdn_url=cdn_url, size=size)


@dataclass(frozen=True, slots=True)
class DiscordGuild:
    """``GET /guilds/{id}`` (only what the product uses)."""

    id: str
    name: str
    icon: str | None
    owner_id: str | None = None

    def icon_url(self, *, cdn_url: str = DEFAULT_CDN_URL, size: int = 128) -> str | None:
        return guild_icon_url(self.id, self.icon, cdn_url=cdn_url, size=size)


@dataclass(frozen=True, slots=True)
class GuildChannel:
    """An entry of ``GET /guilds/{id}/channels`` (only what the product uses). ``type`` is
    Discord's channel type number; ``parent_id`` is the category of a channel."""

    id: str
    name: str
    type: int
    position: int
    parent_id: str | None
    overwrites: tuple[Overwrite, ...] = ()


@dataclass(frozen=True, slots=True)
class GuildRole:
    """An entry of ``GET /guilds/{id}/roles``; ``@everyone``'s id is the guild's."""

    id: str
    permissions: int


@dataclass(frozen=True, slots=True)
class GuildMember:
    """``GET /guilds/{id}/members/{user_id}``: the ids of the member's roles."""

    user_id: str
    role_ids: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------------------


def avatar_url(
    user_id: str | int,
    avatar: str | None,
    *,
    discriminator: str = "0",
    cdn_url: str = DEFAULT_CDN_URL,
    size: int = 128,
) -> str:
    """The user's avatar on Discord's CDN, or the default avatar Discord shows when there is none.

    Animated avatars (hash starting ``a_``) are GIFs. Default avatars: ``(id >> 22) % 6`` for
    accounts on the new username system (discriminator ``0``), ``discriminator % 5`` otherwise.
    """
    base = cdn_url.rstrip("/")
    if avatar:
        extension = "gif" if avatar.startswith("a_") else "png"
        return f"{base}/avatars/{user_id}/{avatar}.{extension}?size={size}"
    if discriminator and discriminator != "0" and discriminator.isdigit():
        index = int(discriminator) % 5
    else:
        index = (int(user_id) >> 22) % 6
    return f"{base}/embed/avatars/{index}.png"


def guild_icon_url(
    guild_id: str | int, icon: str | None, *, cdn_url: str = DEFAULT_CDN_URL, size: int = 128
) -> str | None:
    """The guild's icon on Discord's CDN, or None when the guild has no icon."""
    if not icon:
        return None
    extension = "gif" if icon.startswith("a_") else "png"
    return f"{cdn_url.rstrip('/')}/icons/{guild_id}/{icon}.{extension}?size={size}"


def invite_url(
    application_id: str | int,
    *,
    permissions: int = BOT_PERMISSIONS,
    authorize_url: str = DEFAULT_AUTHORIZE_URL,
    guild_id: str | int | None = None,
) -> str:
    """The OAuth2 link that adds the bot to a server with ``permissions``.

    For bots created since 2016 the application id is the bot user's id.
    """
    query: dict[str, str] = {
        "client_id": str(application_id),
        "scope": "bot",
        "permissions": str(permissions),
    }
    if guild_id is not None:
        query["guild_id"] = str(guild_id)
        query["disable_guild_select"] = "true"
    return f"{authorize_url}?{urlencode(query)}"


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


class DiscordRestClient:
    """Discord REST calls with a bot token, over one shared ``httpx.AsyncClient``.

    Create one per process (``async with DiscordRestClient(settings.discord_api_url) as discord``)
    and pass each call the token it is for; the client holds no token itself.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_rate_limit_wait: float = 5.0,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``timeout`` bounds each read/write/pool wait, ``connect_timeout`` the connection.

        A 429 whose ``retry_after`` is at most ``max_rate_limit_wait`` seconds is waited out and
        retried (twice at most); a longer one raises :class:`DiscordUnavailable`. Pass
        ``http_client`` to share a client (it is then not closed here) or ``transport`` for tests.
        """
        self.base_url = base_url.rstrip("/")
        self.max_rate_limit_wait = max_rate_limit_wait
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ calls

    async def get_current_user(self, token: str) -> DiscordUser:
        """Who the token belongs to. :class:`DiscordUnauthorized` when Discord refuses it."""
        data = _require_mapping(await self._get(token, "/users/@me"), "/users/@me")
        try:
            return DiscordUser(
                id=_snowflake_field(data, "id"),
                username=_str_field(data, "username"),
                avatar=_opt_str_field(data, "avatar"),
                bot=data.get("bot") is True,
                discriminator=str(data.get("discriminator") or "0"),
                global_name=_opt_str_field(data, "global_name"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DiscordUnavailable(f"Discord sent a malformed user: {exc}") from None

    async def list_guilds(self, token: str) -> list[PartialGuild]:
        """Every guild the bot is in, following all pages of ``GET /users/@me/guilds``."""
        guilds: list[PartialGuild] = []
        after: int | None = None
        for _ in range(MAX_GUILD_PAGES):
            params: dict[str, str] = {"limit": str(GUILD_PAGE_SIZE)}
            if after is not None:
                params["after"] = str(after)
            page = await self._get(token, "/users/@me/guilds", params=params)
            if not isinstance(page, list):
                raise DiscordUnavailable("Discord sent a malformed guild list")
            try:
                batch = [_partial_guild(item) for item in page]
            except (KeyError, TypeError, ValueError) as exc:
                raise DiscordUnavailable(f"Discord sent a malformed guild: {exc}") from None
            guilds.extend(batch)
            if len(batch) < GUILD_PAGE_SIZE:
                return guilds
            last = max(int(g.id) for g in batch)
            if after is not None and last <= after:
                raise DiscordUnavailable("Discord's guild pages do not advance")
            after = last
        raise DiscordUnavailable("Discord returned too many guild pages")

    async def get_guild(self, token: str, guild_id: str | int) -> DiscordGuild:
        """The guild, if the bot is in it; :class:`DiscordNotFound` otherwise."""
        data = _require_mapping(
            await self._get(token, f"/guilds/{_guild_ref(guild_id)}", forbidden_is_not_found=True),
            "/guilds/{id}",
        )
        try:
            return DiscordGuild(
                id=_snowflake_field(data, "id"),
                name=_str_field(data, "name"),
                icon=_opt_str_field(data, "icon"),
                owner_id=_opt_str_field(data, "owner_id"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DiscordUnavailable(f"Discord sent a malformed guild: {exc}") from None

    async def list_guild_channels(self, token: str, guild_id: str | int) -> list[GuildChannel]:
        """The guild's channels (threads are not among them); :class:`DiscordNotFound` when the
        bot is not in the guild."""
        data = await self._get(
            token, f"/guilds/{_guild_ref(guild_id)}/channels", forbidden_is_not_found=True
        )
        if not isinstance(data, list):
            raise DiscordUnavailable("Discord sent a malformed channel list")
        try:
            return [_guild_channel(item) for item in data]
        except (KeyError, TypeError, ValueError) as exc:
            raise DiscordUnavailable(f"Discord sent a malformed channel: {exc}") from None

    async def list_guild_roles(self, token: str, guild_id: str | int) -> list[GuildRole]:
        """The guild's roles with their permission bits (``@everyone`` included)."""
        data = await self._get(
            token, f"/guilds/{_guild_ref(guild_id)}/roles", forbidden_is_not_found=True
        )
        if not isinstance(data, list):
            raise DiscordUnavailable("Discord sent a malformed role list")
        try:
            return [
                GuildRole(
                    id=_snowflake_field(role, "id"),
                    permissions=_bitfield(role.get("permissions", "0")),
                )
                for role in (_require_mapping(item, "a role") for item in data)
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise DiscordUnavailable(f"Discord sent a malformed role: {exc}") from None

    async def get_guild_member(
        self, token: str, guild_id: str | int, user_id: str | int
    ) -> GuildMember:
        """A member of the guild (the bot itself, to compute its permissions);
        :class:`DiscordNotFound` when the bot or the member is not in the guild."""
        user_ref = str(user_id)
        if not _SNOWFLAKE.match(user_ref):
            raise DiscordNotFound("Not a Discord user id")
        data = _require_mapping(
            await self._get(
                token,
                f"/guilds/{_guild_ref(guild_id)}/members/{user_ref}",
                forbidden_is_not_found=True,
            ),
            "/guilds/{id}/members/{user_id}",
        )
        roles = data.get("roles")
        if not isinstance(roles, list) or not all(
            isinstance(r, str) and _SNOWFLAKE.match(r) for r in roles
        ):
            raise DiscordUnavailable("Discord sent a malformed member")
        return GuildMember(user_id=user_ref, role_ids=tuple(roles))

    # ------------------------------------------------------------------ plumbing

    async def _get(
        self,
        token: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        forbidden_is_not_found: bool = False,
    ) -> Any:
        token = _clean_token(token)
        if not _TOKEN.match(token):
            raise DiscordUnauthorized("That is not a Discord bot token", status=None)
        url = self.base_url + path
        headers = {"Authorization": f"Bot {token}"}
        for attempt in range(3):
            try:
                response = await self._http.get(url, params=params, headers=headers)
            except httpx.TimeoutException as exc:
                _log.warning("discord request timed out", extra={"path": path})
                raise DiscordUnavailable("Discord did not answer in time") from exc
            except httpx.HTTPError as exc:
                _log.warning(
                    "discord request failed", extra={"path": path, "error": type(exc).__name__}
                )
                raise DiscordUnavailable("Could not reach Discord") from exc
            _log.debug("discord GET %s -> %s", path, response.status_code)
            if response.status_code == 429 and attempt < 2:
                wait = _retry_after(response)
                if wait is not None and wait <= self.max_rate_limit_wait:
                    await asyncio.sleep(wait)
                    continue
            return _decode(response, forbidden_is_not_found=forbidden_is_not_found)
        raise AssertionError("unreachable")  # pragma: no cover


def _clean_token(token: object) -> str:
    """Trim what people paste around a token (spaces, a newline, a ``Bot`` prefix)."""
    if not isinstance(token, str):
        return ""
    token = token.strip()
    if token[:4].lower() == "bot ":
        token = token[4:].strip()
    return token


def _decode(response: httpx.Response, *, forbidden_is_not_found: bool) -> Any:
    status = response.status_code
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    code = code if isinstance(code, int) else None
    message = body.get("message") if isinstance(body, dict) else None
    detail = f"Discord answered {status}" + (f": {message}" if isinstance(message, str) else "")

    if 200 <= status < 300:
        if body is None:
            raise DiscordUnavailable("Discord sent a reply that is not JSON", status=status)
        return body
    if status == 401:
        raise DiscordUnauthorized(detail, status=status, code=code)
    if status == 404 or (status == 403 and forbidden_is_not_found):
        raise DiscordNotFound(detail, status=status, code=code)
    if status == 429:
        raise DiscordUnavailable(
            "Discord is rate limiting these requests", status=status, code=code
        )
    raise DiscordUnavailable(detail, status=status, code=code)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        body = response.json()
    except ValueError:
        body = None
    value: Any = body.get("retry_after") if isinstance(body, dict) else None
    if value is None:
        value = response.headers.get("Retry-After")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _require_mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise DiscordUnavailable(f"Discord sent a malformed answer for {what}")
    return data


def _str_field(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    return value


def _opt_str_field(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    return value


def _snowflake_field(data: Mapping[str, Any], key: str) -> str:
    value = str(data[key])
    if not _SNOWFLAKE.match(value):
        raise ValueError(f"{key} is not a snowflake")
    return value


def _guild_ref(guild_id: str | int) -> str:
    guild_ref = str(guild_id)
    if not _SNOWFLAKE.match(guild_ref):
        raise DiscordNotFound("Not a Discord guild id")
    return guild_ref


def _bitfield(value: Any) -> int:
    """A permission bitfield, which Discord sends as a string of digits."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError("a permission bitfield is not a string")
    number = int(value)
    if number < 0:
        raise ValueError("a permission bitfield is negative")
    return number


def _overwrite(item: Any) -> Overwrite:
    data = _require_mapping(item, "an overwrite")
    kind = data.get("type", ROLE)
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise TypeError("an overwrite's type is not a number")
    return Overwrite(
        id=_snowflake_field(data, "id"),
        type=kind,
        allow=_bitfield(data.get("allow", "0")),
        deny=_bitfield(data.get("deny", "0")),
    )


def _guild_channel(item: Any) -> GuildChannel:
    data = _require_mapping(item, "a channel")
    kind = data["type"]
    position = data.get("position", 0)
    if not isinstance(kind, int) or not isinstance(position, int):
        raise TypeError("a channel's type or position is not a number")
    parent = data.get("parent_id")
    overwrites = data.get("permission_overwrites")
    if overwrites is None:
        overwrites = []
    if not isinstance(overwrites, list):
        raise TypeError("permission_overwrites is not a list")
    return GuildChannel(
        id=_snowflake_field(data, "id"),
        name=_opt_str_field(data, "name") or "",
        type=kind,
        position=position,
        parent_id=None if parent is None else _snowflake_field(data, "parent_id"),
        overwrites=tuple(_overwrite(o) for o in overwrites),
    )


def _partial_guild(item: Any) -> PartialGuild:
    data = _require_mapping(item, "a guild")
    permissions = data.get("permissions")
    return PartialGuild(
        id=_snowflake_field(data, "id"),
        name=_str_field(data, "name"),
        icon=_opt_str_field(data, "icon"),
        owner=data.get("owner") is True,
        permissions=int(permissions) if permissions is not None else None,
    )
