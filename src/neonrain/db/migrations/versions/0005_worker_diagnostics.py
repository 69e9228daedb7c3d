"""What the worker reports about a silent bot, and where it resumes reading after a restart.

``worker_reports`` gains the reason a bot cannot work (kept until resolved), a report per active
guild (present, readable and sendable channels, Discord's last refusal) and the state of the
account's OpenAI-compatible engine; ``channel_cursors`` keeps the newest message the worker saw
per watched channel, so that a restarted worker catches up on what was posted meanwhile.

Revision ID: 0005_worker_diagnostics
Revises: 0004_behaviour_and_engines
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from neonrain.db.migrations.types import legacy_timestamp as ts

revision = "0005_worker_diagnostics"
down_revision = "0004_behaviour_and_engines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worker_reports") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("guilds", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(sa.Column("engine_state", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("engine_detail", sa.Text(), nullable=False, server_default=sa.text("''"))
        )
    op.create_table(
        "channel_cursors",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("guild_id", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "channel_id", name="channel_cursors_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="channel_cursors_user_id_fkey", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("channel_cursors")
    with op.batch_alter_table("worker_reports") as batch:
        for column in ("engine_detail", "engine_state", "guilds", "reason"):
            batch.drop_column(column)
