"""Upgrading legacy single-server databases in place (legacy-schema.md, rules 1–8)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import asyncpg
import pytest

from neonrain.app import create_app
from neonrain.crypto import TokenCipher
from neonrain.db.migrate import head_revision, upgrade_database
from tests import pg
from tests.clerk import ISSUER, FakeClerk
from tests.conftest import TEST_SECRET_KEY, api_client, make_settings, require_postgres
from tests.migrations import legacy_db
from tests.migrations.legacy_db import at

pytestmark = pytest.mark.postgres


@pytest.fixture(params=[True, False], ids=["full-legacy", "minimal-legacy"])
async def legacy(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, legacy_db.LegacyData]]:
    require_postgres()
    async with pg.throwaway_database("neonrain_legacy") as name:
        data = await legacy_db.build(pg.asyncpg_dsn(name), full=bool(request.param))
        yield name, data


async def fetch(name: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(pg.asyncpg_dsn(name))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def dump(name: str) -> dict[str, Any]:
    """Every table's columns and rows: what "untouched" is checked against."""
    connection = await asyncpg.connect(pg.asyncpg_dsn(name))
    try:
        tables = [
            r["tablename"]
            for r in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        result: dict[str, Any] = {}
        for table in tables:
            columns = [
                r["column_name"]
                for r in await connection.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
                    " ORDER BY ordinal_position",
                    table,
                )
            ]
            rows = await connection.fetch(f'SELECT * FROM "{table}" ORDER BY 1')
            result[table] = (columns, [tuple(r) for r in rows])
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        )
        result["__indexes__"] = [tuple(r) for r in indexes]
        return result
    finally:
        await connection.close()


def naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if value is not None and value.tzinfo else value


async def configs_by_user(name: str) -> dict[str, asyncpg.Record]:
    rows = await fetch(
        name,
        "SELECT c.*, s.guild_id, s.guild_name FROM user_server_configs c"
        " JOIN servers s ON s.id = c.server_id",
    )
    return {row["user_id"]: row for row in rows}


async def upgrade(name: str) -> Any:
    return await upgrade_database(pg.sqlalchemy_url(name), TokenCipher(TEST_SECRET_KEY))


async def test_rule_1_users_with_a_server_keep_their_configuration_and_stats(legacy) -> None:
    name, data = legacy
    await upgrade(name)
    configs = await configs_by_user(name)
    alice = configs[data.ids["alice"]]
    assert alice["server_id"] == data.ids["server_gaming"]
    assert alice["bot_name"] == ("Pixel" if data.full else "Assistant")
    assert (alice["personality"], alice["rules"], alice["information"]) == (
        "Cheerful gamer",
        "No spoilers",
        "We play on Fridays",
    )
    assert alice["bot_active"] is True
    assert (alice["messages_sent_count"], alice["messages_received_count"]) == (42, 100)
    assert naive(alice["last_message_sent_at"]) == at(50)
    assert naive(alice["last_message_received_at"]) == at(55)
    # Two accounts on the same guild: two independent configurations of one server row.
    dave = configs[data.ids["dave"]]
    assert dave["server_id"] == data.ids["server_gaming"]
    assert (dave["personality"], dave["bot_active"]) == ("Grumpy", False)
    assert dave["bot_name"] == ("Helper" if data.full else "Assistant")


async def test_rule_2_users_with_only_a_selected_guild_are_not_lost(legacy) -> None:
    name, data = legacy
    await upgrade(name)
    configs = await configs_by_user(name)
    bob = configs[data.ids["bob"]]
    assert bob["guild_id"] == "900000000000000777"
    assert bob["guild_name"] == "Bob's Bakery"
    assert (bob["personality"], bob["rules"], bob["information"]) == ("Warm", "", "Open 8-18")
    assert bob["bot_name"] == "Assistant"
    assert (bob["messages_sent_count"], bob["messages_received_count"]) == (3, 7)
    # A selected guild that already had a servers row reuses it (and its name).
    erin = configs[data.ids["erin"]]
    assert erin["server_id"] == data.ids["server_support"]
    assert erin["guild_name"] == "Support Desk"
    assert erin["bot_active"] is True
    # Neither: no configuration, but the account stays.
    assert data.ids["carol"] not in configs
    users = await fetch(name, "SELECT id FROM users ORDER BY id")
    assert len(users) == 5
    servers = await fetch(name, "SELECT guild_id FROM servers")
    assert sorted(r["guild_id"] for r in servers) == [
        "900000000000000001",
        "900000000000000002",
        "900000000000000003",
        "900000000000000777",
    ]


async def test_rule_3_websites_follow_every_configuration_of_their_server(legacy) -> None:
    name, data = legacy
    report = await upgrade(name)
    configs = await configs_by_user(name)
    for user in ("alice", "dave"):
        config_id = configs[data.ids[user]]["id"]
        websites = await fetch(
            name,
            "SELECT id, url, name FROM server_websites WHERE user_server_config_id = $1"
            " ORDER BY url",
            config_id,
        )
        assert [(w["url"], w["name"]) for w in websites] == [
            ("https://docs.example.com/", "Docs"),
            ("https://status.example.com/", None),
        ]
        docs_scrapes = await fetch(
            name,
            "SELECT markdown_content, status_code, error_message FROM website_scrapes"
            " WHERE website_id = $1 ORDER BY scraped_at",
            websites[0]["id"],
        )
        assert [tuple(s) for s in docs_scrapes] == [
            ("# Docs\n\nHow to join.", 200, None),
            ("", 503, "Service Unavailable"),
        ]
    # The original rows stay with the first configuration; the copies are new rows.
    original = await fetch(
        name,
        "SELECT user_server_config_id FROM server_websites WHERE id = $1",
        data.ids["site_docs"],
    )
    assert original[0]["user_server_config_id"] in {
        configs[data.ids["alice"]]["id"],
        configs[data.ids["dave"]]["id"],
    }
    # The website of a server nobody configured cannot belong to anyone: dropped and counted.
    orphan = await fetch(
        name, "SELECT id FROM server_websites WHERE url = 'https://orphan.example.com/'"
    )
    assert orphan == []
    assert report.summary["websites moved"] == 2
    assert report.summary["websites copied for another account on the same server"] == 2
    assert report.summary["websites dropped (server not configured by anyone)"] == 1
    assert len(await fetch(name, "SELECT id FROM website_scrapes")) == 6


async def test_rule_4_chats_are_bound_to_the_users_server_and_no_message_is_lost(legacy) -> None:
    name, data = legacy
    await upgrade(name)
    ids = data.ids
    conversations = {
        r["id"]: r
        for r in await fetch(
            name,
            "SELECT c.id, c.group_id, c.pane_index, g.server_id, g.title, g.pane_count"
            " FROM chat_conversations c JOIN chat_conversation_groups g ON g.id = c.group_id",
        )
    }
    alice_history = conversations[ids["conv_alice"]]
    assert (alice_history["title"], alice_history["pane_count"]) == ("Chat history", 1)
    assert alice_history["server_id"] == ids["server_gaming"]
    carol_history = conversations[ids["conv_carol"]]
    assert carol_history["server_id"] is None and carol_history["title"] == "Chat history"
    messages = await fetch(
        name,
        "SELECT id, conversation_id, content FROM chat_messages ORDER BY created_at",
    )
    by_id = {m["id"]: m for m in messages}
    assert by_id["m1"]["conversation_id"] == ids["conv_alice"]
    assert by_id["m2"]["content"] == "Hello Alice!"
    assert by_id["m3"]["conversation_id"] == ids["conv_carol"]
    if data.full:
        assert len(messages) == 4
        group = await fetch(
            name,
            "SELECT server_id, title, pane_count FROM chat_conversation_groups WHERE id = $1",
            ids["group_alice"],
        )
        assert tuple(group[0]) == (ids["server_gaming"], "Launch planning", 3)
        panes = sorted(
            c["pane_index"] for c in conversations.values() if c["group_id"] == ids["group_alice"]
        )
        assert panes == [0, 1, 2]
        personas = await fetch(name, "SELECT nickname FROM chat_personas ORDER BY nickname")
        assert [p["nickname"] for p in personas] == ["Moderator", "Newbie"]
    else:
        assert len(messages) == 3
    # The one-conversation-per-user index is gone: a user may now have several.
    indexes = await fetch(
        name, "SELECT indexname FROM pg_indexes WHERE tablename = 'chat_conversations'"
    )
    assert "chat_conversations_user_id_key" not in {r["indexname"] for r in indexes}


async def test_rule_5_tokens_are_encrypted_and_pending_tokens_dropped(legacy) -> None:
    name, data = legacy
    report = await upgrade(name)
    rows = {
        r["id"]: r
        for r in await fetch(name, "SELECT id, discord_token, discord_token_status FROM users")
    }
    cipher = TokenCipher(TEST_SECRET_KEY)
    alice = rows[data.ids["alice"]]
    assert alice["discord_token"] != "alice-user-token"
    assert cipher.decrypt(alice["discord_token"]) == "alice-user-token"
    assert cipher.decrypt(rows[data.ids["carol"]]["discord_token"]) == "carol-user-token"
    assert rows[data.ids["bob"]]["discord_token"] is None
    assert alice["discord_token_status"] == "unchecked"
    assert report.summary["tokens encrypted"] == 2
    tables = await fetch(name, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    names = {t["tablename"] for t in tables}
    assert "pending_discord_tokens" not in names
    assert "_prisma_migrations" not in names


async def test_rule_6_legacy_user_columns_are_removed_and_accounts_kept(legacy) -> None:
    name, data = legacy
    await upgrade(name)
    columns = {
        r["column_name"]
        for r in await fetch(
            name,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'",
        )
    }
    for legacy_column in (
        "selected_guild_id", "selected_guild_name", "server_id", "discord_bot_active",
        "personality", "rules", "information", "bot_name", "messages_sent_count",
        "messages_received_count", "last_message_sent_at", "last_message_received_at",
        "createdAt", "updatedAt",
    ):  # fmt: skip
        assert legacy_column not in columns
    assert {"clerk_user_id", "email", "created_at", "updated_at", "password_hash"} <= columns
    users = {r["id"]: r for r in await fetch(name, "SELECT * FROM users")}
    assert users[data.ids["alice"]]["email"] == "alice@example.com"
    assert users[data.ids["alice"]]["clerk_user_id"] == "user_alice"
    assert naive(users[data.ids["alice"]]["created_at"]) == at(0)


async def test_rule_7_summary_is_printed_by_the_command(legacy, tmp_path) -> None:
    name, _data = legacy
    env = {
        **os.environ,
        "DATABASE_URL": pg.asyncpg_dsn(name),
        "NEONRAIN_SECRET_KEY": TEST_SECRET_KEY,
    }
    result = subprocess.run(
        [sys.executable, "-m", "neonrain", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "adopted a legacy (single-server) Neonrain database" in out
    assert "  users: 5" in out
    assert "  configurations created: 4" in out
    assert "  websites moved: 2" in out
    assert "  conversations converted: 2" in out
    assert "  tokens encrypted: 2" in out
    assert f"now at {head_revision()}" in out
    assert "alice-user-token" not in out + result.stderr
    again = subprocess.run(
        [sys.executable, "-m", "neonrain", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert again.returncode == 0
    assert "nothing to do" in again.stdout


async def test_rule_7_a_failure_halfway_leaves_the_legacy_database_untouched(legacy) -> None:
    name, _data = legacy

    class ExplodingCipher(TokenCipher):
        """Fails at rule 5, after configurations, websites and chats were already migrated."""

        def encrypt(self, plaintext: str) -> str:
            raise RuntimeError("disk full (injected)")

    before = await dump(name)
    with pytest.raises(RuntimeError, match="injected"):
        await upgrade_database(pg.sqlalchemy_url(name), ExplodingCipher(TEST_SECRET_KEY))
    assert await dump(name) == before
    # And the database still upgrades afterwards.
    report = await upgrade(name)
    assert report.summary["configurations created"] == 4


async def test_rule_8_a_second_upgrade_is_a_no_op(legacy) -> None:
    name, _data = legacy
    await upgrade(name)
    after_first = await dump(name)
    report = await upgrade(name)
    assert not report.changed
    assert await dump(name) == after_first


async def test_legacy_user_signs_in_with_clerk_and_finds_their_account(legacy, tmp_path) -> None:
    name, data = legacy
    await upgrade(name)
    clerk = FakeClerk()
    await clerk.start()
    try:
        settings = make_settings(
            pg.sqlalchemy_url(name), tmp_path, CLERK_JWKS_URL=clerk.jwks_url, CLERK_ISSUER=ISSUER
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app), api_client(app) as http:
            token = clerk.token("user_alice")
            response = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            assert response.json()["user"] == {
                "id": data.ids["alice"],
                "email": "alice@example.com",
            }
    finally:
        await clerk.stop()
    created = await fetch(name, "SELECT count(*) AS n FROM users")
    assert created[0]["n"] == 5  # signed in as the existing account, none created


def test_timestamps_come_back_in_utc() -> None:
    from neonrain.db.base import UTCDateTime, iso

    value = UTCDateTime().process_result_value(at(0), None)  # type: ignore[arg-type]
    assert value is not None and value.tzinfo is UTC
    assert iso(value) == "2026-03-01T12:00:00.000Z"
