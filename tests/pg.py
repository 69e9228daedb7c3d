"""Throwaway PostgreSQL databases for tests (the server on 127.0.0.1:5432, user postgres)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg

ADMIN_DSN = os.environ.get("NEONRAIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
_available: tuple[bool, str] | None = None


def _base(dsn: str) -> str:
    return dsn.rsplit("/", 1)[0]


def sqlalchemy_url(name: str) -> str:
    return _base(ADMIN_DSN).replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name


def asyncpg_dsn(name: str) -> str:
    return _base(ADMIN_DSN) + "/" + name


async def _probe() -> tuple[bool, str]:
    try:
        connection = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return False, f"PostgreSQL is not reachable at {ADMIN_DSN}: {exc}"
    await connection.close()
    return True, ""


def postgres_available() -> tuple[bool, str]:
    """Probed once per run (in a thread, so it works inside a running event loop too)."""
    global _available
    if _available is None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            _available = pool.submit(asyncio.run, _probe()).result()
    return _available


async def create_database(prefix: str = "neonrain_test") -> str:
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def throwaway_database(prefix: str = "neonrain_test") -> AsyncIterator[str]:
    """A new empty database, dropped afterwards; yields its name."""
    name = await create_database(prefix)
    try:
        yield name
    finally:
        await drop_database(name)


@contextlib.contextmanager
def throwaway_database_sync(prefix: str = "neonrain_test") -> Iterator[str]:
    name = asyncio.run(create_database(prefix))
    try:
        yield name
    finally:
        asyncio.run(drop_database(name))
