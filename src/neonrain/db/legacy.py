"""Recognising a legacy (single-server, Prisma-built) Neonrain database and adopting it.

Legacy databases come in two shapes (legacy-schema.md): built by the original product's full
schema, or only from its migration files, which lack some objects. :func:`adopt` creates whatever is
missing so that every legacy database is exactly at revision ``0001_legacy_schema``; the ordinary
migrations take it from there. Everything runs on the caller's connection, inside its transaction.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

LEGACY_REVISION = "0001_legacy_schema"
REQUIRED_LEGACY_TABLES = (
    "users",
    "servers",
    "server_websites",
    "website_scrapes",
    "chat_conversations",
    "chat_messages",
)


class DatabaseKind(enum.Enum):
    EMPTY = "empty"
    MANAGED = "managed"  # has alembic_version: already ours
    LEGACY = "legacy"
    UNKNOWN = "unknown"


class NotALegacyDatabase(Exception):
    """The database has tables but is neither Neonrain's nor the original product's."""


def detect(connection: Connection) -> DatabaseKind:
    inspector = sa.inspect(connection)
    tables = set(inspector.get_table_names())
    if "alembic_version" in tables:
        return DatabaseKind.MANAGED
    if not tables:
        return DatabaseKind.EMPTY
    if "_prisma_migrations" in tables and "users" in tables:
        columns = {c["name"] for c in inspector.get_columns("users")}
        if {"clerk_user_id", "selected_guild_id"} <= columns:
            return DatabaseKind.LEGACY
    return DatabaseKind.UNKNOWN


def adopt(connection: Connection) -> list[str]:
    """Bring a legacy database to revision 1; returns what was created, for the summary."""
    inspector = sa.inspect(connection)
    tables = set(inspector.get_table_names())
    missing_required = [t for t in REQUIRED_LEGACY_TABLES if t not in tables]
    if missing_required:
        raise NotALegacyDatabase(
            "this looks like an original Neonrain database but lacks the tables "
            + ", ".join(missing_required)
        )
    created: list[str] = []

    def run(statement: str, note: str) -> None:
        connection.exec_driver_sql(statement)
        created.append(note)

    def columns(table: str) -> set[str]:
        return {c["name"] for c in sa.inspect(connection).get_columns(table)}

    def indexes(table: str) -> set[str]:
        return {str(i["name"]) for i in sa.inspect(connection).get_indexes(table)}

    if "bot_name" not in columns("users"):
        run("ALTER TABLE users ADD COLUMN bot_name TEXT DEFAULT 'Assistant'", "users.bot_name")

    if "pending_discord_tokens" not in tables:
        run(
            "CREATE TABLE pending_discord_tokens (id TEXT PRIMARY KEY, discord_token TEXT NOT NULL,"
            " claim_code TEXT NOT NULL, expires_at TIMESTAMP(3) NOT NULL,"
            " claimed BOOLEAN NOT NULL DEFAULT false, claimed_by_user_id TEXT,"
            ' "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP)',
            "pending_discord_tokens",
        )
        run(
            "CREATE UNIQUE INDEX pending_discord_tokens_claim_code_key"
            " ON pending_discord_tokens (claim_code)",
            "pending_discord_tokens_claim_code_key",
        )

    if "chat_conversation_groups" not in tables:
        run(
            "CREATE TABLE chat_conversation_groups (id TEXT NOT NULL, user_id TEXT NOT NULL,"
            " title TEXT NOT NULL DEFAULT 'New chat', pane_count INTEGER NOT NULL,"
            " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,"
            " updated_at TIMESTAMP(3) NOT NULL,"
            " CONSTRAINT chat_conversation_groups_pkey PRIMARY KEY (id),"
            " CONSTRAINT chat_conversation_groups_user_id_fkey FOREIGN KEY (user_id)"
            " REFERENCES users (id) ON DELETE CASCADE)",
            "chat_conversation_groups",
        )
        run(
            "CREATE INDEX chat_conversation_groups_user_id_updated_at_idx"
            " ON chat_conversation_groups (user_id, updated_at DESC)",
            "chat_conversation_groups_user_id_updated_at_idx",
        )

    conversation_columns = columns("chat_conversations")
    if "title" not in conversation_columns:
        run(
            "ALTER TABLE chat_conversations ADD COLUMN title TEXT NOT NULL"
            " DEFAULT 'New conversation'",
            "chat_conversations.title",
        )
    if "group_id" not in conversation_columns:
        run(
            "ALTER TABLE chat_conversations ADD COLUMN group_id TEXT"
            " CONSTRAINT chat_conversations_group_id_fkey REFERENCES chat_conversation_groups (id)"
            " ON DELETE CASCADE",
            "chat_conversations.group_id",
        )
    if "pane_index" not in conversation_columns:
        run(
            "ALTER TABLE chat_conversations ADD COLUMN pane_index INTEGER NOT NULL DEFAULT 0",
            "chat_conversations.pane_index",
        )
    conversation_indexes = indexes("chat_conversations")
    if "chat_conversations_user_id_key" in conversation_indexes:
        # The one-conversation-per-user rule of the first web chat (rule 4).
        run("DROP INDEX chat_conversations_user_id_key", "dropped chat_conversations_user_id_key")
    if "chat_conversations_user_id_updated_at_idx" not in conversation_indexes:
        run(
            "CREATE INDEX chat_conversations_user_id_updated_at_idx"
            " ON chat_conversations (user_id, updated_at DESC)",
            "chat_conversations_user_id_updated_at_idx",
        )
    if "chat_conversations_group_id_pane_index_idx" not in conversation_indexes:
        run(
            "CREATE INDEX chat_conversations_group_id_pane_index_idx"
            " ON chat_conversations (group_id, pane_index)",
            "chat_conversations_group_id_pane_index_idx",
        )

    if "sender_name" not in columns("chat_messages"):
        run("ALTER TABLE chat_messages ADD COLUMN sender_name TEXT", "chat_messages.sender_name")

    if "chat_personas" not in tables:
        run(
            "CREATE TABLE chat_personas (id TEXT NOT NULL, user_id TEXT NOT NULL,"
            " nickname TEXT NOT NULL, color TEXT NOT NULL,"
            " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,"
            " CONSTRAINT chat_personas_pkey PRIMARY KEY (id),"
            " CONSTRAINT chat_personas_user_id_fkey FOREIGN KEY (user_id)"
            " REFERENCES users (id) ON DELETE CASCADE)",
            "chat_personas",
        )
        run(
            "CREATE INDEX chat_personas_user_id_idx ON chat_personas (user_id)", "chat_personas_idx"
        )

    _drop_on_update_actions(connection, created)

    # From now on Alembic keeps the history; Prisma's no longer describes this schema.
    connection.exec_driver_sql("DROP TABLE _prisma_migrations")
    return created


def _drop_on_update_actions(connection: Connection, notes: list[str]) -> None:
    """Prisma adds ``ON UPDATE CASCADE`` to every foreign key; ids never change here, and
    revision 1 does not have it, so recreate those keys without it."""
    inspector = sa.inspect(connection)
    for table in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(table):
            if not fk["options"].get("onupdate") or not fk["name"]:
                continue
            columns = ", ".join(f'"{c}"' for c in fk["constrained_columns"])
            referred = ", ".join(f'"{c}"' for c in fk["referred_columns"])
            on_delete = fk["options"].get("ondelete")
            connection.exec_driver_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{fk["name"]}"')
            connection.exec_driver_sql(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{fk["name"]}" FOREIGN KEY ({columns})'
                f' REFERENCES "{fk["referred_table"]}" ({referred})'
                + (f" ON DELETE {on_delete}" if on_delete else "")
            )
            notes.append(f"{fk['name']} without ON UPDATE CASCADE")
