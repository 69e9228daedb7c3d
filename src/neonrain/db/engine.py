"""Engine and session factory for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


#: Connections a process keeps by default (``NEONRAIN_DB_POOL_SIZE``). There is no overflow:
#: SQLAlchemy closes overflow connections again on return, so a steady load above the pool size
#: started a PostgreSQL backend per request.
DEFAULT_POOL_SIZE = 30
#: A pooled connection idle this long is pinged before use (a restarted database leaves dead
#: ones behind). Pinging on every checkout, as ``pool_pre_ping`` does, costs three round trips
#: (BEGIN, a query, ROLLBACK) per request under load, where connections are seconds old at most.
PING_AFTER_IDLE_SECONDS = 5.0


def prepare_sqlite_file(database: str) -> None:
    """Create a SQLite database's directory, and the file itself readable by its owner only
    (0600, like the secret key file) when it does not exist yet: it holds password hashes and
    encrypted tokens. SQLite gives its ``-journal`` and ``-wal`` files the database file's mode.
    An existing file keeps its mode."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def create_engine(url: str, *, pool_size: int = DEFAULT_POOL_SIZE, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite foreign keys are switched on (cascades depend on them), on
    PostgreSQL a fixed pool of ``pool_size`` connections checked after idling."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        prepare_sqlite_file(parsed.database or "")
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, **kwargs)
    dialect = engine.dialect

    def stamp(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def ping_if_idle(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc

    event.listen(engine.sync_engine.pool, "checkin", stamp)
    event.listen(engine.sync_engine.pool, "checkout", ping_if_idle)
    return engine


def create_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, info=info or {})


def read_only_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for requests that only read. On PostgreSQL they run in autocommit: a
    transaction around a dashboard read cost a BEGIN and a ROLLBACK round trip, half of its
    statements. (The same pool; a write through it commits at once.)"""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def create_read_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read (:func:`read_only_engine`)."""
    return create_sessionmaker(read_only_engine(engine), info)
