"""Indexes for the worker's delta reads (``tokens?since=N``).

A delta answer selects the users and removals newer than generation N; without these indexes
both are sequential scans whose cost grows with the number of accounts.

Revision ID: 0003_config_generation_indexes
Revises: 0002_multi_server
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0003_config_generation_indexes"
down_revision = "0002_multi_server"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("users_config_generation_idx", "users", ["config_generation"])
    op.create_index("config_removals_generation_idx", "config_removals", ["generation"])


def downgrade() -> None:
    op.drop_index("config_removals_generation_idx", table_name="config_removals")
    op.drop_index("users_config_generation_idx", table_name="users")
