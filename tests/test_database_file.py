"""The SQLite database holds password hashes and encrypted tokens: it is created readable by its
owner only (0600), like the secret key file, and so are SQLite's journal files next to it."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from neonrain.app import create_app
from tests.conftest import api_client, make_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_db_upgrade_creates_the_database_0600(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "neonrain", "db", "upgrade"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "neonrain.db") == 0o600
    assert mode(tmp_path / ".neonrain-secret") == 0o600


async def test_the_app_creates_the_database_0600_and_its_journal_too(tmp_path: Path) -> None:
    path = tmp_path / "data" / "neonrain.db"
    app = create_app(make_settings(f"sqlite+aiosqlite:///{path}", tmp_path))
    assert mode(path) == 0o600  # before anything connected
    async with app.router.lifespan_context(app), api_client(app) as http:
        # Not migrated: this only needs the file to be opened and written by SQLite.
        assert (await http.get("/healthz")).status_code == 200
    await app.state.neonrain.engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("CREATE TABLE t (x)")
        journal = path.with_name(path.name + "-journal")
        assert journal.exists()
        assert mode(journal) == 0o600
        connection.execute("ROLLBACK")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE w (x)")
        assert mode(path.with_name(path.name + "-wal")) == 0o600
    finally:
        connection.close()
    assert mode(path) == 0o600
