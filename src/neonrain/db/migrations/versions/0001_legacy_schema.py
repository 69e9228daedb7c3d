"""The legacy single-server Neonrain schema, as the original product's Prisma migrations left it.

Fresh databases start here too, so that fresh and adopted legacy databases share one history.
(``neonrain.db.legacy`` brings a legacy database that lacks some of these objects to this state
and stamps it with this revision.)

Revision ID: 0001_legacy_schema
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from neonrain.db.migrations.types import legacy_timestamp as ts

revision = "0001_legacy_schema"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("guild_id", sa.Text(), nullable=False),
        sa.Column("guild_name", sa.Text(), nullable=False),
        sa.Column("created_at", ts(), nullable=False, server_default=NOW),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="servers_pkey"),
    )
    op.create_index("servers_guild_id_key", "servers", ["guild_id"], unique=True)

    op.create_table(
        "users",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("clerk_user_id", sa.Text(), nullable=False),
        sa.Column("discord_token", sa.Text(), nullable=True),
        sa.Column("selected_guild_id", sa.Text(), nullable=True),
        sa.Column("selected_guild_name", sa.Text(), nullable=True),
        sa.Column(
            "discord_bot_active", sa.Boolean(), nullable=False, server_default=sa.text("false")
        ),
        sa.Column("server_id", sa.Text(), nullable=True),
        sa.Column("personality", sa.Text(), nullable=True, server_default=sa.text("''")),
        sa.Column("rules", sa.Text(), nullable=True, server_default=sa.text("''")),
        sa.Column("information", sa.Text(), nullable=True, server_default=sa.text("''")),
        sa.Column("bot_name", sa.Text(), nullable=True, server_default=sa.text("'Assistant'")),
        sa.Column("createdAt", ts(), nullable=False, server_default=NOW),
        sa.Column("updatedAt", ts(), nullable=False),
        sa.Column("last_message_sent_at", ts(), nullable=True),
        sa.Column("last_message_received_at", ts(), nullable=True),
        sa.Column("messages_sent_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("messages_received_count", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="users_pkey"),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name="users_server_id_fkey", ondelete="SET NULL"
        ),
    )
    op.create_index("users_email_key", "users", ["email"], unique=True)
    op.create_index("users_clerk_user_id_key", "users", ["clerk_user_id"], unique=True)

    op.create_table(
        "server_websites",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("server_id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("created_at", ts(), nullable=False, server_default=NOW),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="server_websites_pkey"),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name="server_websites_server_id_fkey", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "server_websites_server_id_url_key", "server_websites", ["server_id", "url"], unique=True
    )

    op.create_table(
        "website_scrapes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("website_id", sa.Text(), nullable=False),
        sa.Column("markdown_content", sa.Text(), nullable=False),
        sa.Column("content_length", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("scraped_at", ts(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="website_scrapes_pkey"),
        sa.ForeignKeyConstraint(
            ["website_id"],
            ["server_websites.id"],
            name="website_scrapes_website_id_fkey",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "pending_discord_tokens",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("discord_token", sa.Text(), nullable=False),
        sa.Column("claim_code", sa.Text(), nullable=False),
        sa.Column("expires_at", ts(), nullable=False),
        sa.Column("claimed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("claimed_by_user_id", sa.Text(), nullable=True),
        sa.Column("createdAt", ts(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pending_discord_tokens_pkey"),
    )
    op.create_index(
        "pending_discord_tokens_claim_code_key",
        "pending_discord_tokens",
        ["claim_code"],
        unique=True,
    )

    op.create_table(
        "chat_conversation_groups",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False, server_default=sa.text("'New chat'")),
        sa.Column("pane_count", sa.Integer(), nullable=False),
        sa.Column("created_at", ts(), nullable=False, server_default=NOW),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="chat_conversation_groups_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="chat_conversation_groups_user_id_fkey",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "chat_conversation_groups_user_id_updated_at_idx",
        "chat_conversation_groups",
        ["user_id", sa.text("updated_at DESC")],
    )

    op.create_table(
        "chat_conversations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False, server_default=sa.text("'New conversation'")),
        sa.Column("group_id", sa.Text(), nullable=True),
        sa.Column("pane_index", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", ts(), nullable=False, server_default=NOW),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="chat_conversations_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="chat_conversations_user_id_fkey", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["chat_conversation_groups.id"],
            name="chat_conversations_group_id_fkey",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "chat_conversations_user_id_updated_at_idx",
        "chat_conversations",
        ["user_id", sa.text("updated_at DESC")],
    )
    op.create_index(
        "chat_conversations_group_id_pane_index_idx",
        "chat_conversations",
        ["group_id", "pane_index"],
    )

    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("conversation_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sender_name", sa.Text(), nullable=True),
        sa.Column("created_at", ts(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="chat_messages_pkey"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["chat_conversations.id"],
            name="chat_messages_conversation_id_fkey",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "chat_messages_conversation_id_created_at_idx",
        "chat_messages",
        ["conversation_id", "created_at"],
    )

    op.create_table(
        "chat_personas",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("nickname", sa.Text(), nullable=False),
        sa.Column("color", sa.Text(), nullable=False),
        sa.Column("created_at", ts(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="chat_personas_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="chat_personas_user_id_fkey", ondelete="CASCADE"
        ),
    )
    op.create_index("chat_personas_user_id_idx", "chat_personas", ["user_id"])


def downgrade() -> None:
    for table in (
        "chat_personas",
        "chat_messages",
        "chat_conversations",
        "chat_conversation_groups",
        "pending_discord_tokens",
        "website_scrapes",
        "server_websites",
        "users",
        "servers",
    ):
        op.drop_table(table)
