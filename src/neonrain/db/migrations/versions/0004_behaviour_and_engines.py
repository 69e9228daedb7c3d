"""Where and when the bot speaks, and a second agent engine (behaviour.md, engines.md).

Adds to every server configuration its channel scope, reply mode, reply limits and engine (the
defaults keep the original behaviour: every channel, every message, no limit, HUMA); marks agent
actions that were drafted but not posted; counts held-back drafts per day; and adds the table of
an account's own OpenAI-compatible engine.

Revision ID: 0004_behaviour_and_engines
Revises: 0003_config_generation_indexes
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from neonrain.db.migrations.types import legacy_timestamp as ts

revision = "0004_behaviour_and_engines"
down_revision = "0003_config_generation_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_server_configs") as batch:
        batch.add_column(
            sa.Column("channel_mode", sa.Text(), nullable=False, server_default=sa.text("'all'"))
        )
        batch.add_column(
            sa.Column("channel_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column("reply_mode", sa.Text(), nullable=False, server_default=sa.text("'auto'"))
        )
        batch.add_column(
            sa.Column(
                "max_replies_per_hour", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
        batch.add_column(
            sa.Column(
                "min_seconds_between_replies",
                sa.Integer(),
                nullable=False,
                server_default=sa.text("0"),
            )
        )
        batch.add_column(
            sa.Column("engine", sa.Text(), nullable=False, server_default=sa.text("'huma'"))
        )
    with op.batch_alter_table("agent_actions") as batch:
        batch.add_column(
            sa.Column("delivered", sa.Boolean(), nullable=False, server_default=sa.text("true"))
        )
        batch.add_column(sa.Column("held_back", sa.Text(), nullable=True))
    op.create_index(
        "agent_actions_config_delivered_created_at_idx",
        "agent_actions",
        ["user_server_config_id", "delivered", sa.text("created_at DESC")],
    )
    with op.batch_alter_table("server_daily_stats") as batch:
        batch.add_column(
            sa.Column(
                "messages_held_back", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
    op.create_table(
        "engine_credentials",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False, server_default=sa.text("'openai'")),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("api_key", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False, server_default=sa.text("'unchecked'")),
        sa.Column("state_detail", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("created_at", ts(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="engine_credentials_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="engine_credentials_user_id_fkey", ondelete="CASCADE"
        ),
        sa.CheckConstraint("kind IN ('openai')", name="engine_credentials_engine_kind_check"),
        sa.CheckConstraint(
            "state IN ('ok', 'error', 'unchecked')", name="engine_credentials_engine_state_check"
        ),
    )
    op.create_index(
        "engine_credentials_user_id_key", "engine_credentials", ["user_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("engine_credentials_user_id_key", table_name="engine_credentials")
    op.drop_table("engine_credentials")
    with op.batch_alter_table("server_daily_stats") as batch:
        batch.drop_column("messages_held_back")
    op.drop_index("agent_actions_config_delivered_created_at_idx", table_name="agent_actions")
    with op.batch_alter_table("agent_actions") as batch:
        batch.drop_column("held_back")
        batch.drop_column("delivered")
    with op.batch_alter_table("user_server_configs") as batch:
        for column in (
            "engine",
            "min_seconds_between_replies",
            "max_replies_per_hour",
            "reply_mode",
            "channel_ids",
            "channel_mode",
        ):
            batch.drop_column(column)
