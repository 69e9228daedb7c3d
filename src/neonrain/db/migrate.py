"""``neonrain db upgrade``: bring any database — empty, ours, or a legacy one — to the head.

Everything happens on one connection in one transaction (SQLite included, with an explicit
``BEGIN``), so a failure halfway leaves the database as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from neonrain.crypto import TokenCipher
from neonrain.db import legacy
from neonrain.db.engine import prepare_sqlite_file

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LEGACY_SUMMARY_KEYS = (
    "users",
    "configurations created",
    "websites moved",
    "conversations converted",
    "tokens encrypted",
)


class UnknownDatabase(Exception):
    """The target database holds tables that are neither Neonrain's nor the legacy product's."""


@dataclass
class UpgradeReport:
    kind: str
    from_revision: str | None
    to_revision: str
    adopted_objects: list[str] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision

    def lines(self) -> list[str]:
        """The human summary that ``neonrain db upgrade`` prints."""
        if not self.changed:
            return [f"database already at {self.to_revision}; nothing to do"]
        is_legacy = self.kind == legacy.DatabaseKind.LEGACY.value
        if is_legacy:
            lines = ["adopted a legacy (single-server) Neonrain database"]
        elif self.from_revision is None:
            lines = ["created a new database"]
        else:
            lines = [f"upgraded the database from {self.from_revision}"]
        if self.adopted_objects:
            lines.append("  created missing legacy objects: " + ", ".join(self.adopted_objects))
        keys = list(LEGACY_SUMMARY_KEYS) if is_legacy else []
        keys += [key for key in sorted(self.summary) if key not in keys and self.summary[key]]
        lines += [f"  {key}: {self.summary.get(key, 0)}" for key in keys]
        lines.append(f"now at {self.to_revision}")
        return lines


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_sync(connection: Connection, cipher: TokenCipher) -> UpgradeReport:
    config = alembic_config()
    config.attributes["connection"] = connection
    config.attributes["token_cipher"] = cipher
    config.attributes["summary"] = {}

    kind = legacy.detect(connection)
    adopted: list[str] = []
    if kind is legacy.DatabaseKind.UNKNOWN:
        raise UnknownDatabase(
            "the database has tables but is neither a Neonrain database nor an original "
            "(single-server) Neonrain database; refusing to touch it"
        )
    if kind is legacy.DatabaseKind.LEGACY:
        adopted = legacy.adopt(connection)
        command.stamp(config, legacy.LEGACY_REVISION)
    before = _current_revision(connection)
    command.upgrade(config, "head")
    after = _current_revision(connection)
    assert after is not None
    return UpgradeReport(
        kind=kind.value,
        from_revision=before if kind is not legacy.DatabaseKind.EMPTY else None,
        to_revision=after,
        adopted_objects=adopted,
        summary=dict(config.attributes["summary"]),
    )


def _transactional_sqlite(engine: Any) -> None:
    """pysqlite commits DDL on its own; take over so the whole upgrade is one transaction."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Batch migrations rebuild tables; cascades must not fire while they do.
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


async def upgrade_database(database_url: str, cipher: TokenCipher) -> UpgradeReport:
    """Upgrade (or create, or adopt) the database at ``database_url`` to the head revision."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        prepare_sqlite_file(url.database or "")
    engine = create_async_engine(database_url)
    if url.get_backend_name() == "sqlite":
        _transactional_sqlite(engine)
    try:
        async with engine.connect() as connection:
            report = await connection.run_sync(_upgrade_sync, cipher)
            await connection.commit()
    finally:
        await engine.dispose()
    return report
