"""Legacy (single-server) Neonrain databases, built as the original product's Prisma left them.

``FULL`` is the schema of a database created from the original product's full Prisma schema;
``MINIMAL`` is one built only from its migration files, which lacks the objects that
legacy-schema.md marks "may be missing" and still has one-conversation-per-user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

PRISMA_MIGRATIONS = """
CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "_prisma_migrations_pkey" PRIMARY KEY ("id"));
INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
VALUES ('8c1f3a52-3a71-4a55-9d0e-7c2b9f1e0a11', 'abc', '20250101000000_init', now(), 1);
"""

SERVERS = """
CREATE TABLE "servers" (
    "id" TEXT NOT NULL, "guild_id" TEXT NOT NULL, "guild_name" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "servers_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "servers_guild_id_key" ON "servers"("guild_id");
"""


def users_ddl(with_bot_name: bool) -> str:
    bot_name = """"bot_name" TEXT DEFAULT 'Assistant',""" if with_bot_name else ""
    return f"""
CREATE TABLE "users" (
    "id" TEXT NOT NULL, "email" TEXT, "clerk_user_id" TEXT NOT NULL, "discord_token" TEXT,
    "selected_guild_id" TEXT, "selected_guild_name" TEXT,
    "discord_bot_active" BOOLEAN NOT NULL DEFAULT false, "server_id" TEXT,
    "personality" TEXT DEFAULT '', "rules" TEXT DEFAULT '', "information" TEXT DEFAULT '',
    {bot_name}
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
    "last_message_sent_at" TIMESTAMP(3), "last_message_received_at" TIMESTAMP(3),
    "messages_sent_count" INTEGER NOT NULL DEFAULT 0,
    "messages_received_count" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "users_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE UNIQUE INDEX "users_clerk_user_id_key" ON "users"("clerk_user_id");
ALTER TABLE "users" ADD CONSTRAINT "users_server_id_fkey" FOREIGN KEY ("server_id")
    REFERENCES "servers"("id") ON DELETE SET NULL ON UPDATE CASCADE;
"""


WEBSITES = """
CREATE TABLE "server_websites" (
    "id" TEXT NOT NULL, "server_id" TEXT NOT NULL, "url" TEXT NOT NULL, "name" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "server_websites_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "server_websites_server_id_url_key" ON "server_websites"("server_id", "url");
ALTER TABLE "server_websites" ADD CONSTRAINT "server_websites_server_id_fkey"
    FOREIGN KEY ("server_id") REFERENCES "servers"("id") ON DELETE CASCADE ON UPDATE CASCADE;
CREATE TABLE "website_scrapes" (
    "id" TEXT NOT NULL, "website_id" TEXT NOT NULL, "markdown_content" TEXT NOT NULL,
    "content_length" INTEGER NOT NULL, "truncated" BOOLEAN NOT NULL DEFAULT false,
    "status_code" INTEGER, "error_message" TEXT,
    "scraped_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "website_scrapes_pkey" PRIMARY KEY ("id"));
ALTER TABLE "website_scrapes" ADD CONSTRAINT "website_scrapes_website_id_fkey"
    FOREIGN KEY ("website_id") REFERENCES "server_websites"("id") ON DELETE CASCADE ON UPDATE CASCADE;
CREATE TABLE "pending_discord_tokens" (
    "id" TEXT NOT NULL, "discord_token" TEXT NOT NULL, "claim_code" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL, "claimed" BOOLEAN NOT NULL DEFAULT false,
    "claimed_by_user_id" TEXT, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "pending_discord_tokens_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "pending_discord_tokens_claim_code_key" ON "pending_discord_tokens"("claim_code");
"""

CHAT_FULL = """
CREATE TABLE "chat_conversation_groups" (
    "id" TEXT NOT NULL, "user_id" TEXT NOT NULL, "title" TEXT NOT NULL DEFAULT 'New chat',
    "pane_count" INTEGER NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "chat_conversation_groups_pkey" PRIMARY KEY ("id"));
CREATE INDEX "chat_conversation_groups_user_id_updated_at_idx"
    ON "chat_conversation_groups"("user_id", "updated_at" DESC);
ALTER TABLE "chat_conversation_groups" ADD CONSTRAINT "chat_conversation_groups_user_id_fkey"
    FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
CREATE TABLE "chat_conversations" (
    "id" TEXT NOT NULL, "user_id" TEXT NOT NULL,
    "title" TEXT NOT NULL DEFAULT 'New conversation', "group_id" TEXT,
    "pane_index" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "chat_conversations_pkey" PRIMARY KEY ("id"));
CREATE INDEX "chat_conversations_user_id_updated_at_idx"
    ON "chat_conversations"("user_id", "updated_at" DESC);
CREATE INDEX "chat_conversations_group_id_pane_index_idx"
    ON "chat_conversations"("group_id", "pane_index");
ALTER TABLE "chat_conversations" ADD CONSTRAINT "chat_conversations_user_id_fkey"
    FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "chat_conversations" ADD CONSTRAINT "chat_conversations_group_id_fkey"
    FOREIGN KEY ("group_id") REFERENCES "chat_conversation_groups"("id")
    ON DELETE CASCADE ON UPDATE CASCADE;
CREATE TABLE "chat_messages" (
    "id" TEXT NOT NULL, "conversation_id" TEXT NOT NULL, "role" TEXT NOT NULL,
    "content" TEXT NOT NULL, "sender_name" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "chat_messages_pkey" PRIMARY KEY ("id"));
CREATE INDEX "chat_messages_conversation_id_created_at_idx"
    ON "chat_messages"("conversation_id", "created_at");
ALTER TABLE "chat_messages" ADD CONSTRAINT "chat_messages_conversation_id_fkey"
    FOREIGN KEY ("conversation_id") REFERENCES "chat_conversations"("id")
    ON DELETE CASCADE ON UPDATE CASCADE;
CREATE TABLE "chat_personas" (
    "id" TEXT NOT NULL, "user_id" TEXT NOT NULL, "nickname" TEXT NOT NULL, "color" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "chat_personas_pkey" PRIMARY KEY ("id"));
CREATE INDEX "chat_personas_user_id_idx" ON "chat_personas"("user_id");
ALTER TABLE "chat_personas" ADD CONSTRAINT "chat_personas_user_id_fkey"
    FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"""

CHAT_MINIMAL = """
CREATE TABLE "chat_conversations" (
    "id" TEXT NOT NULL, "user_id" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "chat_conversations_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "chat_conversations_user_id_key" ON "chat_conversations"("user_id");
ALTER TABLE "chat_conversations" ADD CONSTRAINT "chat_conversations_user_id_fkey"
    FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
CREATE TABLE "chat_messages" (
    "id" TEXT NOT NULL, "conversation_id" TEXT NOT NULL, "role" TEXT NOT NULL,
    "content" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "chat_messages_pkey" PRIMARY KEY ("id"));
CREATE INDEX "chat_messages_conversation_id_created_at_idx"
    ON "chat_messages"("conversation_id", "created_at");
ALTER TABLE "chat_messages" ADD CONSTRAINT "chat_messages_conversation_id_fkey"
    FOREIGN KEY ("conversation_id") REFERENCES "chat_conversations"("id")
    ON DELETE CASCADE ON UPDATE CASCADE;
"""


def schema(full: bool) -> str:
    return (
        PRISMA_MIGRATIONS
        + SERVERS
        + users_ddl(with_bot_name=full)
        + WEBSITES
        + (CHAT_FULL if full else CHAT_MINIMAL)
    )


T0 = datetime(2026, 3, 1, 12, 0, 0)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class LegacyData:
    """What the seeded legacy database holds, for the assertions."""

    full: bool
    ids: dict[str, str] = field(default_factory=dict)


async def build(dsn: str, *, full: bool) -> LegacyData:
    """Create the legacy schema in the (empty) database at ``dsn`` and fill it."""
    data = LegacyData(full=full)
    ids = data.ids
    ids.update(
        server_gaming="11111111-0000-4000-8000-000000000001",
        server_support="11111111-0000-4000-8000-000000000002",
        server_orphan="11111111-0000-4000-8000-000000000003",
        alice="22222222-0000-4000-8000-000000000001",  # server_id set
        bob="22222222-0000-4000-8000-000000000002",  # only selected_guild_id (pre-servers)
        carol="22222222-0000-4000-8000-000000000003",  # neither
        dave="22222222-0000-4000-8000-000000000004",  # same guild as alice
        erin="22222222-0000-4000-8000-000000000005",  # selected_guild_id of an existing server
        site_docs="33333333-0000-4000-8000-000000000001",
        site_status="33333333-0000-4000-8000-000000000002",
        site_orphan="33333333-0000-4000-8000-000000000003",
    )
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute(schema(full))
            await connection.executemany(
                "INSERT INTO servers (id, guild_id, guild_name, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $4)",
                [
                    (ids["server_gaming"], "900000000000000001", "Gaming Hub", at(0)),
                    (ids["server_support"], "900000000000000002", "Support Desk", at(1)),
                    (ids["server_orphan"], "900000000000000003", "Nobody's Server", at(2)),
                ],
            )
            bot_name_col = ", bot_name" if full else ""
            bot_name_arg = ", $18" if full else ""
            users = [
                (ids["alice"], "Alice@Example.com", "user_alice", "alice-user-token",
                 None, None, True, ids["server_gaming"], "Cheerful gamer", "No spoilers",
                 "We play on Fridays", 42, 100, at(50), at(55), "Pixel"),
                (ids["bob"], "bob@example.com", "user_bob", None,
                 "900000000000000777", "Bob's Bakery", False, None, "Warm", None,
                 "Open 8-18", 3, 7, None, at(40), None),
                (ids["carol"], None, "user_carol", "carol-user-token",
                 None, None, False, None, "", "", "", 0, 0, None, None, None),
                (ids["dave"], "dave@example.com", "user_dave", None,
                 "900000000000000001", "Gaming Hub", False, ids["server_gaming"], "Grumpy",
                 "Be nice", "", 1, 2, at(20), at(21), "Helper"),
                (ids["erin"], "erin@example.com", "user_erin", None,
                 "900000000000000002", "Support Desk (old name)", True, None, "Patient",
                 "", "FAQ at /help", 5, 9, at(30), at(31), None),
            ]  # fmt: skip
            columns = (
                "id, email, clerk_user_id, discord_token, selected_guild_id, selected_guild_name,"
                " discord_bot_active, server_id, personality, rules, information,"
                " messages_sent_count, messages_received_count, last_message_sent_at,"
                ' last_message_received_at, "createdAt", "updatedAt"'
            )
            for index, row in enumerate(users):
                values = [*row[:15], at(index), at(index)]
                if full:
                    values.append(row[15])
                placeholders = ", ".join(f"${n}" for n in range(1, 18))
                await connection.execute(
                    f"INSERT INTO users ({columns}{bot_name_col})"
                    f" VALUES ({placeholders}{bot_name_arg})",
                    *values,
                )
            await connection.executemany(
                "INSERT INTO server_websites (id, server_id, url, name, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $5)",
                [
                    (ids["site_docs"], ids["server_gaming"], "https://docs.example.com/", "Docs",
                     at(60)),
                    (ids["site_status"], ids["server_gaming"], "https://status.example.com/",
                     None, at(61)),
                    (ids["site_orphan"], ids["server_orphan"], "https://orphan.example.com/",
                     "Orphan", at(62)),
                ],
            )  # fmt: skip
            await connection.executemany(
                "INSERT INTO website_scrapes (id, website_id, markdown_content, content_length,"
                " truncated, status_code, error_message, scraped_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    ("44444444-0000-4000-8000-000000000001", ids["site_docs"],
                     "# Docs\n\nHow to join.", 20, False, 200, None, at(70)),
                    ("44444444-0000-4000-8000-000000000002", ids["site_docs"],
                     "", 0, False, 503, "Service Unavailable", at(80)),
                    ("44444444-0000-4000-8000-000000000003", ids["site_status"],
                     "", 0, False, None, "timeout", at(71)),
                    ("44444444-0000-4000-8000-000000000004", ids["site_orphan"],
                     "orphan", 6, False, 200, None, at(72)),
                ],
            )  # fmt: skip
            await connection.execute(
                "INSERT INTO pending_discord_tokens (id, discord_token, claim_code, expires_at)"
                " VALUES ('p1', 'plaintext-pending', 'CLAIM1', $1)",
                at(1000),
            )
            await _chat(connection, data)
    finally:
        await connection.close()
    return data


async def _chat(connection: asyncpg.Connection, data: LegacyData) -> None:
    ids = data.ids
    ids.update(
        conv_alice="55555555-0000-4000-8000-000000000001",
        conv_carol="55555555-0000-4000-8000-000000000002",
    )
    if data.full:
        ids.update(
            group_alice="66666666-0000-4000-8000-000000000001",
            conv_alice_pane0="55555555-0000-4000-8000-000000000010",
            conv_alice_pane1="55555555-0000-4000-8000-000000000011",
            conv_alice_pane2="55555555-0000-4000-8000-000000000012",
        )
        await connection.execute(
            "INSERT INTO chat_conversation_groups (id, user_id, title, pane_count, created_at,"
            " updated_at) VALUES ($1, $2, 'Launch planning', 3, $3, $3)",
            ids["group_alice"], ids["alice"], at(90),
        )  # fmt: skip
        for pane in range(3):
            await connection.execute(
                "INSERT INTO chat_conversations (id, user_id, title, group_id, pane_index,"
                " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                ids[f"conv_alice_pane{pane}"], ids["alice"], f"Pane {pane}", ids["group_alice"],
                pane, at(91),
            )  # fmt: skip
        await connection.executemany(
            "INSERT INTO chat_personas (id, user_id, nickname, color, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            [
                ("77777777-0000-4000-8000-000000000001", ids["alice"], "Newbie", "#818cf8", at(5)),
                ("77777777-0000-4000-8000-000000000002", ids["alice"], "Moderator", "#f87171",
                 at(6)),
            ],
        )  # fmt: skip
        await connection.execute(
            "INSERT INTO chat_messages (id, conversation_id, role, content, sender_name,"
            " created_at) VALUES ('m-pane0', $1, 'user', 'hello from a pane', 'Newbie', $2)",
            ids["conv_alice_pane0"], at(92),
        )  # fmt: skip
    loose = "INSERT INTO chat_conversations (id, user_id, created_at, updated_at) VALUES ($1, $2, $3, $3)"
    await connection.execute(loose, ids["conv_alice"], ids["alice"], at(10))
    await connection.execute(loose, ids["conv_carol"], ids["carol"], at(11))
    await connection.executemany(
        "INSERT INTO chat_messages (id, conversation_id, role, content, created_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        [
            ("m1", ids["conv_alice"], "user", "Hi there", at(12)),
            ("m2", ids["conv_alice"], "assistant", "Hello Alice!", at(13)),
            ("m3", ids["conv_carol"], "user", "Anyone home?", at(14)),
        ],
    )
