"""Fresh databases and adopted legacy databases end at the same head as the models."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from neonrain.crypto import TokenCipher
from neonrain.db.migrate import head_revision, upgrade_database
from neonrain.db.models import Base
from tests import pg
from tests.conftest import TEST_SECRET_KEY, require_postgres
from tests.migrations import legacy_db


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diffs: list[Any] = list(compare_metadata(context, Base.metadata))
    if connection.dialect.name == "sqlite":
        # SQLite does not report DESC in reflected index columns; those indexes are checked on
        # PostgreSQL, where reflection is exact.
        descending = {
            index.name
            for table in Base.metadata.tables.values()
            for index in table.indexes
            if any("DESC" in str(expression) for expression in index.expressions)
        }
        diffs = [
            d
            for d in diffs
            if not (d[0] in ("add_index", "remove_index") and d[1].name in descending)
        ]
    return diffs


async def _snapshot(url: str) -> dict[str, Any]:
    """Tables, columns (name, type, nullability), indexes, unique, foreign keys, checks."""
    engine = create_async_engine(url)

    def read(connection: Connection) -> dict[str, Any]:
        inspector = inspect(connection)
        result: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            result[table] = {
                # Order aside: adopted tables gain their new columns at the end.
                "columns": sorted(
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
                ),
                "pk": inspector.get_pk_constraint(table),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                ),
                "foreign_keys": sorted(
                    (
                        fk["name"],
                        tuple(fk["constrained_columns"]),
                        fk["referred_table"],
                        fk["options"].get("ondelete"),
                        fk["options"].get("onupdate"),
                    )
                    for fk in inspector.get_foreign_keys(table)
                ),
                "checks": sorted(c["name"] for c in inspector.get_check_constraints(table)),
            }
        return result

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def _differences_at(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_differences)
    finally:
        await engine.dispose()


async def test_fresh_database_matches_the_models(database_url: str) -> None:
    assert await _differences_at(database_url) == []


async def test_second_upgrade_changes_nothing(database_url: str) -> None:
    before = await _snapshot(database_url)
    report = await upgrade_database(database_url, TokenCipher(TEST_SECRET_KEY))
    assert not report.changed
    assert report.to_revision == head_revision()
    assert report.lines() == [f"database already at {head_revision()}; nothing to do"]
    assert await _snapshot(database_url) == before


@pytest.mark.postgres
@pytest.mark.parametrize("full", [True, False], ids=["full-legacy", "minimal-legacy"])
async def test_adopted_legacy_database_has_the_same_schema_as_a_fresh_one(full: bool) -> None:
    require_postgres()
    async with pg.throwaway_database() as fresh, pg.throwaway_database() as legacy:
        await upgrade_database(pg.sqlalchemy_url(fresh), TokenCipher(TEST_SECRET_KEY))
        await legacy_db.build(pg.asyncpg_dsn(legacy), full=full)
        report = await upgrade_database(pg.sqlalchemy_url(legacy), TokenCipher(TEST_SECRET_KEY))
        assert report.kind == "legacy"
        assert await _snapshot(pg.sqlalchemy_url(legacy)) == await _snapshot(
            pg.sqlalchemy_url(fresh)
        )
        assert await _differences_at(pg.sqlalchemy_url(legacy)) == []
