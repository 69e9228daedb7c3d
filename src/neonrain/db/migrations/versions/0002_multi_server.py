"""Multi-server support (the seed's migration) and this project's additions.

Moves the per-user bot configuration into ``user_server_configs`` (rules 1–2 of legacy-schema.md),
attaches websites to configurations (3), binds chats to servers (4), encrypts Discord tokens and
drops the plaintext claim-code table (5), removes the legacy user columns (6), and adds sessions,
agent actions, daily statistics, worker reports and the configuration change marker.

On a fresh database every data step finds nothing to move. Counts go to the upgrade summary.

Revision ID: 0002_multi_server
Revises: 0001_legacy_schema
Create Date: 2026-11-26
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from neonrain.db.migrations.types import legacy_timestamp as ts

revision = "0002_multi_server"
down_revision = "0001_legacy_schema"
branch_labels = None
depends_on = None

LEGACY_USER_COLUMNS = (
    "selected_guild_id",
    "selected_guild_name",
    "discord_bot_active",
    "server_id",
    "personality",
    "rules",
    "information",
    "bot_name",
    "messages_sent_count",
    "messages_received_count",
    "last_message_sent_at",
    "last_message_received_at",
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _id() -> str:
    return str(uuid.uuid4())


def _summary() -> dict[str, int]:
    summary: dict[str, int] = context.config.attributes.setdefault("summary", {})
    return summary


def _count(key: str, amount: int = 1) -> None:
    summary = _summary()
    summary[key] = summary.get(key, 0) + amount


def upgrade() -> None:
    _create_new_tables()
    migrated = _migrate_configurations()
    _migrate_websites(migrated)
    _migrate_chat(migrated)
    _migrate_users()
    op.drop_table("pending_discord_tokens")


def _create_new_tables() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("guild_icon", sa.Text(), nullable=True))

    op.create_table(
        "user_server_configs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("server_id", sa.Text(), nullable=False),
        sa.Column("bot_name", sa.Text(), nullable=False, server_default=sa.text("'Assistant'")),
        sa.Column("personality", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("rules", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("information", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("bot_active", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("messages_sent_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("messages_received_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_message_sent_at", ts(), nullable=True),
        sa.Column("last_message_received_at", ts(), nullable=True),
        sa.Column("created_at", ts(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="user_server_configs_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="user_server_configs_user_id_fkey", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name="user_server_configs_server_id_fkey",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "user_server_configs_user_id_server_id_key",
        "user_server_configs",
        ["user_id", "server_id"],
        unique=True,
    )
    op.create_index("user_server_configs_user_id_idx", "user_server_configs", ["user_id"])
    op.create_index("user_server_configs_server_id_idx", "user_server_configs", ["server_id"])

    op.create_table(
        "sessions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("expires_at", ts(), nullable=False),
        sa.Column("last_seen_at", ts(), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("created_at", ts(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="sessions_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="sessions_user_id_fkey", ondelete="CASCADE"
        ),
    )
    op.create_index("sessions_token_hash_key", "sessions", ["token_hash"], unique=True)
    op.create_index("sessions_user_id_idx", "sessions", ["user_id"])

    op.create_table(
        "agent_actions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_server_config_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("channel_name", sa.Text(), nullable=False),
        sa.Column("agent_message", sa.Text(), nullable=False),
        sa.Column("trigger_description", sa.Text(), nullable=False),
        sa.Column("message_history", sa.JSON(), nullable=False),
        sa.Column("created_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="agent_actions_pkey"),
        sa.ForeignKeyConstraint(
            ["user_server_config_id"],
            ["user_server_configs.id"],
            name="agent_actions_user_server_config_id_fkey",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "agent_actions_user_server_config_id_created_at_idx",
        "agent_actions",
        ["user_server_config_id", sa.text("created_at DESC")],
    )

    op.create_table(
        "server_daily_stats",
        sa.Column("user_server_config_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("messages_received", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("messages_sent", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("user_server_config_id", "day", name="server_daily_stats_pkey"),
        sa.ForeignKeyConstraint(
            ["user_server_config_id"],
            ["user_server_configs.id"],
            name="server_daily_stats_user_server_config_id_fkey",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "worker_reports",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("guild_ids", sa.JSON(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="worker_reports_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="worker_reports_user_id_fkey", ondelete="CASCADE"
        ),
    )

    config_state = op.create_table(
        "config_state",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="config_state_pkey"),
    )
    op.bulk_insert(config_state, [{"id": 1, "generation": 0}])

    op.create_table(
        "config_removals",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="config_removals_pkey"),
    )


# Lightweight table descriptions for the data steps (the models describe the end state).
users_t = sa.table(
    "users",
    sa.column("id"),
    sa.column("email"),
    sa.column("discord_token"),
    sa.column("selected_guild_id"),
    sa.column("selected_guild_name"),
    sa.column("discord_bot_active"),
    sa.column("server_id"),
    sa.column("personality"),
    sa.column("rules"),
    sa.column("information"),
    sa.column("bot_name"),
    sa.column("createdAt"),
    sa.column("messages_sent_count"),
    sa.column("messages_received_count"),
    sa.column("last_message_sent_at"),
    sa.column("last_message_received_at"),
)
servers_t = sa.table(
    "servers", sa.column("id"), sa.column("guild_id"), sa.column("guild_name"),
    sa.column("created_at"), sa.column("updated_at"),
)  # fmt: skip
configs_t = sa.table(
    "user_server_configs",
    *(
        sa.column(name)
        for name in (
            "id", "user_id", "server_id", "bot_name", "personality", "rules", "information",
            "bot_active", "messages_sent_count", "messages_received_count",
            "last_message_sent_at", "last_message_received_at", "created_at", "updated_at",
        )
    ),
)  # fmt: skip
websites_t = sa.table(
    "server_websites",
    *(
        sa.column(name)
        for name in (
            "id", "server_id", "user_server_config_id", "url", "name", "created_at",
            "updated_at", "scrape_status", "next_scrape_at",
        )
    ),
)  # fmt: skip
scrapes_t = sa.table(
    "website_scrapes",
    *(
        sa.column(name)
        for name in (
            "id", "website_id", "markdown_content", "content_length", "truncated",
            "status_code", "error_message", "scraped_at",
        )
    ),
)  # fmt: skip
groups_t = sa.table(
    "chat_conversation_groups",
    *(
        sa.column(name)
        for name in (
            "id", "user_id", "server_id", "title", "pane_count", "created_at", "updated_at",
        )
    ),
)  # fmt: skip
conversations_t = sa.table(
    "chat_conversations",
    *(
        sa.column(name)
        for name in ("id", "user_id", "group_id", "pane_index", "created_at", "updated_at")
    ),
)
personas_t = sa.table(
    "chat_personas", sa.column("id"), sa.column("user_id"), sa.column("nickname"),
    sa.column("created_at"),
)  # fmt: skip


def _migrate_configurations() -> dict[str, str]:
    """Rules 1 and 2: one configuration per user that picked a guild. Returns user → server id."""
    bind = op.get_bind()
    users = bind.execute(sa.select(users_t).order_by(users_t.c.createdAt, users_t.c.id)).mappings()
    servers_by_guild = {
        row.guild_id: row.id
        for row in bind.execute(sa.select(servers_t.c.id, servers_t.c.guild_id))
    }
    now = _now()
    migrated: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for user in users:
        _count("users")
        server_id = user["server_id"]
        if server_id is None and user["selected_guild_id"]:
            guild_id = user["selected_guild_id"]
            server_id = servers_by_guild.get(guild_id)
            if server_id is None:
                server_id = _id()
                bind.execute(
                    servers_t.insert().values(
                        id=server_id,
                        guild_id=guild_id,
                        guild_name=user["selected_guild_name"] or guild_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
                servers_by_guild[guild_id] = server_id
                _count("servers created")
            _count("users recovered from selected_guild_id")
        if server_id is None:
            continue
        migrated[user["id"]] = server_id
        rows.append(
            {
                "id": _id(),
                "user_id": user["id"],
                "server_id": server_id,
                "bot_name": user["bot_name"] or "Assistant",
                "personality": user["personality"] or "",
                "rules": user["rules"] or "",
                "information": user["information"] or "",
                "bot_active": bool(user["discord_bot_active"]),
                "messages_sent_count": user["messages_sent_count"] or 0,
                "messages_received_count": user["messages_received_count"] or 0,
                "last_message_sent_at": user["last_message_sent_at"],
                "last_message_received_at": user["last_message_received_at"],
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows:
        bind.execute(configs_t.insert(), rows)
    _count("configurations created", len(rows))
    return migrated


def _migrate_websites(migrated: dict[str, str]) -> None:
    """Rule 3: websites move from the shared server row to each configuration of that server."""
    bind = op.get_bind()
    with op.batch_alter_table("server_websites") as batch:
        # Copies for several accounts share a server and URL until server_id goes.
        batch.drop_index("server_websites_server_id_url_key")
        batch.add_column(sa.Column("user_server_config_id", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("scrape_status", sa.Text(), nullable=False, server_default="queued")
        )
        batch.add_column(sa.Column("next_scrape_at", ts(), nullable=True))
        batch.add_column(
            sa.Column("scrape_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("scrape_started_at", ts(), nullable=True))
        batch.add_column(sa.Column("last_manual_scrape_at", ts(), nullable=True))

    configs_by_server: dict[str, list[str]] = defaultdict(list)
    for row in bind.execute(
        sa.select(configs_t.c.id, configs_t.c.server_id).order_by(configs_t.c.user_id)
    ):
        configs_by_server[row.server_id].append(row.id)
    now = _now()
    websites = list(bind.execute(sa.select(websites_t)).mappings())
    for website in websites:
        config_ids = configs_by_server.get(website["server_id"], [])
        if not config_ids:
            bind.execute(websites_t.delete().where(websites_t.c.id == website["id"]))
            _count("websites dropped (server not configured by anyone)")
            continue
        # Existing content is refreshed soon after the upgrade, then on the usual schedule.
        bind.execute(
            websites_t.update()
            .where(websites_t.c.id == website["id"])
            .values(user_server_config_id=config_ids[0], scrape_status="idle", next_scrape_at=now)
        )
        _count("websites moved")
        scrapes = list(
            bind.execute(
                sa.select(scrapes_t).where(scrapes_t.c.website_id == website["id"])
            ).mappings()
        )
        for config_id in config_ids[1:]:
            copy_id = _id()
            bind.execute(
                websites_t.insert().values(
                    id=copy_id,
                    server_id=website["server_id"],
                    user_server_config_id=config_id,
                    url=website["url"],
                    name=website["name"],
                    created_at=website["created_at"],
                    updated_at=website["updated_at"],
                    scrape_status="idle",
                    next_scrape_at=now,
                )
            )
            if scrapes:
                bind.execute(
                    scrapes_t.insert(),
                    [{**scrape, "id": _id(), "website_id": copy_id} for scrape in scrapes],
                )
            _count("websites copied for another account on the same server")

    with op.batch_alter_table("server_websites") as batch:
        batch.drop_constraint("server_websites_server_id_fkey", type_="foreignkey")
        batch.drop_column("server_id")
        batch.alter_column("user_server_config_id", existing_type=sa.Text(), nullable=False)
        batch.create_foreign_key(
            "server_websites_user_server_config_id_fkey",
            "user_server_configs",
            ["user_server_config_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(
            "server_websites_user_server_config_id_url_key",
            ["user_server_config_id", "url"],
            unique=True,
        )
        batch.create_index(
            "server_websites_scrape_status_next_scrape_at_idx", ["scrape_status", "next_scrape_at"]
        )
    op.create_index(
        "website_scrapes_website_id_scraped_at_idx",
        "website_scrapes",
        ["website_id", sa.text("scraped_at DESC")],
    )


def _migrate_chat(migrated: dict[str, str]) -> None:
    """Rule 4: groups get the user's server; a group-less conversation becomes a one-pane group."""
    bind = op.get_bind()
    with op.batch_alter_table("chat_conversation_groups") as batch:
        batch.add_column(sa.Column("server_id", sa.Text(), nullable=True))
    for user_id, server_id in migrated.items():
        bind.execute(
            groups_t.update().where(groups_t.c.user_id == user_id).values(server_id=server_id)
        )

    loose = list(
        bind.execute(
            sa.select(conversations_t).where(conversations_t.c.group_id.is_(None))
        ).mappings()
    )
    for conversation in loose:
        _move_to_own_group(
            conversation,
            user_id=conversation["user_id"],
            server_id=migrated.get(conversation["user_id"]),
            title="Chat history",
        )
        _count("conversations converted")

    _normalise_panes()
    _deduplicate_personas()

    with op.batch_alter_table("chat_conversation_groups") as batch:
        batch.create_foreign_key(
            "chat_conversation_groups_server_id_fkey",
            "servers",
            ["server_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("chat_conversation_groups_server_id_idx", ["server_id"])
        batch.create_check_constraint(
            "chat_conversation_groups_pane_count_check", sa.text("pane_count IN (1, 3, 5)")
        )
    with op.batch_alter_table("chat_conversations") as batch:
        batch.drop_index("chat_conversations_group_id_pane_index_idx")
        batch.create_index(
            "chat_conversations_group_id_pane_index_key", ["group_id", "pane_index"], unique=True
        )
        batch.create_check_constraint(
            "chat_conversations_pane_index_check", sa.text("pane_index >= 0 AND pane_index <= 4")
        )
        batch.add_column(sa.Column("huma_agent_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("huma_agent_fingerprint", sa.Text(), nullable=True))
        batch.add_column(sa.Column("huma_agent_expires_at", ts(), nullable=True))
    with op.batch_alter_table("chat_personas") as batch:
        batch.drop_index("chat_personas_user_id_idx")
        batch.create_index(
            "chat_personas_user_id_nickname_key", ["user_id", "nickname"], unique=True
        )


def _move_to_own_group(
    conversation: Any, *, user_id: str, server_id: str | None, title: str
) -> None:
    """Put ``conversation`` alone in a new one-pane group (keeping its times)."""
    bind = op.get_bind()
    group_id = _id()
    bind.execute(
        groups_t.insert().values(
            id=group_id,
            user_id=user_id,
            server_id=server_id,
            title=title,
            pane_count=1,
            created_at=conversation["created_at"],
            updated_at=conversation["updated_at"],
        )
    )
    bind.execute(
        conversations_t.update()
        .where(conversations_t.c.id == conversation["id"])
        .values(group_id=group_id, pane_index=0)
    )


def _normalise_panes() -> None:
    """Make pane numbers unique within each group and pane counts one of 1, 3, 5.

    The legacy schema did not enforce either; a group with more conversations than panes keeps
    its first five and the rest become one-pane groups of their own.
    """
    bind = op.get_bind()
    by_group: dict[str, list[Any]] = defaultdict(list)
    for row in bind.execute(
        sa.select(conversations_t)
        .where(conversations_t.c.group_id.is_not(None))
        .order_by(conversations_t.c.pane_index, conversations_t.c.created_at, conversations_t.c.id)
    ).mappings():
        by_group[row["group_id"]].append(row)
    groups = {row["id"]: row for row in bind.execute(sa.select(groups_t)).mappings()}
    for group_id, group in groups.items():
        conversations = by_group.get(group_id, [])
        indexes = [c["pane_index"] for c in conversations]
        needs_renumbering = len(set(indexes)) != len(indexes) or any(
            i < 0 or i > 4 for i in indexes
        )
        if needs_renumbering:
            for position, conversation in enumerate(conversations[:5]):
                # Park them out of the way first so the new numbers never collide on the way.
                bind.execute(
                    conversations_t.update()
                    .where(conversations_t.c.id == conversation["id"])
                    .values(pane_index=100 + position)
                )
            for position, conversation in enumerate(conversations[:5]):
                bind.execute(
                    conversations_t.update()
                    .where(conversations_t.c.id == conversation["id"])
                    .values(pane_index=position)
                )
            for conversation in conversations[5:]:
                _move_to_own_group(
                    conversation,
                    user_id=group["user_id"],
                    server_id=group["server_id"],
                    title=group["title"],
                )
            _count("chat groups renumbered")
        used = min(len(conversations), 5)
        pane_count = group["pane_count"]
        if pane_count not in (1, 3, 5) or pane_count < used:
            target = max(used, min(pane_count or 1, 5))
            fitted = next(n for n in (1, 3, 5) if n >= target)
            bind.execute(
                groups_t.update().where(groups_t.c.id == group_id).values(pane_count=fitted)
            )
            _count("chat groups with a pane count fixed")


def _deduplicate_personas() -> None:
    bind = op.get_bind()
    seen: dict[tuple[str, str], int] = {}
    for row in bind.execute(
        sa.select(personas_t).order_by(personas_t.c.created_at, personas_t.c.id)
    ).mappings():
        key = (row["user_id"], row["nickname"])
        if key not in seen:
            seen[key] = 1
            continue
        seen[key] += 1
        suffix = seen[key]
        while (row["user_id"], f"{row['nickname']} ({suffix})") in seen:
            suffix += 1
        nickname = f"{row['nickname']} ({suffix})"
        seen[(row["user_id"], nickname)] = 1
        bind.execute(
            personas_t.update().where(personas_t.c.id == row["id"]).values(nickname=nickname)
        )
        _count("personas renamed (duplicate nickname)")


def _migrate_users() -> None:
    """Rules 5 and 6: encrypt tokens, then drop the legacy per-user configuration columns."""
    bind = op.get_bind()
    cipher = context.config.attributes.get("token_cipher")
    if cipher is None:
        raise RuntimeError("the upgrade needs the token cipher (neonrain.db.migrate)")

    users = list(bind.execute(sa.select(users_t.c.id, users_t.c.email, users_t.c.discord_token)))
    lowered = Counter(row.email.lower() for row in users if row.email)
    for row in users:
        if row.discord_token:
            bind.execute(
                users_t.update()
                .where(users_t.c.id == row.id)
                .values(discord_token=cipher.encrypt(row.discord_token))
            )
            _count("tokens encrypted")
        if row.email and row.email != row.email.lower():
            if lowered[row.email.lower()] == 1:
                bind.execute(
                    users_t.update().where(users_t.c.id == row.id).values(email=row.email.lower())
                )
            else:
                _count("emails left as they were (lower-casing would collide)")

    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("users_server_id_fkey", type_="foreignkey")
        for column in LEGACY_USER_COLUMNS:
            batch.drop_column(column)
        batch.alter_column(
            "createdAt", new_column_name="created_at", existing_type=ts(), existing_nullable=False
        )
        batch.alter_column(
            "updatedAt", new_column_name="updated_at", existing_type=ts(), existing_nullable=False
        )
        batch.alter_column("clerk_user_id", existing_type=sa.Text(), nullable=True)
        batch.add_column(sa.Column("password_hash", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "discord_token_status",
                sa.Text(),
                nullable=False,
                server_default=sa.text("'unchecked'"),
            )
        )
        batch.add_column(sa.Column("discord_bot_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("discord_bot_username", sa.Text(), nullable=True))
        batch.add_column(sa.Column("discord_bot_avatar", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "config_generation", sa.BigInteger(), nullable=False, server_default=sa.text("0")
            )
        )
        batch.create_check_constraint(
            "users_credentials_check",
            sa.text("password_hash IS NOT NULL OR clerk_user_id IS NOT NULL"),
        )
        batch.create_check_constraint(
            "users_token_status_check",
            sa.text("discord_token_status IN ('valid', 'invalid', 'unchecked')"),
        )


def downgrade() -> None:
    raise NotImplementedError(
        "the multi-server upgrade is one-way: restore the backup taken before upgrading"
    )
