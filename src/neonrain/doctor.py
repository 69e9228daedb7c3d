"""``neonrain doctor``: what an operator checks when a bot stays silent.

Each check says what it tried (the address, for network checks) and what it found, as one line:

* the database is reachable and at the newest migration;
* the secret key is present and decrypts every stored Discord token and engine key;
* HUMA answers with the key (its cheapest authenticated call: reading an agent that does not
  exist, which a valid key answers with 404);
* the install's OpenAI-compatible engine answers ``GET {base}/models`` with its key and lists
  the configured model;
* Discord's REST API answers ``GET /gateway`` (no token needed);
* the web app accepts this process's ``INTERNAL_API_KEY`` (when ``NEONRAIN_BACKEND_URL`` is set);
* with ``accounts``, every server of every connected account is ready to answer — computed by
  :mod:`neonrain.readiness`, the same function as the API's.

Nothing here writes: a missing SQLite file or secret key file is reported, not created. Every
network call has ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from neonrain import flows, readiness
from neonrain.accounts.models import User
from neonrain.config import Settings
from neonrain.crypto import TokenCipher, TokenDecryptionError
from neonrain.db.engine import create_engine, create_sessionmaker
from neonrain.db.migrate import head_revision
from neonrain.engines.models import EngineCredential
from neonrain.engines.service import InstallEngines
from neonrain.huma import HumaAPIError, HumaAuthError, HumaRestClient, HumaTimeoutError
from neonrain.servers import service as servers_service

TIMEOUT_SECONDS = 10.0
#: An agent id no HUMA agent has: reading it costs HUMA nothing and proves the key works.
PROBE_AGENT_ID = "neonrain-doctor-probe"

Status = Literal["ok", "fail", "skip"]
MARKS = {"ok": "✓", "fail": "✗", "skip": "–"}


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    check: str
    status: Status
    message: str
    #: The address a network check tried.
    target: str | None = None
    #: For a server: its readiness, as ``GET /api/servers/:id`` answers it.
    readiness: dict[str, Any] | None = None

    def line(self) -> str:
        return f"{MARKS[self.status]} {self.check}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "status": self.status, "message": self.message}
        if self.target is not None:
            out["target"] = self.target
        if self.readiness is not None:
            out["readiness"] = self.readiness
        return out


@dataclass
class Report:
    database: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.status == "fail" for f in self.findings)

    def text(self) -> str:
        failed = sum(1 for f in self.findings if f.status == "fail")
        lines = [f"Neonrain doctor — database {self.database}"]
        lines += [f.line() for f in self.findings]
        lines.append(
            "Everything checked is fine."
            if not failed
            else f"{failed} problem{'' if failed == 1 else 's'} found (marked ✗)."
        )
        return "\n".join(lines)

    def json(self) -> str:
        body = {
            "ok": self.ok,
            "database": self.database,
            "checks": [f.as_json() for f in self.findings],
        }
        return json.dumps(body, indent=2, ensure_ascii=False)


async def run(
    settings: Settings, *, accounts: bool = False, timeout: float = TIMEOUT_SECONDS
) -> Report:
    """Every check, in a fixed order; the network checks run at the same time."""
    report = Report(database=settings.database_label())
    database, engine = await check_database(settings, timeout)
    report.findings.append(database)
    try:
        if engine is None:
            report.findings.append(
                Finding("secret key", "skip", "not checked: the database is not usable")
            )
        else:
            report.findings.append(await check_secret_key(settings, engine))
        report.findings += await asyncio.gather(
            check_huma(settings, timeout),
            check_openai(settings, timeout),
            check_discord(settings, timeout),
            check_internal_api(settings, timeout),
        )
        if accounts:
            if engine is None:
                report.findings.append(
                    Finding("accounts", "skip", "not checked: the database is not usable")
                )
            else:
                report.findings += await check_accounts(settings, engine)
    finally:
        if engine is not None:
            await engine.dispose()
    return report


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------------------------------ database


def _file_exists(path: str) -> bool:
    return Path(path).expanduser().exists()


async def check_database(settings: Settings, timeout: float) -> tuple[Finding, AsyncEngine | None]:
    """(the finding, an engine when the database is reachable and migrated)."""
    url = make_url(settings.database_url)
    label = settings.database_label()
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        exists = bool(path) and path != ":memory:"
        if exists:
            exists = await asyncio.to_thread(_file_exists, path)
        if not exists:
            return Finding(
                "database",
                "fail",
                f"no database file at {path or '(none)'}: run `neonrain db upgrade` (or "
                "`neonrain serve`, which creates it), or point DATABASE_URL at it",
                target=label,
            ), None
        connect_args: dict[str, Any] = {}
    else:
        connect_args = {"timeout": timeout}
    engine = create_engine(settings.database_url, pool_size=2, connect_args=connect_args)
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            revision = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    except TimeoutError:
        await engine.dispose()
        return Finding(
            "database", "fail", f"{label} did not answer within {timeout:g} s", target=label
        ), None
    except Exception as exc:
        await engine.dispose()
        return Finding(
            "database", "fail", f"cannot reach {label}: {_error(exc)}", target=label
        ), None
    head = head_revision()
    if revision is None:
        await engine.dispose()
        return Finding(
            "database",
            "fail",
            f"{label} is reachable but not migrated (no Neonrain schema): run "
            "`neonrain db upgrade`",
            target=label,
        ), None
    if revision != head:
        await engine.dispose()
        return Finding(
            "database",
            "fail",
            f"{label} is at migration {revision}, the newest is {head}: run `neonrain db upgrade`",
            target=label,
        ), None
    return Finding(
        "database", "ok", f"reachable, at the newest migration ({head})", target=label
    ), engine


# ------------------------------------------------------------------------------------ secrets


def _secret_key(settings: Settings) -> tuple[str | None, str]:
    """(the key or None, where it comes from) — without generating one."""
    if settings.secret_key:
        return settings.secret_key, "NEONRAIN_SECRET_KEY"
    path = settings.secret_key_file
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value, str(path)
    return None, f"NEONRAIN_SECRET_KEY is not set and {path} does not exist"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


async def check_secret_key(settings: Settings, engine: AsyncEngine) -> Finding:
    async with create_sessionmaker(engine)() as session:
        tokens = list(
            (
                await session.scalars(
                    select(User.discord_token).where(User.discord_token.is_not(None))
                )
            ).all()
        )
        keys = list(
            (
                await session.scalars(
                    select(EngineCredential.api_key).where(EngineCredential.api_key.is_not(None))
                )
            ).all()
        )
    key, source = _secret_key(settings)
    stored = f"{_count(len(tokens), 'stored Discord token')} and {_count(len(keys), 'engine key')}"
    if key is None:
        if not tokens and not keys:
            return Finding(
                "secret key",
                "skip",
                f"not set — {source}; nothing is stored yet, and the first start generates one "
                "(every process must then use that same key)",
            )
        return Finding("secret key", "fail", f"missing — {source}: {stored} cannot be read")
    cipher = TokenCipher(key)

    def unreadable(values: list[str | None]) -> int:
        failed = 0
        for value in values:
            try:
                cipher.decrypt(value or "")
            except TokenDecryptionError:
                failed += 1
        return failed

    bad_tokens, bad_keys = unreadable(list(tokens)), unreadable(list(keys))
    if bad_tokens or bad_keys:
        return Finding(
            "secret key",
            "fail",
            f"the key from {source} cannot decrypt {bad_tokens} of "
            f"{_count(len(tokens), 'stored Discord token')} and {bad_keys} of "
            f"{_count(len(keys), 'engine key')}: they were stored with another key "
            "(every process must use the same NEONRAIN_SECRET_KEY, and it must never change); "
            "set the original key, or have those accounts connect again",
        )
    if not tokens and not keys:
        return Finding("secret key", "ok", f"present (from {source}); nothing stored yet")
    return Finding("secret key", "ok", f"present (from {source}); decrypts all {stored}")


# ------------------------------------------------------------------------------------ network


async def check_huma(settings: Settings, timeout: float) -> Finding:
    url = settings.huma_api_url.rstrip("/")
    if not settings.huma_api_key:
        return Finding(
            "HUMA", "skip", "HUMA_API_KEY is not set: servers on the HUMA engine cannot answer"
        )
    try:
        async with HumaRestClient(url, settings.huma_api_key, timeout=timeout) as client:
            await client.get_agent(PROBE_AGENT_ID)
    except HumaAuthError as exc:
        return Finding(
            "HUMA",
            "fail",
            f"{url} refused the key (HTTP {exc.status}): check HUMA_API_KEY",
            target=url,
        )
    except HumaTimeoutError:
        return Finding("HUMA", "fail", f"{url} did not answer within {timeout:g} s", target=url)
    except HumaAPIError as exc:
        why = f"answered HTTP {exc.status}" if exc.status else f"cannot be reached ({exc})"
        return Finding("HUMA", "fail", f"{url} {why}", target=url)
    return Finding("HUMA", "ok", f"{url} answers and accepts the key", target=url)


async def _get(
    url: str, timeout: float, headers: dict[str, str] | None = None
) -> httpx.Response | str:
    """The response, or why there is none (one sentence)."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            return await http.get(url, headers=headers)
    except httpx.TimeoutException:
        return f"did not answer within {timeout:g} s"
    except httpx.HTTPError as exc:
        return f"cannot be reached ({_error(exc)})"


async def check_openai(settings: Settings, timeout: float) -> Finding:
    name = "OpenAI-compatible engine"
    base, model = settings.openai_base_url, settings.openai_model
    if not base and not model:
        return Finding(name, "skip", "not configured (NEONRAIN_OPENAI_BASE_URL, _MODEL)")
    if not base or not model:
        missing = "NEONRAIN_OPENAI_BASE_URL" if not base else "NEONRAIN_OPENAI_MODEL"
        return Finding(name, "fail", f"{missing} is not set: the engine needs both")
    url = f"{base.rstrip('/')}/models"
    key = settings.openai_api_key
    answer = await _get(url, timeout, {"Authorization": f"Bearer {key}"} if key else None)
    if isinstance(answer, str):
        return Finding(name, "fail", f"{url} {answer}", target=url)
    if answer.status_code in (401, 403):
        return Finding(
            name,
            "fail",
            f"{url} refused the key (HTTP {answer.status_code}): check NEONRAIN_OPENAI_API_KEY",
            target=url,
        )
    if answer.status_code != 200:
        return Finding(name, "fail", f"{url} answered HTTP {answer.status_code}", target=url)
    try:
        listed = [str(m.get("id")) for m in answer.json().get("data", []) if isinstance(m, dict)]
    except (ValueError, AttributeError):
        return Finding(name, "fail", f"{url} did not answer a model list", target=url)
    if model not in listed:
        return Finding(
            name,
            "fail",
            f"{url} answers, but model {model!r} is not among the {len(listed)} it lists: "
            "check NEONRAIN_OPENAI_MODEL (or pull the model on a local server)",
            target=url,
        )
    return Finding(name, "ok", f"{url} answers and lists model {model!r}", target=url)


async def check_discord(settings: Settings, timeout: float) -> Finding:
    url = f"{settings.discord_api_url.rstrip('/')}/gateway"
    answer = await _get(url, timeout)
    if isinstance(answer, str):
        return Finding("Discord", "fail", f"{url} {answer}", target=url)
    if answer.status_code != 200:
        return Finding("Discord", "fail", f"{url} answered HTTP {answer.status_code}", target=url)
    return Finding("Discord", "ok", f"{url} answers", target=url)


async def check_internal_api(settings: Settings, timeout: float) -> Finding:
    name = "internal API"
    if "backend_url" not in settings.model_fields_set:
        return Finding(
            name, "skip", "NEONRAIN_BACKEND_URL is not set (a separate worker would need it)"
        )
    url = f"{settings.backend_url.rstrip('/')}/api/discord/tokens?wait=0"
    if not settings.internal_api_key:
        return Finding(
            name,
            "fail",
            "INTERNAL_API_KEY is not set: the worker cannot authenticate to the web app",
            target=url,
        )
    headers = {"X-API-Key": settings.internal_api_key}
    try:
        async with (
            httpx.AsyncClient(timeout=timeout) as http,
            http.stream("GET", url, headers=headers) as response,  # the body is not needed
        ):
            status = response.status_code
    except httpx.TimeoutException:
        return Finding(name, "fail", f"{url} did not answer within {timeout:g} s", target=url)
    except httpx.HTTPError as exc:
        return Finding(
            name, "fail", f"the web app at {url} cannot be reached ({_error(exc)})", target=url
        )
    if status in (200, 304):
        return Finding(name, "ok", f"{url} accepts this INTERNAL_API_KEY", target=url)
    if status == 401:
        return Finding(
            name,
            "fail",
            f"{url} refused the key (HTTP 401): the web app and this process use different "
            "INTERNAL_API_KEY values",
            target=url,
        )
    return Finding(name, "fail", f"{url} answered HTTP {status}", target=url)


# ------------------------------------------------------------------------------------ accounts


async def check_accounts(settings: Settings, engine: AsyncEngine) -> list[Finding]:
    """One line per server of every connected account: ready, off, checking, or why not."""
    findings: list[Finding] = []
    async with create_sessionmaker(engine)() as session:
        users = (
            await session.scalars(
                select(User).where(User.discord_token.is_not(None)).order_by(User.email, User.id)
            )
        ).all()
        for user in users:
            who = user.email or user.clerk_user_id or user.id
            account = await flows.load_account(
                session, InstallEngines.from_settings(settings), user
            )
            servers = await servers_service.summaries(session, user.id)
            if not servers:
                findings.append(Finding(f"account {who}", "skip", "no servers added yet"))
            for server in sorted(servers, key=lambda s: (s.guild_name, s.guild_id)):
                findings.append(_server_finding(who, account, server))
    if not findings:
        findings.append(Finding("accounts", "skip", "no account has connected a bot yet"))
    return findings


def _server_finding(
    who: str, account: readiness.Account, server: servers_service.ConfigSummary
) -> Finding:
    """Active is fine, Off is the owner's choice and "checking" not known yet; only a server
    switched on that cannot answer is a failure."""
    result = readiness.server_readiness(account, server)
    summary = readiness.summarize(result)
    status: Status = "skip"
    message = summary.headline
    if summary.kind == "active":
        status, message = "ok", "Active: the bot can answer"
    elif summary.kind == "not_answering":
        status, message = "fail", summary.label
    elif summary.kind == "off":
        message = "Off (switched off on the dashboard)"
    elif summary.reason:
        message = f"{summary.headline} ({summary.reason})"
    return Finding(
        f"{who} · {server.guild_name}",
        status,
        message,
        readiness=result.model_dump(mode="json", by_alias=True),
    )
