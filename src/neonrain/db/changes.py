"""The configuration change marker that lets the worker ask "anything new?" cheaply.

Every write the worker can see (tokens, server configurations, websites and their content) calls
:func:`mark_config_changed` inside its transaction. That bumps one global generation counter and
stamps the affected users with it. Because the counter row stays locked until the transaction
commits, generations become visible in order: a reader that has seen generation N has seen every
change up to N. After the commit the in-process :class:`ConfigChangeNotifier` wakes long-polling
requests; on PostgreSQL a ``NOTIFY`` does the same for the other replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    column,
    event,
    func,
    literal,
    select,
    table,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as SyncSession

from neonrain.db.base import Base, utcnow

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "neonrain_config"
_NOTIFIER_KEY = "config_notifier"
_CHANGED_KEY = "config_changed"


class ConfigState(Base):
    """A single row (id 1) holding the current configuration generation."""

    __tablename__ = "config_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


class ConfigRemoval(Base):
    """Users whose tokens vanished with their account, so a delta answer can report them."""

    __tablename__ = "config_removals"
    __table_args__ = (Index("config_removals_generation_idx", "generation"),)

    user_id: Mapped[str] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    removed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigChangeNotifier:
    """Wakes everyone waiting for a configuration change in this process."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def notify(self) -> None:
        event_, self._event = self._event, asyncio.Event()
        event_.set()

    def close(self) -> None:
        """The process is shutting down: wake every waiter, and make later waits return at once
        (long-polling requests then answer immediately instead of holding up the shutdown)."""
        self.closed = True
        self.notify()

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the next change; True when one happened."""
        if self.closed:
            return False
        current = self._event
        try:
            await asyncio.wait_for(current.wait(), timeout)
        except TimeoutError:
            return False
        return True


#: The two columns of ``users`` (``accounts.models.User``) the marker stamps, named here so that
#: the database layer does not import a domain.
_USERS = table("users", column("id"), column("config_generation"))


def notifier_info(notifier: ConfigChangeNotifier) -> dict[str, object]:
    """Session ``info`` that makes committed changes wake ``notifier``."""
    return {_NOTIFIER_KEY: notifier}


async def _bump_generation(session: AsyncSession) -> int:
    generation = (
        await session.execute(
            update(ConfigState)
            .where(ConfigState.id == 1)
            .values(generation=ConfigState.generation + 1)
            .returning(ConfigState.generation)
        )
    ).scalar_one()
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(literal(NOTIFY_CHANNEL), literal(""))))
    session.info[_CHANGED_KEY] = True
    return int(generation)


async def mark_config_changed(session: AsyncSession, user_ids: Iterable[str]) -> int:
    """Record that the worker-visible configuration of ``user_ids`` changed; returns the generation.

    Call it last in the transaction: it holds the counter row's lock until commit.
    """
    ids = sorted(set(user_ids))
    if not ids:
        return await current_generation(session)
    generation = await _bump_generation(session)
    await session.execute(
        update(_USERS)
        .where(_USERS.c.id.in_(ids))
        .values(config_generation=generation)
        .execution_options(synchronize_session=False)
    )
    return generation


async def record_removed_users(session: AsyncSession, user_ids: Iterable[str]) -> None:
    """Tombstones for users whose accounts are deleted, so delta answers can name them."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    generation = await _bump_generation(session)
    for user_id in ids:
        await session.merge(ConfigRemoval(user_id=user_id, generation=generation))


async def current_generation(session: AsyncSession) -> int:
    value = await session.scalar(select(ConfigState.generation).where(ConfigState.id == 1))
    return int(value or 0)


@event.listens_for(SyncSession, "after_commit")
def _wake_waiters(session: SyncSession) -> None:
    if session.info.pop(_CHANGED_KEY, False):
        notifier = session.info.get(_NOTIFIER_KEY)
        if isinstance(notifier, ConfigChangeNotifier):
            notifier.notify()


@event.listens_for(SyncSession, "after_rollback")
def _forget_changes(session: SyncSession) -> None:
    session.info.pop(_CHANGED_KEY, None)


class PostgresChangeListener:
    """LISTENs on the change channel so that writes on other replicas wake this one's waiters."""

    def __init__(self, dsn: str, notifier: ConfigChangeNotifier) -> None:
        self._dsn = dsn
        self._notifier = notifier
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-config-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        import asyncpg

        delay = 1.0
        while True:
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("config listener cannot connect (%s); retrying in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            closed = asyncio.Event()
            try:
                connection.add_termination_listener(lambda _c, event=closed: event.set())
                await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
                # A change may have committed while we were not listening.
                self._notifier.notify()
                await closed.wait()
                log.warning("config listener lost its database connection; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()

    def _on_notify(self, *_args: object) -> None:
        self._notifier.notify()
