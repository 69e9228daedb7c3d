"""Column types shared by the migration scripts."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def legacy_timestamp() -> sa.types.TypeEngine[object]:
    """``TIMESTAMP(3)`` without time zone on PostgreSQL (the legacy type), DATETIME elsewhere."""
    return sa.DateTime().with_variant(postgresql.TIMESTAMP(precision=3), "postgresql")  # type: ignore[return-value]
