"""The agent engines an account can use: HUMA (the install's key) and an OpenAI-compatible model
(the account's own endpoint, else the install's).

An account's endpoint is checked like a website a user adds (``websites.fetch``: public
addresses only unless ``NEONRAIN_ALLOW_PRIVATE_URLS``) when it is saved and again before it is
called from here. Its key is Fernet ciphertext at rest (``state.cipher``, like Discord tokens); it
is decrypted only for the worker's tokens answer and for calls to the model, and never returned,
logged or put in an error. Every change of the credentials bumps the account's configuration
generation (the worker gets the new endpoint as a delta) and resets the state to ``unchecked``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from sqlalchemy import ColumnElement, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from neonrain.agents.secrets import redact
from neonrain.config import Settings
from neonrain.contract import STATUS_DETAIL_MAX, Engine, EngineState, OpenAIEndpoint
from neonrain.crypto import TokenCipher, TokenDecryptionError
from neonrain.db.changes import mark_config_changed
from neonrain.engines.models import EngineCredential
from neonrain.engines.schemas import (
    EngineOut,
    EnginesStatus,
    EngineTestOut,
    HumaEngineOut,
    OpenAIEngineOut,
    OpenAIEngineStatus,
    SetOpenAIBody,
)
from neonrain.errors import ApiError
from neonrain.openai_engine import EngineError, ModelClient
from neonrain.openai_engine import OpenAIEndpoint as ModelEndpoint
from neonrain.websites.fetch import Fetcher, FetchError
from neonrain.websites.urls import InvalidUrl, normalize_url

if TYPE_CHECKING:
    import httpx2  # comes with the openai SDK

log = logging.getLogger(__name__)

#: How long the Settings page's Test button waits for the model.
PROBE_TIMEOUT: Final = 20.0
UNCHECKED: Final = "unchecked"


# ------------------------------------------------------------------------------ what exists


@dataclass(frozen=True)
class InstallEngines:
    """What the install offers every account: HUMA (when it has a key) and the operator's
    OpenAI-compatible endpoint (which may be a loopback server), plus the address rule for the
    accounts' own endpoints."""

    huma: bool
    openai: OpenAIEndpoint | None
    allow_private_urls: bool = False

    @functools.cached_property
    def openai_wire(self) -> dict[str, Any] | None:
        """The install's endpoint as a token entry's ``openai`` (built once, shared)."""
        return self.openai.wire() if self.openai is not None else None

    @classmethod
    def from_settings(cls, settings: Settings) -> InstallEngines:
        endpoint = (
            OpenAIEndpoint(
                base_url=settings.openai_base_url,
                model=settings.openai_model,
                api_key=settings.openai_api_key,
            )
            if settings.openai_base_url and settings.openai_model
            else None
        )
        return cls(
            huma=bool(settings.huma_api_key),
            openai=endpoint,
            allow_private_urls=settings.allow_private_urls,
        )


#: An install without engines (tests, tools that build a tokens answer without settings).
NO_ENGINES: Final = InstallEngines(huma=False, openai=None)


@dataclass(frozen=True)
class ResolvedEndpoint:
    """The OpenAI-compatible endpoint an account's agents use, and whose it is."""

    endpoint: OpenAIEndpoint
    source: Literal["account", "install"]


def model_endpoint(endpoint: OpenAIEndpoint) -> ModelEndpoint:
    """The contract's endpoint as the engine library takes it."""
    return ModelEndpoint(endpoint.base_url, endpoint.model, endpoint.api_key)


_CREDENTIAL = select(EngineCredential).where(EngineCredential.user_id == bindparam("user_id"))


async def credential(session: AsyncSession, user_id: str) -> EngineCredential | None:
    """The account's own endpoint, as stored (the key encrypted)."""
    row: EngineCredential | None = await session.scalar(_CREDENTIAL, {"user_id": user_id})
    return row


def _decrypted_key(cipher: TokenCipher, row: EngineCredential) -> str | None:
    """The stored key in clear; raises :class:`TokenDecryptionError`."""
    return cipher.decrypt(row.api_key) if row.api_key is not None else None


def _clear_key(
    cipher: TokenCipher, user_id: str, key_ciphertext: str | None
) -> tuple[bool, str | None]:
    """``(True, the key in clear or None)``, or ``(False, None)`` (logged) when it was encrypted
    with another secret key: the account then has no usable engine of its own."""
    try:
        return True, cipher.decrypt(key_ciphertext) if key_ciphertext is not None else None
    except TokenDecryptionError:
        log.warning("engine key of user %s cannot be decrypted with this secret key", user_id)
        return False, None


def account_endpoint(cipher: TokenCipher, row: EngineCredential) -> OpenAIEndpoint | None:
    """The account's stored endpoint, ready to call (``None``: its key cannot be read)."""
    readable, key = _clear_key(cipher, row.user_id, row.api_key)
    if not readable:
        return None
    return OpenAIEndpoint(base_url=row.base_url, model=row.model, api_key=key)


async def resolve_openai(
    session: AsyncSession, cipher: TokenCipher, install: InstallEngines, user_id: str
) -> ResolvedEndpoint | None:
    """The account's own endpoint, else the install's, else ``None``."""
    row = await credential(session, user_id)
    if row is not None:
        endpoint = account_endpoint(cipher, row)
        return ResolvedEndpoint(endpoint, "account") if endpoint is not None else None
    if install.openai is not None:
        return ResolvedEndpoint(install.openai, "install")
    return None


def _openai_out(install: InstallEngines, row: EngineCredential | None) -> OpenAIEngineOut:
    if row is not None:
        return OpenAIEngineOut(
            available=True,
            source="account",
            base_url=row.base_url,
            model=row.model,
            has_api_key=row.api_key is not None,
        )
    if install.openai is not None:
        return OpenAIEngineOut(
            available=True,
            source="install",
            base_url=install.openai.base_url,
            model=install.openai.model,
            has_api_key=install.openai.api_key is not None,
        )
    return OpenAIEngineOut(
        available=False, source=None, base_url=None, model=None, has_api_key=False
    )


async def engine_out(session: AsyncSession, install: InstallEngines, user_id: str) -> EngineOut:
    """``GET /api/engine``."""
    row = await credential(session, user_id)
    return EngineOut(huma=HumaEngineOut(available=install.huma), openai=_openai_out(install, row))


# ---------------------------------------------------------------------- engine per server


def not_configured(engine: Engine) -> ApiError:
    if engine == "huma":
        message = (
            "HUMA is not configured on this Neonrain installation (no HUMA_API_KEY); "
            "choose an OpenAI-compatible model instead."
        )
    else:
        message = (
            "No OpenAI-compatible engine is set up: enter a base URL and a model in "
            "Settings → Agent engine first."
        )
    return ApiError(409, "ENGINE_NOT_CONFIGURED", message, engine=engine)


async def available(
    session: AsyncSession, install: InstallEngines, user_id: str, engine: Engine
) -> bool:
    """Whether ``engine`` can answer for the account."""
    if engine == "huma":
        return install.huma
    return install.openai is not None or await credential(session, user_id) is not None


async def require_available(
    session: AsyncSession, install: InstallEngines, user_id: str, engine: Engine
) -> None:
    """409 ``ENGINE_NOT_CONFIGURED`` unless ``engine`` can answer for the account."""
    if not await available(session, install, user_id, engine):
        raise not_configured(engine)


async def default_engine(session: AsyncSession, install: InstallEngines, user_id: str) -> Engine:
    """A new server's engine: HUMA, unless the install has no HUMA key and an OpenAI-compatible
    engine is available to the account."""
    if not install.huma and await available(session, install, user_id, "openai"):
        return "openai"
    return "huma"


# ------------------------------------------------------------------------------ writing


async def check_base_url(url: str, *, allow_private: bool) -> str:
    """The base URL in normal form, if an account may use it: http(s), and the SSRF rules of
    website fetching (its host must resolve to public addresses only, unless
    ``allow_private``). 400 ``INVALID_URL`` otherwise."""
    try:
        normalized = normalize_url(url)
    except InvalidUrl as exc:
        raise ApiError(400, "INVALID_URL", f"baseUrl: {exc}") from None
    try:
        await Fetcher(allow_private=allow_private).check(normalized)
    except FetchError as exc:
        raise ApiError(
            400,
            "INVALID_URL",
            f"This base URL cannot be used ({exc.message}). Use the provider's public address; "
            "a model on a private network can only be the installation's engine.",
        ) from None
    return normalized


async def set_openai(
    session: AsyncSession,
    cipher: TokenCipher,
    install: InstallEngines,
    user_id: str,
    body: SetOpenAIBody,
) -> EngineOut:
    """``PUT /api/engine/openai``: create or replace the account's endpoint."""
    base_url = await check_base_url(body.base_url, allow_private=install.allow_private_urls)
    key_sent = "api_key" in body.model_fields_set
    new_key = body.api_key or None  # "" is no key
    row = await credential(session, user_id)
    created = False
    if row is None:
        fresh = EngineCredential(
            user_id=user_id,
            base_url=base_url,
            model=body.model,
            api_key=cipher.encrypt(new_key) if new_key else None,
        )
        try:
            async with session.begin_nested():
                session.add(fresh)
        except IntegrityError:  # another request created it meanwhile: this one replaces it
            row = await credential(session, user_id)
            if row is None:  # pragma: no cover - deleted again at once
                raise
        else:
            row, created = fresh, True
    changed = created or _replace(cipher, row, base_url, body.model, key_sent, new_key)
    if changed:
        row.state, row.state_detail = UNCHECKED, ""
        await session.flush()
        await mark_config_changed(session, [user_id])
        await session.commit()
        log.info("engine credentials saved user=%s key=%s", user_id, row.api_key is not None)
    return EngineOut(huma=HumaEngineOut(available=install.huma), openai=_openai_out(install, row))


def _replace(
    cipher: TokenCipher,
    row: EngineCredential,
    base_url: str,
    model: str,
    key_sent: bool,
    new_key: str | None,
) -> bool:
    """Put the new values into ``row`` (the key only when one was sent); whether any changed."""
    changed = row.base_url != base_url or row.model != model
    row.base_url, row.model = base_url, model
    if key_sent:
        try:
            same_key = _decrypted_key(cipher, row) == new_key
        except TokenDecryptionError:
            same_key = False
        if not same_key:
            row.api_key = cipher.encrypt(new_key) if new_key else None
            changed = True
    return changed


async def remove_openai(session: AsyncSession, user_id: str) -> None:
    """``DELETE /api/engine/openai``: servers using it fall back to the install's engine."""
    result = await session.execute(
        delete(EngineCredential).where(EngineCredential.user_id == user_id)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        await mark_config_changed(session, [user_id])
        await session.commit()
        log.info("engine credentials removed user=%s", user_id)


async def record_state(
    session: AsyncSession,
    cipher: TokenCipher,
    user_id: str,
    endpoint: OpenAIEndpoint,
    state: EngineState,
    detail: str,
) -> bool:
    """Store what a call with the account's ``endpoint`` showed (a test, a refused key in the
    web chat) — unless the credentials changed meanwhile. Not a configuration change."""
    row = await credential(session, user_id)
    if row is None or (row.base_url, row.model) != (endpoint.base_url, endpoint.model):
        return False
    try:
        if _decrypted_key(cipher, row) != endpoint.api_key:
            return False
    except TokenDecryptionError:
        return False
    await session.execute(
        update(EngineCredential)
        .where(
            EngineCredential.id == row.id,
            EngineCredential.base_url == row.base_url,
            EngineCredential.model == row.model,
            _same_key(row.api_key),
        )
        .values(state=state, state_detail=redact(detail, endpoint.api_key)[:STATUS_DETAIL_MAX])
    )
    await session.commit()
    return True


def _same_key(ciphertext: str | None) -> ColumnElement[bool]:
    column = EngineCredential.api_key
    return column.is_(None) if ciphertext is None else column == ciphertext


# ------------------------------------------------------------------------------ testing


async def test_openai(
    session: AsyncSession,
    cipher: TokenCipher,
    install: InstallEngines,
    user_id: str,
    http_client: httpx2.AsyncClient | None,
    *,
    timeout: float = PROBE_TIMEOUT,
) -> EngineTestOut:
    """``POST /api/engine/openai/test``: one minimal completion with the endpoint in effect.
    The account's own endpoint keeps the result as its state."""
    resolved = await resolve_openai(session, cipher, install, user_id)
    if resolved is None:
        raise not_configured("openai")
    endpoint = resolved.endpoint
    if resolved.source == "account":
        await check_base_url(endpoint.base_url, allow_private=install.allow_private_urls)
    client = ModelClient(
        model_endpoint(endpoint), timeout=timeout, retries=0, http_client=http_client
    )
    try:
        model, latency = await client.probe()
    except EngineError as exc:
        message = redact(str(exc), endpoint.api_key)
        log.info(
            "engine test failed user=%s source=%s reason=%s status=%s",
            user_id,
            resolved.source,
            exc.code,
            exc.status,
        )
        if resolved.source == "account":
            await record_state(session, cipher, user_id, endpoint, "error", message)
        raise ApiError(
            502,
            "ENGINE_UNAVAILABLE",
            f"The model did not work: {message}",
            reason=exc.code,
            providerStatus=exc.status,
        ) from None
    finally:
        await client.aclose()
    if resolved.source == "account":
        await record_state(session, cipher, user_id, endpoint, "ok", "")
    return EngineTestOut(ok=True, model=model, latency_ms=max(1, round(latency)))


# ------------------------------------------------------------------------------ status


@dataclass(frozen=True)
class ReportedEngine:
    """The engine's state as the worker last reported it for an account."""

    state: str | None
    detail: str
    at: datetime


class CredentialFacts(Protocol):
    """What the status reads of an account's own engine (an ``EngineCredential`` or a row)."""

    @property
    def state(self) -> str: ...

    @property
    def state_detail(self) -> str: ...

    @property
    def updated_at(self) -> datetime: ...


def engines_status(
    install: InstallEngines, row: CredentialFacts | None, reported: ReportedEngine | None
) -> EnginesStatus:
    """The dashboard's ``engines``. The OpenAI-compatible engine's state is the newer of the
    worker's report and the account's own last check; a report older than the latest change of
    the account's credentials describes the old ones and is left out."""
    is_available = row is not None or install.openai is not None
    state: EngineState | None = None
    detail = ""
    if is_available:
        known: list[tuple[datetime, str, str]] = []
        if (
            reported is not None
            and reported.state in ("ok", "error")
            and (row is None or reported.at >= row.updated_at)
        ):
            known.append((reported.at, reported.state, reported.detail))
        if row is not None and row.state in ("ok", "error"):
            known.append((row.updated_at, row.state, row.state_detail))
        if known:
            _at, newest, newest_detail = max(known, key=lambda item: item[0])
            state = "error" if newest == "error" else "ok"
            detail = newest_detail if state == "error" else ""
    return EnginesStatus(
        huma=HumaEngineOut(available=install.huma),
        openai=OpenAIEngineStatus(available=is_available, state=state, detail=detail),
    )


# -------------------------------------------------------------------- the tokens read model


def with_account_endpoints(query: Any, user_id: InstrumentedAttribute[str]) -> Any:
    """``query`` (over accounts) with each account's own endpoint appended as three columns —
    base URL, model, key ciphertext (``NULL`` without one) — by an outer join: the tokens answer
    gets every account's engine in the query that reads the accounts."""
    return query.outerjoin(EngineCredential, EngineCredential.user_id == user_id).add_columns(
        EngineCredential.base_url, EngineCredential.model, EngineCredential.api_key
    )


_ENDPOINT_KEYS: Final = tuple(OpenAIEndpoint.wire_names().values())


def token_openai(
    cipher: TokenCipher,
    install: InstallEngines,
    user_id: str,
    base_url: str | None,
    model: str | None,
    key_ciphertext: str | None,
) -> dict[str, Any] | None:
    """A token entry's ``openai`` (wire names) from the columns of
    :func:`with_account_endpoints`: the account's endpoint with its key decrypted, else the
    install's, else ``None``. (Plain dicts: it runs for every account of a full answer.)"""
    if base_url is None or model is None:
        return install.openai_wire
    readable, key = _clear_key(cipher, user_id, key_ciphertext)
    return dict(zip(_ENDPOINT_KEYS, (base_url, model, key), strict=True)) if readable else None
