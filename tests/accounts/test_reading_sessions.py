"""Signed-in reads: the session is looked up, not written; read-only routes use sessions that
run without a transaction on PostgreSQL and are opened in turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from neonrain.accounts.models import Session
from neonrain.accounts.service import SESSION_TOUCH_INTERVAL
from neonrain.db.base import utcnow
from neonrain.state import get_read_db
from tests.conftest import register_user


async def _sessions(app: FastAPI) -> list[Session]:
    async with app.state.neonrain.sessionmaker() as db:
        return list((await db.scalars(select(Session))).all())


async def test_a_recently_used_session_is_not_written_by_reads(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register_user(client)
    client.cookies.clear()
    seen = utcnow() - SESSION_TOUCH_INTERVAL / 2
    seen = seen.replace(microsecond=seen.microsecond // 1000 * 1000)  # what TIMESTAMP(3) keeps
    async with app.state.neonrain.sessionmaker() as db:
        await db.execute(update(Session).values(last_seen_at=seen, updated_at=seen))
        await db.commit()
    for path in ("/api/auth/me", "/api/servers", "/api/discord/status"):
        assert (await client.get(path, headers=user.headers)).status_code == 200
    [session] = await _sessions(app)
    assert session.last_seen_at == seen
    assert session.updated_at == seen


async def test_a_session_idle_longer_than_the_interval_is_touched_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register_user(client)
    client.cookies.clear()
    seen = utcnow() - SESSION_TOUCH_INTERVAL - timedelta(seconds=5)
    async with app.state.neonrain.sessionmaker() as db:
        await db.execute(update(Session).values(last_seen_at=seen))
        await db.commit()
    assert (await client.get("/api/servers", headers=user.headers)).status_code == 200
    [touched] = await _sessions(app)
    assert touched.last_seen_at > seen + SESSION_TOUCH_INTERVAL
    assert touched.expires_at > utcnow() + timedelta(days=29)
    assert (await client.get("/api/servers", headers=user.headers)).status_code == 200
    [again] = await _sessions(app)
    assert again.last_seen_at == touched.last_seen_at


def _request(app: FastAPI) -> Request:
    return Request({"type": "http", "app": app, "method": "GET", "path": "/", "headers": []})


async def _open(app: FastAPI) -> tuple[AsyncIterator[AsyncSession], AsyncSession]:
    sessions = get_read_db(_request(app))
    return sessions, await anext(sessions)


async def _close(sessions: AsyncIterator[AsyncSession]) -> None:
    assert await anext(sessions, None) is None


async def test_reading_sessions_run_without_a_transaction_on_postgresql(
    app: FastAPI, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite: a BEGIN costs no round trip there")
    # now() is the start of the transaction: the same for every statement of one.
    now = text("SELECT now()")
    sessions, session = await _open(app)
    try:
        first, second = [(await session.execute(now)).scalar_one() for _ in range(2)]
    finally:
        await _close(sessions)
    assert second > first
    async with app.state.neonrain.sessionmaker() as writer:
        first, second = [(await writer.execute(now)).scalar_one() for _ in range(2)]
    assert second == first


async def test_reading_sessions_leave_a_third_of_the_pool_to_writes(
    app: FastAPI, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite: one writer, no pool to share out")
    pool_size = app.state.neonrain.engine.sync_engine.pool.size()
    turns = pool_size * 2 // 3
    opened = [await _open(app) for _ in range(turns)]
    waiting = asyncio.create_task(_open(app))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()
    # The connections left over still serve writes meanwhile.
    async with app.state.neonrain.sessionmaker() as db:
        await db.execute(update(Session).values(user_agent="x"))
        await db.commit()
    await _close(opened.pop()[0])
    later, _session = await asyncio.wait_for(waiting, 10)
    await _close(later)
    for sessions, _session in opened:
        await _close(sessions)
