"""Can the bot answer in a server right now — and if not, why, and what to do about it.

Pure functions over what :mod:`neonrain.flows` loads (the account, the worker's last report, the
install's settings, a server's configuration): no database, no Discord call, so the API, the pages
and ``neonrain doctor`` give the same answer from the same facts, and the dashboard can poll it.

Each check has an ``id``, a ``state`` (``ok``, ``problem`` or ``unknown`` — not known yet, e.g.
while the bot connects) and one sentence: what is wrong and what to do, or what is fine. A server
is **ready** only when every check is ok; :func:`summarize` turns that into the words the pages
show (Active / Off / On, but not answering: … / On — checking…).

Checks that depend on an earlier one (the gateway on the token, the guild on a live report, the
channels on the guild) are ``unknown`` while that one is not ok, so the first problem is always
the one to fix first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, Protocol

from pydantic import ValidationError

from neonrain.api_types import CheckId, CheckState, ReadinessCheck, ReadinessOut
from neonrain.contract import GuildReport
from neonrain.db.base import utcnow
from neonrain.discord_link.service import (
    TOKEN_INVALID,
    TOKEN_REJECTED,
    WORKER_REPORT_TTL,
    BotAccount,
    ReportFacts,
)
from neonrain.engines.service import CredentialFacts, InstallEngines

#: What each check is about, for the checklist on a server's page.
CHECK_TITLES: Final[Mapping[str, str]] = {
    "token": "Bot token",
    "gateway": "Connection to Discord",
    "intent": "Message content intent",
    "guild": "Bot in the server",
    "channels": "Channels",
    "engine": "Agent engine",
    "active": "Switched on",
}

START_WORKER: Final = (
    "“neonrain serve” runs it inside the web app; with “neonrain web”, run “neonrain worker” "
    "next to it (same INTERNAL_API_KEY, NEONRAIN_BACKEND_URL pointing at the web app)"
)

# ------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class Account:
    """Everything about one account that readiness reads; build it with :func:`account`."""

    connected: bool
    token_rejected: bool
    #: The worker's last report, if any (``fresh`` says whether it is recent enough to trust).
    report: ReportFacts | None
    fresh: bool
    #: The account's own OpenAI-compatible engine (its row in ``engine_credentials``), if any.
    credential: CredentialFacts | None
    install: InstallEngines
    guilds: Mapping[str, GuildReport] = field(default_factory=dict)

    @property
    def own_engine(self) -> bool:
        return self.credential is not None


def account(
    user: BotAccount,
    report: ReportFacts | None,
    *,
    credential: CredentialFacts | None,
    install: InstallEngines,
    now: datetime | None = None,
) -> Account:
    """The facts of ``user``'s account, as of ``now``."""
    connected = user.discord_token is not None
    fresh = report is not None and (now or utcnow()) - report.updated_at <= WORKER_REPORT_TTL
    rejected = connected and (
        user.discord_token_status == TOKEN_INVALID
        or (report is not None and (report.reason == "token_rejected"
                                    or report.state == "token_invalid"))
    )  # fmt: skip
    return Account(
        connected=connected,
        token_rejected=rejected,
        report=report if connected else None,
        fresh=fresh and connected,
        credential=credential,
        install=install,
        guilds=_guild_reports(report) if connected and fresh else {},
    )


def _guild_reports(report: ReportFacts | None) -> dict[str, GuildReport]:
    """The report's per-guild entries by guild id (entries that do not parse are left out)."""
    found: dict[str, GuildReport] = {}
    for entry in report.guilds if report is not None else ():
        try:
            guild = GuildReport.model_validate(entry)
        except ValidationError:
            continue
        found[guild.guild_id] = guild
    return found


class ServerFacts(Protocol):
    """What readiness reads of a server configuration (``ServerConfigOut`` has it)."""

    @property
    def guild_id(self) -> str: ...

    @property
    def guild_name(self) -> str: ...

    @property
    def bot_active(self) -> bool: ...

    @property
    def engine(self) -> str: ...


# ------------------------------------------------------------------------------------ checks


def _check(check_id: CheckId, state: CheckState, message: str) -> ReadinessCheck:
    return ReadinessCheck(id=check_id, state=state, message=message)


def token_check(acc: Account) -> ReadinessCheck:
    if not acc.connected:
        return _check(
            "token", "problem", "No bot is connected: connect your bot's token on the dashboard."
        )
    if acc.token_rejected:
        return _check("token", "problem", TOKEN_REJECTED)
    return _check("token", "ok", "The bot token is connected.")


def gateway_check(acc: Account) -> ReadinessCheck:
    if not acc.connected or acc.token_rejected:
        return _check("gateway", "unknown", "Checked once Discord accepts the bot token.")
    report = acc.report
    if report is None:
        return _check(
            "gateway",
            "problem",
            "The Discord worker has not picked up this bot yet. If this lasts more than a few "
            f"seconds, the worker is not running: {START_WORKER}.",
        )
    if not acc.fresh:
        return _check(
            "gateway",
            "problem",
            "The Discord worker has not reported for over two minutes: it is not running or "
            f"cannot reach the web app. Start it ({START_WORKER}) and check its log.",
        )
    detail = f" ({report.detail})" if report.detail else ""
    if report.reason == "crashed":
        return _check(
            "gateway",
            "problem",
            f"The bot's connection to Discord crashed{detail}. The worker retries by itself; "
            "if this lasts, check the worker's log.",
        )
    if report.state == "online":
        return _check("gateway", "ok", "Online: the bot is connected to Discord.")
    if report.state == "connecting":
        return _check("gateway", "unknown", f"Connecting to Discord…{detail}")
    return _check(
        "gateway",
        "problem",
        f"The worker reports the bot offline{detail}. It reconnects when the worker restarts; "
        "if this lasts, check the worker's log.",
    )


def intent_check(acc: Account) -> ReadinessCheck:
    report = acc.report
    if report is not None and acc.fresh and not acc.token_rejected:
        if report.reason == "intent_missing":
            return _check(
                "intent",
                "problem",
                "Discord refused the message content intent: switch on Message Content Intent "
                "in the Discord Developer Portal → your application → Bot → Privileged Gateway "
                "Intents. The worker retries by itself.",
            )
        if report.state == "online":
            return _check("intent", "ok", "The message content intent is on.")
    return _check("intent", "unknown", "Checked when the bot connects to Discord.")


def engine_check(acc: Account, engine: str) -> ReadinessCheck:
    """Whether ``engine`` can answer for this account."""
    if engine == "huma":
        if acc.install.huma:
            return _check("engine", "ok", "HUMA answers for this server.")
        return _check(
            "engine",
            "problem",
            "HUMA is not set up on this install (HUMA_API_KEY is missing): the operator sets "
            "it and restarts Neonrain, or this server uses an OpenAI-compatible engine instead.",
        )
    if engine == "openai":
        if not (acc.own_engine or acc.install.openai):
            return _check(
                "engine",
                "problem",
                "No OpenAI-compatible engine is set: add your own in Settings, or the operator "
                "sets NEONRAIN_OPENAI_BASE_URL and NEONRAIN_OPENAI_MODEL.",
            )
        report = acc.report
        if report is not None and report.engine_state == "error":
            detail = report.engine_detail or "no detail given"
            return _check(
                "engine",
                "problem",
                f"The OpenAI-compatible engine failed: {detail}. Check its address, model and "
                "key; the worker tries again when they change.",
            )
        whose = "your own" if acc.own_engine else "this install's"
        return _check("engine", "ok", f"The OpenAI-compatible engine ({whose}) answers here.")
    return _check("engine", "problem", f"Unknown agent engine {engine!r}: choose HUMA or OpenAI.")


def guild_check(acc: Account, server: ServerFacts) -> ReadinessCheck:
    if not server.bot_active:
        return _check("guild", "unknown", "Checked once the bot is switched on here.")
    if not acc.fresh or acc.token_rejected:
        return _check("guild", "unknown", "Checked once the worker reports on this bot.")
    guild = acc.guilds.get(server.guild_id)
    if guild is None:
        return _check("guild", "unknown", "The worker has not reported on this server yet.")
    if not guild.present:
        return _check(
            "guild",
            "problem",
            f"The bot is no longer in {server.guild_name} (it was removed, or the server is "
            "gone): invite it again with the invite link on the dashboard.",
        )
    return _check("guild", "ok", f"The bot is in {server.guild_name}.")


def channels_check(acc: Account, server: ServerFacts, guild: ReadinessCheck) -> ReadinessCheck:
    if guild.state != "ok":
        return _check("channels", "unknown", "Checked when the bot is in the server.")
    report = acc.guilds[server.guild_id]
    permissions = "View Channel, Read Message History and Send Messages"
    if report.problem:
        return _check(
            "channels",
            "problem",
            f"Discord refused the bot here: {report.problem}. Give the bot's role {permissions} "
            "in the channels it should use.",
        )
    watched, readable, sendable = (
        report.channels_watched, report.channels_readable, report.channels_sendable
    )  # fmt: skip
    channels = f"{watched} channel{'' if watched == 1 else 's'}"
    if watched == 0:
        return _check(
            "channels",
            "problem",
            "The bot has no channel to watch here: give its role View Channel where it should "
            "talk, and check the channels this server's settings allow.",
        )
    if readable == 0:
        return _check(
            "channels",
            "problem",
            f"The bot cannot read any of the {channels} it watches: give its role View Channel "
            "and Read Message History there.",
        )
    if sendable == 0:
        return _check(
            "channels",
            "problem",
            f"The bot cannot send messages in any of the {channels} it watches: give its role "
            "Send Messages there.",
        )
    return _check(
        "channels",
        "ok",
        f"The bot reads {readable} and can send in {sendable} of the {channels} it watches.",
    )


def active_check(server: ServerFacts) -> ReadinessCheck:
    if server.bot_active:
        return _check("active", "ok", "Switched on.")
    return _check("active", "problem", "Switched off: turn it on for the bot to take part here.")


# ------------------------------------------------------------------------------------ results


def _readiness(checks: list[ReadinessCheck]) -> ReadinessOut:
    return ReadinessOut(ready=all(c.state == "ok" for c in checks), checks=checks)


def server_readiness(acc: Account, server: ServerFacts) -> ReadinessOut:
    """Every check of one server, in the order to fix them."""
    guild = guild_check(acc, server)
    return _readiness(
        [
            token_check(acc),
            gateway_check(acc),
            intent_check(acc),
            guild,
            channels_check(acc, server, guild),
            engine_check(acc, server.engine),
            active_check(server),
        ]
    )


def account_readiness(acc: Account, engines: Iterable[str] = ()) -> ReadinessOut:
    """The account-level checks (token, gateway, intent, engine). The engine check covers the
    ``engines`` the account's servers use (the install's default when there are none); the
    first that cannot answer is the one reported."""
    used = sorted(set(engines)) or [
        "openai" if acc.install.openai and not acc.install.huma else "huma"
    ]
    engine_checks = [engine_check(acc, engine) for engine in used]
    engine = next((c for c in engine_checks if c.state != "ok"), None)
    if engine is None:
        engine = engine_checks[0]
        if len(engine_checks) > 1:
            engine = _check("engine", "ok", " ".join(c.message for c in engine_checks))
    return _readiness([token_check(acc), gateway_check(acc), intent_check(acc), engine])


SummaryKind = Literal["active", "off", "not_answering", "checking"]


@dataclass(frozen=True, slots=True)
class Summary:
    """How a server's state reads on the pages."""

    kind: SummaryKind
    #: Active, Off, On, but not answering, On — checking…
    headline: str
    #: The first problem's (or, while checking, the first unknown's) message.
    reason: str | None = None

    @property
    def label(self) -> str:
        """The whole state in words: the headline, and for a problem what it is."""
        if self.kind == "not_answering":
            return f"{self.headline}: {self.reason}"
        return self.headline


def first(readiness: ReadinessOut, state: CheckState) -> ReadinessCheck | None:
    return next((c for c in readiness.checks if c.state == state), None)


def summarize(readiness: ReadinessOut) -> Summary:
    """Active only when every check is ok; Off when switched off; otherwise why not."""
    active = next((c for c in readiness.checks if c.id == "active"), None)
    if active is not None and active.state != "ok":
        return Summary("off", "Off")
    if readiness.ready:
        return Summary("active", "Active")
    problem = first(readiness, "problem")
    if problem is not None:
        return Summary("not_answering", "On, but not answering", problem.message)
    pending = first(readiness, "unknown")
    return Summary("checking", "On — checking…", pending.message if pending else None)
