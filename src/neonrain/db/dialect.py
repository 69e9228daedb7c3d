"""SQL that differs between SQLite and PostgreSQL, behind one spelling."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

#: An ``INSERT`` that knows ``ON CONFLICT DO UPDATE`` and ``excluded`` (both dialects share that
#: syntax).
UpsertInsert = postgresql.Insert | sqlite.Insert


def dialect_insert(session: AsyncSession, table: Any) -> UpsertInsert:
    """``INSERT`` of the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
