"""Alembic environment: runs on the connection handed over by :mod:`neonrain.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from neonrain.db.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `neonrain db upgrade`, not the alembic command")
_run(connection)
