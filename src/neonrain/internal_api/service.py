"""The tokens read model: the configuration the worker reads (``GET /api/discord/tokens``),
with ETags, ``since`` deltas and long-polling. Reports coming back from the worker are written by
their domains (``servers.reports``, ``discord_link.service``).

``tokens`` costs a constant number of SQL queries whatever the number of accounts: one for the
generation, one for the accounts (with their own model endpoints, joined), one for their
configurations and one for their websites' newest successful content (window function), plus two
for removals in a delta answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from neonrain.accounts.models import User
from neonrain.contract import TOKEN_ENTRY_KEYS, WEBSITE_ENTRY_KEYS, TokenEntry
from neonrain.crypto import TokenCipher, TokenDecryptionError
from neonrain.db.base import iso
from neonrain.db.changes import ConfigChangeNotifier, ConfigRemoval, current_generation
from neonrain.engines import service as engines_service
from neonrain.engines.service import NO_ENGINES, InstallEngines
from neonrain.servers import service as servers_service
from neonrain.servers.models import UserServerConfig
from neonrain.sharding import in_shard
from neonrain.websites import service as websites_service

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 30.0
#: A token entry's model endpoint (``openai``), written after ``TOKEN_ENTRY_KEYS``.
OPENAI_KEY = TokenEntry.wire_names()["openai"]


# ------------------------------------------------------------------------------------ tokens


@dataclass(frozen=True, slots=True)
class TokensRequest:
    shard: int | None = None
    shards: int | None = None
    since: int | None = None

    @property
    def sharded(self) -> bool:
        return self.shards is not None and self.shards > 1

    def wants(self, user_id: str) -> bool:
        if not self.sharded:
            return True
        assert self.shard is not None and self.shards is not None
        return in_shard(user_id, self.shard, self.shards)

    def etag(self, generation: int) -> str:
        if self.sharded:
            return f'"{generation}-{self.shard}of{self.shards}"'
        return f'"{generation}"'


@dataclass(frozen=True, slots=True)
class TokensAnswer:
    """Either a JSON ``body`` (200, produced in chunks) or nothing (304), with the ETag of the
    generation it describes."""

    etag: str
    body: AsyncIterator[bytes] | None


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [part.strip() for part in if_none_match.split(",")]
    return any(c == "*" or c.removeprefix("W/") == etag for c in candidates)


async def tokens(
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: ConfigChangeNotifier,
    cipher: TokenCipher,
    request: TokensRequest,
    *,
    if_none_match: str | None,
    wait: float,
    engines: InstallEngines = NO_ENGINES,
) -> TokensAnswer:
    """The tokens answer; when the caller is up to date, hold up to ``wait`` seconds for a change.
    ``engines`` gives the install's model endpoint, for accounts without their own.

    No database connection is held while waiting. The waiter subscribes to the notifier *before*
    the generation is read, so a change committed in between still wakes it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(max(wait, 0.0), MAX_WAIT_SECONDS)
    if not if_none_match and (request.since is None or wait <= 0):
        # Nothing to compare with: build at once (the build reads the generation itself).
        return await _build_answer(sessionmaker, cipher, request, engines)
    while True:
        remaining = deadline - loop.time()
        waiter = asyncio.ensure_future(notifier.wait(remaining)) if remaining > 0 else None
        await asyncio.sleep(0)  # let the waiter take the current event
        try:
            async with sessionmaker() as session:
                generation = await current_generation(session)
            etag = request.etag(generation)
            up_to_date = etag_matches(if_none_match, etag) or (
                request.since is not None and request.since >= generation
            )
            if not up_to_date or waiter is None or notifier.closed:
                break
            await waiter
        finally:
            if waiter is not None and not waiter.done():
                waiter.cancel()
    if etag_matches(if_none_match, etag):
        return TokensAnswer(etag=etag, body=None)
    return await _build_answer(sessionmaker, cipher, request, engines)


async def _build_answer(
    sessionmaker: async_sessionmaker[AsyncSession],
    cipher: TokenCipher,
    request: TokensRequest,
    engines: InstallEngines,
) -> TokensAnswer:
    async with sessionmaker() as session:
        payload = await read_tokens_payload(session, cipher, request, engines)
    return TokensAnswer(
        etag=request.etag(payload.generation), body=payload.encode(sessionmaker, CHUNK_BYTES)
    )


def _ids_condition(
    column: ColumnElement[str] | InstrumentedAttribute[str], ids: Sequence[str], dialect: str
) -> ColumnElement[bool]:
    """``column IN ids`` with ONE bind parameter whatever the number of ids (an array on
    PostgreSQL, a JSON list on SQLite), so big shards neither explode the parameter count nor
    the number of queries."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", list(ids), type_=postgresql.ARRAY(Text)))
    values = func.json_each(bindparam("ids", json.dumps(list(ids)), type_=Text)).table_valued(
        "value"
    )
    return column.in_(select(values.c.value))


CHUNK_BYTES = 256 * 1024


# One encoder for every call: ``json.dumps`` with options builds a new encoder each time, which
# was a third of the cost of a full answer.
_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass
class TokensPayload:
    """The seed's ``{tokens: [...]}`` plus ``generation`` and ``removedUserIds``, read except for
    the websites' Markdown, which :meth:`encode` streams from the database while it writes the
    JSON. The answer can be tens of megabytes (every page of every server); streaming keeps the
    server's memory to a few chunks instead of several copies of the whole answer.
    """

    generation: int
    # user id -> (token entry without its servers, ids of its configurations in answer order)
    entries: dict[str, tuple[dict[str, Any], list[str]]]
    removed: list[str]
    configs_of: ColumnElement[bool]  # the configurations whose websites belong in the answer
    server_of: dict[str, dict[str, Any]]  # configuration id -> its server entry

    async def encode(
        self, sessionmaker: async_sessionmaker[AsyncSession], chunk_bytes: int
    ) -> AsyncIterator[bytes]:
        """The answer's JSON, in chunks of about ``chunk_bytes``."""
        parts: list[str] = []
        size = 0

        def add(text: str) -> None:
            nonlocal size
            parts.append(text)
            size += len(text)

        def take() -> bytes:
            nonlocal size
            chunk = "".join(parts).encode("utf-8")
            parts.clear()
            size = 0
            return chunk

        add(f'{{"generation":{self.generation},"removedUserIds":{_json(self.removed)},"tokens":[')
        contents = self._contents(sessionmaker)
        try:
            pending = await anext(contents, None)
            for t, (head, config_ids) in enumerate(self.entries.values()):
                add(("," if t else "") + _json(head)[:-1] + ',"servers":[')
                for s, config_id in enumerate(config_ids):
                    server = _json(self.server_of[config_id])
                    add(("," if s else "") + server[:-1] + ',"websites":[')
                    separator = ""
                    # Contents come in configuration order; skip those of configurations that
                    # are not in this answer (a user left out because their token cannot be
                    # decrypted, a configuration added since the configurations were read).
                    while pending is not None and (
                        pending.config_id == config_id or pending.config_id not in self.server_of
                    ):
                        if pending.config_id == config_id:
                            add(separator + _json(_website(pending)))
                            separator = ","
                            if size >= chunk_bytes:
                                yield take()
                        pending = await anext(contents, None)
                    add("]}")
                add("]}")
                if size >= chunk_bytes:
                    yield take()
        finally:
            await contents.aclose()
        add("]}")
        yield take()

    async def _contents(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> AsyncGenerator[websites_service.WebsiteContent, None]:
        if not self.server_of:
            return
        async with sessionmaker() as session:
            async for content in websites_service.stream_successful_contents(
                session, self.configs_of
            ):
                yield content


def _website(content: websites_service.WebsiteContent) -> dict[str, Any]:
    return dict(
        zip(
            WEBSITE_ENTRY_KEYS,
            (content.url, content.name, content.markdown, iso(content.scraped_at)),
            strict=True,
        )
    )


async def read_tokens_payload(
    session: AsyncSession,
    cipher: TokenCipher,
    request: TokensRequest,
    engines: InstallEngines = NO_ENGINES,
) -> TokensPayload:
    """Everything of the answer but the websites' Markdown, in at most five queries."""
    # The generation first: everything read afterwards is at least that new, so a worker that
    # later asks ``since=generation`` cannot miss a change.
    generation = await current_generation(session)
    dialect = session.get_bind().dialect.name

    wanted: ColumnElement[bool] = User.discord_token.is_not(None)
    if request.since is not None:
        wanted = wanted & (User.config_generation > request.since)
    accounts = engines_service.with_account_endpoints(
        select(User.id, User.discord_token).where(wanted).order_by(User.id), User.id
    )
    users = [row for row in (await session.execute(accounts)).all() if request.wants(row[0])]
    removed = await _removed_users(session, request) if request.since is not None else []

    entries: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for user_id, ciphertext, *endpoint in users:
        try:
            token = cipher.decrypt(ciphertext or "")
        except TokenDecryptionError:
            log.warning("skipping user %s: stored Discord token cannot be decrypted", user_id)
            removed.append(user_id)
            continue
        head = dict(zip(TOKEN_ENTRY_KEYS, (token, user_id), strict=True))
        head[OPENAI_KEY] = engines_service.token_openai(cipher, engines, user_id, *endpoint)
        entries[user_id] = (head, [])

    configs_of: ColumnElement[bool]
    if request.sharded or request.since is not None:
        configs_of = _ids_condition(UserServerConfig.user_id, list(entries), dialect)
    else:
        configs_of = UserServerConfig.user_id.in_(select(User.id).where(wanted))
    server_of = await _add_servers(session, entries, configs_of) if entries else {}
    return TokensPayload(generation, entries, sorted(set(removed)), configs_of, server_of)


async def _add_servers(
    session: AsyncSession,
    entries: dict[str, tuple[dict[str, Any], list[str]]],
    configs_of: ColumnElement[bool],
) -> dict[str, dict[str, Any]]:
    """Reads every configuration (without websites), lists its id under its token entry and
    returns the configurations' server entries by id."""
    rows = await session.execute(servers_service.entries_of(configs_of))
    server_of: dict[str, dict[str, Any]] = {}
    for row in rows.all():
        config_id, user_id = row[0], row[1]
        entry = entries.get(user_id)
        if entry is None:
            continue
        server_of[config_id] = servers_service.server_entry_fields(row[2:])
        entry[1].append(config_id)
    return server_of


async def _removed_users(session: AsyncSession, request: TokensRequest) -> list[str]:
    """Users to drop since ``request.since``: token disconnected, or account deleted."""
    assert request.since is not None
    disconnected = (
        await session.scalars(
            select(User.id).where(
                User.discord_token.is_(None), User.config_generation > request.since
            )
        )
    ).all()
    deleted = (
        await session.scalars(
            select(ConfigRemoval.user_id).where(ConfigRemoval.generation > request.since)
        )
    ).all()
    return [user_id for user_id in (*disconnected, *deleted) if request.wants(user_id)]
