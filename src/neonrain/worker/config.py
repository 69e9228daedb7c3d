"""The worker's view of the configuration, as ``GET /api/discord/tokens`` describes it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from neonrain.huma.prompt import ServerConfig, Website


@dataclass(frozen=True)
class GuildConfig:
    """One account's configuration for one guild (the seed's ``ServerConfig``)."""

    server_id: str
    guild_id: str
    guild_name: str
    bot_active: bool
    bot_name: str
    personality: str
    rules: str
    information: str
    websites: tuple[Website, ...] = ()

    def for_agent(self) -> ServerConfig:
        return self._agent_config

    @cached_property
    def _agent_config(self) -> ServerConfig:
        # Built once per configuration: every context update of the guild reads it.
        return ServerConfig(
            bot_name=self.bot_name,
            server_name=self.guild_name,
            personality=self.personality,
            rules=self.rules,
            information=self.information,
            websites=self.websites,
        )


@dataclass(frozen=True)
class TokenConfig:
    """One account's bot token and its servers."""

    user_id: str
    token: str
    servers: tuple[GuildConfig, ...] = ()

    @cached_property
    def active_guilds(self) -> dict[str, GuildConfig]:
        """The seed's monitored guilds: the servers whose bot is switched on (looked up for
        every message, so built once per configuration; do not modify it)."""
        return {s.guild_id: s for s in self.servers if s.bot_active}


def parse_token_entry(entry: Mapping[str, Any]) -> TokenConfig:
    servers = []
    for server in entry.get("servers") or []:
        websites = tuple(
            Website(
                name=str(site.get("name") or site.get("url") or ""),
                url=str(site.get("url") or ""),
                content=str(site.get("markdown") or ""),
                scraped_at=site.get("scrapedAt"),
            )
            for site in server.get("websites") or []
            if site.get("markdown")
        )
        servers.append(
            GuildConfig(
                server_id=str(server.get("serverId") or ""),
                guild_id=str(server["guildId"]),
                guild_name=str(server.get("guildName") or server["guildId"]),
                bot_active=bool(server.get("botActive")),
                bot_name=str(server.get("botName") or "Assistant"),
                personality=str(server.get("personality") or ""),
                rules=str(server.get("rules") or ""),
                information=str(server.get("information") or ""),
                websites=websites,
            )
        )
    return TokenConfig(
        user_id=str(entry["userId"]), token=str(entry["discordToken"]), servers=tuple(servers)
    )


@dataclass
class ConfigSnapshot:
    """Every account's configuration as last read, with the generation it describes."""

    generation: int | None = None
    by_user: dict[str, TokenConfig] = field(default_factory=dict)

    def apply(self, body: Mapping[str, Any], *, delta: bool) -> None:
        """Take a full answer, or a ``since`` delta (changed entries + ``removedUserIds``)."""
        entries = [parse_token_entry(e) for e in body.get("tokens") or []]
        if not delta:
            self.by_user = {e.user_id: e for e in entries}
        else:
            for user_id in body.get("removedUserIds") or []:
                self.by_user.pop(str(user_id), None)
            for entry in entries:
                self.by_user[entry.user_id] = entry
        generation = body.get("generation")
        self.generation = int(generation) if isinstance(generation, int) else None

    def tokens(self) -> dict[str, list[TokenConfig]]:
        """Accounts grouped by token: one Discord connection serves every account using it."""
        grouped: dict[str, list[TokenConfig]] = {}
        for config in self.by_user.values():
            grouped.setdefault(config.token, []).append(config)
        return grouped


def guild_ids(configs: Iterable[TokenConfig]) -> set[str]:
    return {guild for config in configs for guild in config.active_guilds}
