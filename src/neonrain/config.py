"""Every setting of Neonrain, read once from the environment.

Nothing else in the package reads ``os.environ``: code receives a :class:`Settings` object (the app
keeps it on ``app.state.settings``), which also makes tests simple — they build their own.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./neonrain.db"
DEFAULT_SECRET_KEY_FILE = Path(".neonrain-secret")


def normalize_database_url(url: str) -> str:
    """Map the URL spellings people paste onto the async drivers SQLAlchemy needs."""
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class Settings(BaseSettings):
    """The configuration table of the README, one field per environment variable."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    database_pool_size: int = Field(30, alias="NEONRAIN_DB_POOL_SIZE", ge=2, le=1000)
    secret_key: str | None = Field(None, alias="NEONRAIN_SECRET_KEY")
    secret_key_file: Path = Field(DEFAULT_SECRET_KEY_FILE, alias="NEONRAIN_SECRET_KEY_FILE")
    internal_api_key: str | None = Field(None, alias="INTERNAL_API_KEY")
    backend_url: str = Field("http://127.0.0.1:8000", alias="NEONRAIN_BACKEND_URL")
    huma_api_key: str | None = Field(None, alias="HUMA_API_KEY")
    huma_api_url: str = Field("https://api.humalike.tech", alias="HUMA_API_URL")
    # The install's OpenAI-compatible engine (engines.md); it may point at a loopback server.
    openai_base_url: str | None = Field(None, alias="NEONRAIN_OPENAI_BASE_URL")
    openai_api_key: str | None = Field(None, alias="NEONRAIN_OPENAI_API_KEY")
    openai_model: str | None = Field(None, alias="NEONRAIN_OPENAI_MODEL")
    discord_api_url: str = Field("https://discord.com/api/v10", alias="DISCORD_API_URL")
    discord_gateway_url: str | None = Field(None, alias="DISCORD_GATEWAY_URL")
    allow_registration: bool = Field(True, alias="NEONRAIN_ALLOW_REGISTRATION")
    clerk_jwks_url: str | None = Field(None, alias="CLERK_JWKS_URL")
    clerk_issuer: str | None = Field(None, alias="CLERK_ISSUER")
    typing_wpm: float = Field(90.0, alias="NEONRAIN_TYPING_WPM", gt=0)
    allow_private_urls: bool = Field(False, alias="NEONRAIN_ALLOW_PRIVATE_URLS")
    # Peers whose X-Forwarded-For/-Proto headers are believed (comma-separated addresses or
    # networks, or "*"); by default none, so a client cannot choose its apparent address.
    forwarded_allow_ips: str = Field("", alias="FORWARDED_ALLOW_IPS")
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(8000, alias="PORT", ge=0, le=65535)
    web_concurrency: int = Field(1, alias="WEB_CONCURRENCY", ge=1, le=64)
    log_level: str = Field("INFO", alias="NEONRAIN_LOG_LEVEL")
    # Where a stopping worker keeps the reports it could not deliver (replayed at the next start).
    worker_spool_dir: Path = Field(Path("."), alias="NEONRAIN_WORKER_SPOOL_DIR")
    ci: bool = Field(False, alias="CI")

    @field_validator("database_url")
    @classmethod
    def _normalize_database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_forwarded_allow_ips(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if "*" in entries:
            return "*"
        normalized = []
        for entry in entries:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"FORWARDED_ALLOW_IPS: {entry!r} is not an IP address or network"
                ) from None
            single = network.num_addresses == 1 and "/" not in entry
            normalized.append(str(network.network_address) if single else str(network))
        return ",".join(normalized)

    @field_validator(
        "secret_key",
        "internal_api_key",
        "huma_api_key",
        "clerk_jwks_url",
        "clerk_issuer",
        "discord_gateway_url",
        "openai_base_url",
        "openai_api_key",
        "openai_model",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def clerk_enabled(self) -> bool:
        return bool(self.clerk_jwks_url)

    @property
    def openai_configured(self) -> bool:
        """Whether the install has an OpenAI-compatible engine (a base URL and a model)."""
        return bool(self.openai_base_url and self.openai_model)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def worker_spool_file(self, shard: tuple[int, int] | None = None) -> Path:
        """The report spool of a worker process (one per shard)."""
        suffix = f"-{shard[0]}of{shard[1]}" if shard is not None else ""
        return self.worker_spool_dir / f".neonrain-worker-spool{suffix}.json"

    def database_label(self) -> str:
        """The database URL without its password, for start-up lines and logs."""
        parts = urlsplit(self.database_url)
        if parts.password is None:
            return self.database_url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))

    def resolved_secret_key(self) -> str:
        """The secret key; generated once and kept in ``secret_key_file`` (mode 0600) when unset."""
        if self.secret_key:
            return self.secret_key
        path = self.secret_key_file
        if path.exists():
            value = path.read_text().strip()
            if value:
                self.secret_key = value
                return value
        value = secrets.token_urlsafe(48)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        self.secret_key = value
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
