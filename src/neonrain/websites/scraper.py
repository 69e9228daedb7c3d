"""The scrape scheduler: claims due websites, fetches them, stores the results.

Scheduling lives in ``server_websites`` (see :mod:`neonrain.websites.models`):

* ``queued`` — scrape now (a new website, or a manual rescrape from the API);
* ``idle`` — scrape when ``next_scrape_at`` has passed: 24 h after a success, or after a failure
  15 min, 1 h, 6 h, then daily (:data:`BACKOFF`); a URL the fetching rules refuse (a private
  address, a forbidden port, …) is not retried: its ``next_scrape_at`` is :data:`PARKED` until a
  manual rescrape, or until a scraper starts (when the rules, i.e. the settings, may have changed:
  :meth:`Scraper.requeue_refused`, the first thing the background loop does);
* ``running`` — claimed by a scraper since ``scrape_started_at``; a claim older than
  ``stale_after`` (5 min; a fetch is bounded to 10 s) belongs to a scraper that died, and is
  claimed again.

Claims are made with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several replicas never
claim the same website, followed by a conditional ``UPDATE`` that only succeeds while the row is
still due (which is what keeps SQLite, a single writer, correct). Each process runs at most
``concurrency`` (3) scrapes at once and ``per_host`` (1) per host name.

A result is stored in one transaction: the ``website_scrapes`` row, the website's schedule, the
pruning to the newest 10 scrapes (plus the newest successful one, so a run of failures never takes
the agent's last good content away) and, for a success, :func:`mark_config_changed` last, so the
worker picks the new content up.

A successful scrape has ``error_message`` NULL; a failed one has the reason there and empty
``markdown_content``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from neonrain.db.base import utcnow
from neonrain.db.changes import ConfigChangeNotifier, mark_config_changed
from neonrain.servers.models import UserServerConfig
from neonrain.websites.extract import extract_page
from neonrain.websites.fetch import Fetcher, FetchError, loggable_url, url_host
from neonrain.websites.models import ServerWebsite, WebsiteScrape

log = logging.getLogger(__name__)

SUCCESS_INTERVAL = timedelta(hours=24)
#: ``next_scrape_at`` of a website whose URL the rules refuse: never due by itself.
PARKED = datetime(9999, 1, 1, tzinfo=UTC)
BACKOFF = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
KEEP_SCRAPES = 10

Clock = Callable[[], datetime]


def backoff_delay(failures: int) -> timedelta:
    """How long to wait after the ``failures``-th failure in a row (1-based)."""
    return BACKOFF[min(max(failures, 1), len(BACKOFF)) - 1]


@dataclass(frozen=True)
class ScraperOptions:
    concurrency: int = 3
    per_host: int = 1
    # Seconds between looks for due websites (manual rescrapes are also woken by the notifier).
    poll_interval: float = 2.0
    stale_after: timedelta = timedelta(minutes=5)
    keep: int = KEEP_SCRAPES
    # On stop, in-flight scrapes get this many seconds to finish before they are cancelled.
    stop_grace: float = 2.0
    # Due rows looked at per claim, so that rows of a busy host don't hide the others.
    candidates: int = 50
    db_timeout: float = 15.0


@dataclass(frozen=True)
class Claim:
    website_id: str
    url: str
    host: str


@dataclass(frozen=True)
class ScrapeOutcome:
    website_id: str
    host: str
    ok: bool
    status_code: int | None
    error: str | None
    content_length: int
    duration: float
    stored: bool = True


@dataclass
class _Result:
    ok: bool
    markdown: str = ""
    content_length: int = 0
    truncated: bool = False
    status_code: int | None = None
    error: str | None = None
    # The rules refuse the URL itself: asking again would get the same answer.
    refused: bool = False


@dataclass
class _Running:
    tasks: dict[asyncio.Task[ScrapeOutcome], Claim] = field(default_factory=dict)

    def hosts(self) -> list[str]:
        return [claim.host for claim in self.tasks.values()]


class Scraper:
    """Scrapes due websites in the background (:meth:`start`/:meth:`stop`) or on demand
    (:meth:`run_once`, which tests drive with an injected clock)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        fetcher: Fetcher,
        *,
        options: ScraperOptions | None = None,
        clock: Clock = utcnow,
        notifier: ConfigChangeNotifier | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._fetcher = fetcher
        self.options = options or ScraperOptions()
        self._clock = clock
        self._notifier = notifier
        self._wake = asyncio.Event()
        self._running = _Running()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="website-scraper")

    def wake(self) -> None:
        """Look for due websites now (e.g. right after a manual rescrape was queued)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; give in-flight scrapes ``stop_grace`` seconds, cancel the rest and put
        their websites back in the queue."""
        if self._loop_task is not None:
            # Let the loop finish what it is doing: cancelled in the middle of a claim, its
            # session's rollback would be cancelled too.
            self._stopping = True
            self._wake.set()
            loop_task, self._loop_task = self._loop_task, None
            await asyncio.wait({loop_task}, timeout=5)
            if not loop_task.done():
                loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop_task
        tasks = dict(self._running.tasks)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self.options.stop_grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        cancelled = [tasks[task].website_id for task in pending]
        if cancelled:
            await self._release(cancelled)
        self._running.tasks.clear()

    async def _loop(self) -> None:
        try:
            requeued = await self.requeue_refused()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not worth holding up the scraping; the next start will do
            log.warning("scraper: could not re-check websites with refused addresses: %s", exc)
        else:
            if requeued:
                log.info("scraper: re-checking %d websites whose address was refused", requeued)
        while not self._stopping:
            try:
                await self._fill()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scraper: could not claim websites; retrying")
            if self._notifier is not None and self._notifier.closed:
                return  # the process is shutting down (and the notifier no longer waits)
            await self._sleep()

    async def _sleep(self) -> None:
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._wake.wait())]
        if self._notifier is not None:
            waiters.append(asyncio.create_task(self._notifier.wait(self.options.poll_interval)))
        try:
            await asyncio.wait(
                waiters, timeout=self.options.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
            self._wake.clear()

    async def _fill(self) -> list[asyncio.Task[ScrapeOutcome]]:
        """Claim as many websites as there are free slots, and start scraping them."""
        free = self.options.concurrency - len(self._running.tasks)
        if free <= 0:
            return []
        claims = await self.claim(free, self._running.hosts())
        started = []
        for claim in claims:
            task = asyncio.create_task(self.scrape(claim), name=f"scrape-{claim.website_id}")
            self._running.tasks[task] = claim
            task.add_done_callback(self._finished)
            started.append(task)
        return started

    def _finished(self, task: asyncio.Task[ScrapeOutcome]) -> None:
        self._running.tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("scraper: a scrape task failed", exc_info=task.exception())
        self._wake.set()

    async def run_once(self) -> list[ScrapeOutcome]:
        """Scrape everything due now (respecting the limits) and return when all are done."""
        outcomes: list[ScrapeOutcome] = []
        mine: set[asyncio.Task[ScrapeOutcome]] = set()
        while True:
            mine.update(await self._fill())
            if not mine:
                return outcomes
            done, _pending = await asyncio.wait(mine, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                mine.discard(task)
                outcomes.append(task.result())

    # -- claiming ---------------------------------------------------------------------------------

    def _due(self, now: datetime) -> ColumnElement[bool]:
        website = ServerWebsite
        return or_(
            website.scrape_status == "queued",
            and_(
                website.scrape_status == "idle",
                or_(website.next_scrape_at.is_(None), website.next_scrape_at <= now),
            ),
            and_(
                website.scrape_status == "running",
                or_(
                    website.scrape_started_at.is_(None),
                    website.scrape_started_at < now - self.options.stale_after,
                ),
            ),
        )

    async def claim(self, limit: int, running_hosts: Iterable[str] = ()) -> list[Claim]:
        """Mark up to ``limit`` due websites 'running' for this scraper, keeping at most
        ``per_host`` scrapes per host counting those already running (one entry per scrape in
        ``running_hosts``)."""
        if limit <= 0:
            return []
        now = self._clock()
        due = self._due(now)
        claims: list[Claim] = []
        async with asyncio.timeout(self.options.db_timeout):
            async with self._sessionmaker() as session, session.begin():
                rows = (
                    await session.execute(
                        select(ServerWebsite.id, ServerWebsite.url)
                        .where(due)
                        .order_by(
                            case((ServerWebsite.scrape_status == "queued", 0), else_=1),
                            ServerWebsite.next_scrape_at.asc().nulls_first(),
                            ServerWebsite.id,
                        )
                        .limit(self.options.candidates)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                per_host = Counter(running_hosts)
                for website_id, url in rows:
                    host = url_host(url)
                    if per_host[host] >= self.options.per_host:
                        continue
                    result = await session.execute(
                        update(ServerWebsite)
                        .where(ServerWebsite.id == website_id, due)
                        .values(scrape_status="running", scrape_started_at=now)
                        .execution_options(synchronize_session=False)
                    )
                    if getattr(result, "rowcount", 0) != 1:
                        continue
                    per_host[host] += 1
                    claims.append(Claim(website_id=website_id, url=url, host=host))
                    if len(claims) >= limit:
                        break
        return claims

    async def requeue_refused(self) -> int:
        """Make websites parked for a refused URL due again, once: the rules may have changed
        since (``NEONRAIN_ALLOW_PRIVATE_URLS``). A URL still refused is parked again at once,
        without any request. Returns how many were re-queued."""
        async with asyncio.timeout(self.options.db_timeout):
            async with self._sessionmaker() as session, session.begin():
                result = await session.execute(
                    update(ServerWebsite)
                    .where(ServerWebsite.next_scrape_at >= PARKED)
                    .values(next_scrape_at=self._clock())
                    .execution_options(synchronize_session=False)
                )
        return int(getattr(result, "rowcount", 0) or 0)

    async def _release(self, website_ids: list[str]) -> None:
        """Put claimed-but-unfinished websites back in the queue (on stop)."""
        try:
            async with asyncio.timeout(3):
                async with self._sessionmaker() as session, session.begin():
                    await session.execute(
                        update(ServerWebsite)
                        .where(
                            ServerWebsite.id.in_(website_ids),
                            ServerWebsite.scrape_status == "running",
                        )
                        .values(scrape_status="queued", scrape_started_at=None)
                        .execution_options(synchronize_session=False)
                    )
        except Exception:
            log.warning("scraper: could not re-queue %d unfinished websites", len(website_ids))

    # -- scraping ---------------------------------------------------------------------------------

    async def scrape(self, claim: Claim) -> ScrapeOutcome:
        """Fetch, extract and store one claimed website."""
        started = time.perf_counter()
        result = await self._fetch(claim)
        duration = time.perf_counter() - started
        stored = await self._store(claim, result)
        outcome = ScrapeOutcome(
            website_id=claim.website_id,
            host=claim.host,
            ok=result.ok,
            status_code=result.status_code,
            error=result.error,
            content_length=result.content_length,
            duration=duration,
            stored=stored,
        )
        log.info(
            "scrape website=%s host=%s url=%s outcome=%s status=%s chars=%d truncated=%s "
            "duration_ms=%.0f%s",
            claim.website_id,
            claim.host,
            loggable_url(claim.url),
            "success" if result.ok else "error",
            result.status_code,
            result.content_length,
            result.truncated,
            duration * 1000,
            "" if result.ok else f" error={result.error!r}",
        )
        return outcome

    async def _fetch(self, claim: Claim) -> _Result:
        try:
            page = await self._fetcher.fetch(claim.url)
        except FetchError as exc:
            return _Result(
                ok=False, status_code=exc.status_code, error=exc.message, refused=exc.url_refused
            )
        except Exception:
            log.exception("scrape website=%s: unexpected fetch failure", claim.website_id)
            return _Result(ok=False, error="the page could not be fetched (internal error)")
        try:
            extracted = await extract_page(page)
        except Exception:
            log.exception("scrape website=%s: extraction failed", claim.website_id)
            return _Result(
                ok=False,
                status_code=page.status_code,
                error="the page was fetched but its content could not be read",
            )
        return _Result(
            ok=True,
            markdown=extracted.content,
            content_length=extracted.length,
            truncated=extracted.truncated,
            status_code=page.status_code,
        )

    async def _store(self, claim: Claim, result: _Result) -> bool:
        """Store the scrape and reschedule; False when the website was deleted meanwhile."""
        async with asyncio.timeout(self.options.db_timeout):
            async with self._sessionmaker() as session, session.begin():
                row = (
                    await session.execute(
                        select(ServerWebsite, UserServerConfig.user_id)
                        .join(
                            UserServerConfig,
                            UserServerConfig.id == ServerWebsite.user_server_config_id,
                        )
                        .where(ServerWebsite.id == claim.website_id)
                        .with_for_update(of=ServerWebsite)
                    )
                ).first()
                if row is None:
                    return False
                website, user_id = row
                now = self._clock()
                session.add(
                    WebsiteScrape(
                        website_id=website.id,
                        markdown_content=result.markdown,
                        content_length=result.content_length,
                        truncated=result.truncated,
                        status_code=result.status_code,
                        error_message=result.error,
                        scraped_at=now,
                    )
                )
                if result.ok:
                    website.scrape_failures = 0
                    website.next_scrape_at = now + SUCCESS_INTERVAL
                else:
                    website.scrape_failures = website.scrape_failures + 1
                    website.next_scrape_at = (
                        PARKED if result.refused else now + backoff_delay(website.scrape_failures)
                    )
                # A manual rescrape queued while this one ran stays queued.
                if website.scrape_status == "running":
                    website.scrape_status = "idle"
                website.scrape_started_at = None
                await session.flush()
                await self._prune(session, website.id)
                if result.ok:
                    await mark_config_changed(session, [user_id])
        return True

    async def _prune(self, session: AsyncSession, website_id: str) -> None:
        newest = (
            select(WebsiteScrape.id)
            .where(WebsiteScrape.website_id == website_id)
            .order_by(WebsiteScrape.scraped_at.desc(), WebsiteScrape.id.desc())
            .limit(self.options.keep)
        )
        newest_success = (
            select(WebsiteScrape.id)
            .where(WebsiteScrape.website_id == website_id, WebsiteScrape.error_message.is_(None))
            .order_by(WebsiteScrape.scraped_at.desc(), WebsiteScrape.id.desc())
            .limit(1)
        )
        await session.execute(
            delete(WebsiteScrape)
            .where(
                WebsiteScrape.website_id == website_id,
                WebsiteScrape.id.not_in(newest),
                WebsiteScrape.id.not_in(newest_success),
            )
            .execution_options(synchronize_session=False)
        )
