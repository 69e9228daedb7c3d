"""The scraper against a local site, on SQLite and PostgreSQL: storing, schedule, limits, SSRF."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import func, select

from neonrain import background
from neonrain.app import build_state, create_app
from neonrain.config import Settings
from neonrain.state import AppState
from neonrain.websites.fetch import Fetcher, system_resolver
from neonrain.websites.models import ServerWebsite, WebsiteScrape
from neonrain.websites.scraper import (
    BACKOFF,
    SUCCESS_INTERVAL,
    Claim,
    Scraper,
    ScraperOptions,
    backoff_delay,
)
from tests.conftest import make_settings
from tests.websites.conftest import (
    AllowHosts,
    Connections,
    FakeClock,
    FakeResolver,
    Listener,
    Seed,
    Site,
    make_scraper,
)
from tests.websites.test_extract import ARTICLE


async def test_new_website_is_scraped_and_stored(state: AppState, seed: Seed, site: Site) -> None:
    site.html("/bakery", ARTICLE)
    website_id = await seed.website(site.url("/bakery"))
    clock = FakeClock()
    generation = await seed.generation()

    outcomes = await make_scraper(state, clock=clock).run_once()

    assert [o.ok for o in outcomes] == [True]
    (scrape,) = await seed.scrapes(website_id)
    assert scrape.error_message is None
    assert scrape.status_code == 200
    assert scrape.markdown_content.startswith("# Neon Bakery\n")
    assert "## Opening hours" in scrape.markdown_content
    assert "[menu page](https://neon.example/menu)" in scrape.markdown_content
    assert scrape.content_length == len(scrape.markdown_content)
    assert not scrape.truncated
    assert scrape.scraped_at == clock.now
    website = await seed.get(website_id)
    assert website.scrape_status == "idle"
    assert website.scrape_failures == 0
    assert website.next_scrape_at == clock.now + SUCCESS_INTERVAL
    assert website.scrape_started_at is None
    # The worker's change marker moved, so the new content reaches it.
    assert await seed.generation() > generation


async def test_long_page_is_stored_truncated(state: AppState, seed: Seed, site: Site) -> None:
    site.html(
        "/long", "All work and no play makes a dull page.\n" * 2000, content_type="text/plain"
    )
    website_id = await seed.website(site.url("/long"))
    await make_scraper(state).run_once()
    (scrape,) = await seed.scrapes(website_id)
    assert scrape.truncated
    assert scrape.content_length == len(
        ("All work and no play makes a dull page.\n" * 2000).strip()
    )
    assert len(scrape.markdown_content) <= 20_000
    assert scrape.markdown_content.endswith("the first part is shown]")


async def test_body_over_5_mb_is_cut_off_and_stored(
    state: AppState, seed: Seed, site: Site
) -> None:
    line = b"a line of a very large text file\n"

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        block = line * 2000
        for _ in range((6 * 1024 * 1024) // len(block)):
            await response.write(block)
        return response

    site.route("/huge", huge)
    website_id = await seed.website(site.url("/huge"))
    await make_scraper(state).run_once()
    (scrape,) = await seed.scrapes(website_id)
    assert scrape.error_message is None
    assert scrape.truncated
    assert scrape.content_length > 4_000_000
    assert "5 MB read limit" in scrape.markdown_content


async def test_non_html_is_stored_as_an_error(state: AppState, seed: Seed, site: Site) -> None:
    async def pdf(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"%PDF-1.7", content_type="application/pdf")

    site.route("/doc.pdf", pdf)
    website_id = await seed.website(site.url("/doc.pdf"))
    generation = await seed.generation()
    await make_scraper(state).run_once()
    (scrape,) = await seed.scrapes(website_id)
    assert scrape.error_message == "the page is not HTML or text (application/pdf)"
    assert scrape.status_code == 200
    assert scrape.markdown_content == ""
    assert await seed.generation() == generation  # nothing new for the worker


async def test_failing_site_is_retried_on_the_backoff_schedule(
    state: AppState, seed: Seed, site: Site
) -> None:
    healthy = False

    async def flaky(_request: web.Request) -> web.StreamResponse:
        if healthy:
            return web.Response(text=ARTICLE, content_type="text/html")
        return web.Response(status=503, text="down")

    site.route("/", flaky)
    website_id = await seed.website(site.url("/"))
    clock = FakeClock()
    scraper = make_scraper(state, clock=clock)

    expected = [timedelta(minutes=15), timedelta(hours=1), timedelta(hours=6)] + [
        timedelta(hours=24)
    ] * 2
    for attempt, delay in enumerate(expected, start=1):
        outcomes = await scraper.run_once()
        assert [o.error for o in outcomes] == ["the site answered 503 Service Unavailable"]
        website = await seed.get(website_id)
        assert website.scrape_status == "idle"
        assert website.scrape_failures == attempt
        assert website.next_scrape_at == clock.now + delay
        # Not due a second before the delay is over; due exactly when it is.
        clock.advance(delay - timedelta(seconds=1))
        assert await scraper.run_once() == []
        clock.advance(timedelta(seconds=1))
    assert len(site.requests) == len(expected)

    healthy = True
    assert [o.ok for o in await scraper.run_once()] == [True]
    website = await seed.get(website_id)
    assert website.scrape_failures == 0
    assert website.next_scrape_at == clock.now + SUCCESS_INTERVAL
    # The next scrape is a day later.
    clock.advance(SUCCESS_INTERVAL - timedelta(seconds=1))
    assert await scraper.run_once() == []
    clock.advance(timedelta(seconds=1))
    assert len(await scraper.run_once()) == 1


def test_backoff_delays() -> None:
    assert [backoff_delay(n) for n in range(1, 7)] == [*BACKOFF, BACKOFF[-1], BACKOFF[-1]]


async def test_failed_rescrape_keeps_last_good_content(
    state: AppState, seed: Seed, site: Site
) -> None:
    healthy = True

    async def page(_request: web.Request) -> web.StreamResponse:
        if healthy:
            return web.Response(text=ARTICLE, content_type="text/html")
        return web.Response(status=500, text="oops")

    site.route("/", page)
    website_id = await seed.website(site.url("/"))
    clock = FakeClock()
    scraper = make_scraper(state, clock=clock)
    await scraper.run_once()
    good = (await seed.scrapes(website_id))[0]

    healthy = False
    for _ in range(12):  # more failures than scrapes are kept
        clock.advance(timedelta(minutes=1))
        await seed.queue(website_id)
        await scraper.run_once()

    scrapes = await seed.scrapes(website_id)
    # The newest 10, plus the newest successful one (never pruned while it is the last good one).
    assert len(scrapes) == 11
    assert scrapes[0].error_message == "the site answered 500 Internal Server Error"
    successes = [s for s in scrapes if s.error_message is None]
    assert [s.id for s in successes] == [good.id]
    assert successes[0].markdown_content == good.markdown_content

    # Once a new success lands, pruning is back to the newest 10.
    healthy = True
    clock.advance(timedelta(minutes=1))
    await seed.queue(website_id)
    await scraper.run_once()
    scrapes = await seed.scrapes(website_id)
    assert len(scrapes) == 10
    assert scrapes[0].error_message is None
    assert good.id not in {s.id for s in scrapes}


async def test_manual_rescrape_is_claimed_even_before_it_is_due(
    state: AppState, seed: Seed, site: Site
) -> None:
    site.html("/", ARTICLE)
    website_id = await seed.website(site.url("/"))
    clock = FakeClock()
    scraper = make_scraper(state, clock=clock)
    await scraper.run_once()
    assert await scraper.run_once() == []  # not due for a day
    await seed.queue(website_id)
    assert len(await scraper.run_once()) == 1
    assert len(await seed.scrapes(website_id)) == 2


async def test_stale_running_claim_is_taken_over(state: AppState, seed: Seed, site: Site) -> None:
    site.html("/", ARTICLE)
    clock = FakeClock()
    website_id = await seed.website(
        site.url("/"), scrape_status="running", scrape_started_at=clock.now
    )
    scraper = make_scraper(state, clock=clock)
    clock.advance(timedelta(minutes=4))
    assert await scraper.run_once() == []  # a live scraper may still be on it
    clock.advance(timedelta(minutes=2))
    assert len(await scraper.run_once()) == 1
    assert (await seed.get(website_id)).scrape_status == "idle"


async def test_deleted_while_scraping_is_ignored(state: AppState, seed: Seed, site: Site) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.3)
        return web.Response(text=ARTICLE, content_type="text/html")

    site.route("/", slow)
    website_id = await seed.website(site.url("/"))
    scraper = make_scraper(state)
    running = asyncio.create_task(scraper.run_once())
    await site.first_request()
    async with state.sessionmaker() as session, session.begin():
        website = await session.get(ServerWebsite, website_id)
        await session.delete(website)
    (outcome,) = await running
    assert outcome.ok and not outcome.stored
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WebsiteScrape)) == 0


async def test_concurrency_limits(state: AppState, seed: Seed, site: Site) -> None:
    """12 websites on 4 hosts: never more than 3 requests at once, never 2 to one host."""
    site.delay = 0.15
    site.html("/*", ARTICLE)
    hosts = [f"host{i}.test" for i in range(4)]
    resolver = FakeResolver({host: ["127.0.0.1"] for host in hosts})
    for host in hosts:
        for page in range(3):
            await seed.website(site.url(f"/p{page}", host=host))
    scraper = make_scraper(state, fetcher=Fetcher(allow_private=True, resolver=resolver))

    started = time.perf_counter()
    outcomes = await scraper.run_once()
    elapsed = time.perf_counter() - started

    assert len(outcomes) == 12 and all(o.ok for o in outcomes)
    assert site.max_active == 3
    assert max(site.max_by_host.values()) == 1
    assert len(site.requests) == 12
    assert elapsed >= 4 * site.delay  # 12 requests, 3 at a time


async def test_one_host_is_scraped_one_page_at_a_time(
    state: AppState, seed: Seed, site: Site
) -> None:
    site.delay = 0.05
    site.html("/*", ARTICLE)
    for page in range(4):
        await seed.website(site.url(f"/p{page}"))
    outcomes = await make_scraper(state).run_once()
    assert len(outcomes) == 4
    assert site.max_active == 1


# -- running in the app ---------------------------------------------------------------------------


async def _wait_for_scrapes(seed: Seed, website_id: str, count: int, timeout: float) -> float:
    started = time.perf_counter()
    while len(await seed.scrapes(website_id)) < count:
        if time.perf_counter() - started > timeout:
            raise AssertionError(f"no scrape #{count} within {timeout}s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def test_background_scraper_picks_up_new_and_manual_scrapes(
    scraper_settings: Settings, site: Site
) -> None:
    site.html("/", ARTICLE)
    app = create_app(scraper_settings, background=[background.scraper])
    async with app.router.lifespan_context(app):
        state: AppState = app.state.neonrain
        seed = Seed(state)
        await seed.setup()
        website_id = await seed.website(site.url("/"))
        # The API's writes wake the scraper through the change notifier (or scraper.wake()) …
        state.notifier.notify()
        assert await _wait_for_scrapes(seed, website_id, 1, timeout=5) < 1.0
        await seed.queue(website_id)
        assert state.scraper is not None
        state.scraper.wake()
        assert await _wait_for_scrapes(seed, website_id, 2, timeout=5) < 1.0
        # … and without a wake-up a manual rescrape is still seen by the next poll (2 s).
        await seed.queue(website_id)
        assert await _wait_for_scrapes(seed, website_id, 3, timeout=5) < 3.0
        stopping = time.perf_counter()
    assert time.perf_counter() - stopping < 3


async def test_stop_cancels_in_flight_and_requeues(scraper_settings: Settings, site: Site) -> None:
    async def hang(_request: web.Request) -> web.StreamResponse:
        await site.release.wait()
        return web.Response(text=ARTICLE, content_type="text/html")

    site.route("/", hang)
    app = create_app(scraper_settings, background=[background.scraper])
    async with app.router.lifespan_context(app):
        state: AppState = app.state.neonrain
        seed = Seed(state)
        await seed.setup()
        website_id = await seed.website(site.url("/"))
        await site.first_request(timeout=5)
        assert site.requests
        assert (await seed.get(website_id)).scrape_status == "running"
        stopping = time.perf_counter()
    assert time.perf_counter() - stopping < 4
    site.release.set()
    check = build_state(scraper_settings)
    try:
        async with check.sessionmaker() as session:
            website = await session.get(ServerWebsite, website_id)
            assert website is not None
            assert website.scrape_status == "queued"
            assert website.scrape_started_at is None
    finally:
        await check.engine.dispose()


# -- SSRF with the setting off --------------------------------------------------------------------


@pytest.fixture
def private_off_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


async def test_private_addresses_refused_and_stored(
    private_off_settings: Settings,
    site: Site,
    listener: Listener,
    connections: Connections,
) -> None:
    """Each refused with a clear error on the website, and no connection to the target."""
    assert not private_off_settings.allow_private_urls
    port = listener.port

    async def to_loopback(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"http://127.0.0.1:{port}/admin")

    site.route("/go", to_loopback)
    table = {"intranet.example.com": ["10.1.2.3"], "public.example.com": ["127.0.0.1"]}
    resolver = FakeResolver(table)

    async def resolve(host: str, port_: int) -> list[str]:
        if host == "localhost":
            return await system_resolver(host, port_)
        return list(await resolver(host, port_))

    cases = {
        f"http://127.0.0.1:{port}/": "refused: the address 127.0.0.1 is loopback",
        f"http://localhost:{port}/": "refused: localhost resolves to ",
        "http://10.0.0.1/": "refused: the address 10.0.0.1 is private",
        "http://172.16.0.1/": "refused: the address 172.16.0.1 is private",
        "http://192.168.1.1/": "refused: the address 192.168.1.1 is private",
        "http://169.254.169.254/latest/meta-data/": (
            "refused: the address 169.254.169.254 is link-local"
        ),
        f"http://[::1]:{port}/": "refused: the address ::1 is loopback",
        f"http://[::ffff:127.0.0.1]:{port}/": "refused: the address ::ffff:127.0.0.1 is loopback",
        f"http://intranet.example.com:{port}/": (
            "refused: intranet.example.com resolves to 10.1.2.3, which is private"
        ),
        f"http://public.example.com:{site.port}/go": (
            "refused: the address 127.0.0.1 is loopback (where the site redirected to)"
        ),
    }
    state = build_state(private_off_settings)
    try:
        seed = Seed(state)
        await seed.setup()
        ids = {url: await seed.website(url) for url in cases}
        fetcher = Fetcher(
            allow_private=private_off_settings.allow_private_urls,
            policy=AllowHosts("public.example.com"),
            resolver=resolve,
        )
        outcomes = await make_scraper(state, fetcher=fetcher).run_once()
        assert len(outcomes) == len(cases)
        for url, message in cases.items():
            (scrape,) = await seed.scrapes(ids[url])
            assert scrape.error_message is not None, url
            assert scrape.error_message.startswith(message), (url, scrape.error_message)
            assert scrape.markdown_content == ""
            website = await seed.get(ids[url])
            assert website.scrape_failures == 1
            assert website.scrape_status == "idle"
    finally:
        await state.engine.dispose()
    # Only the allowed "public" first hop reached a server; nothing else was even attempted.
    assert listener.accepted == 0
    assert connections.to_port(port) == []
    assert connections.non_loopback() == []
    assert site.paths() == ["/go"]


async def test_default_fetcher_refuses_loopback(
    private_off_settings: Settings, listener: Listener, connections: Connections
) -> None:
    """The background scraper's fetcher follows the setting (off: loopback refused)."""
    app = create_app(private_off_settings, background=[background.scraper])
    async with app.router.lifespan_context(app):
        state: AppState = app.state.neonrain
        seed = Seed(state)
        await seed.setup()
        website_id = await seed.website(f"http://127.0.0.1:{listener.port}/")
        await _wait_for_scrapes(seed, website_id, 1, timeout=5)
        (scrape,) = await seed.scrapes(website_id)
        assert scrape.error_message == "refused: the address 127.0.0.1 is loopback"
    assert listener.accepted == 0
    assert connections.to_port(listener.port) == []


# -- several replicas (PostgreSQL) ----------------------------------------------------------------


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_two_scrapers_never_scrape_the_same_website(
    scraper_settings: Settings, site: Site, backend: str
) -> None:
    # Each page takes long enough that one scraper cannot finish all 30 (six rounds of five)
    # while the other claims its first batch.
    site.delay = 0.2
    site.html("/*", ARTICLE)
    hosts = [f"h{i}.test" for i in range(30)]
    resolver = FakeResolver({host: ["127.0.0.1"] for host in hosts})
    replica_a, replica_b = build_state(scraper_settings), build_state(scraper_settings)
    try:
        seed = Seed(replica_a)
        await seed.setup()
        ids = [await seed.website(site.url("/page", host=host)) for host in hosts]
        scrapers = [
            make_scraper(
                replica, fetcher=Fetcher(allow_private=True, resolver=resolver), concurrency=5
            )
            for replica in (replica_a, replica_b)
        ]
        # The second scraper starts once the first has claimed its batch and is fetching: started
        # together, the second's first claim may find every due row locked by the first's claim
        # (SKIP LOCKED) and end its run_once with nothing to do: correct, but it proves nothing.
        first = asyncio.create_task(scrapers[0].run_once())
        await site.first_request()
        results = await asyncio.gather(first, scrapers[1].run_once())
        assert len(results[0]) + len(results[1]) == 30
        assert results[0] and results[1]  # both did work
        assert {o.website_id for o in results[0]}.isdisjoint({o.website_id for o in results[1]})
        assert sorted(host for host, _path in site.requests) == sorted(
            f"{host}:{site.port}" for host in hosts
        )
        for website_id in ids:
            assert len(await seed.scrapes(website_id)) == 1

        # Claims made at the same moment never overlap either.
        for website_id in ids:
            await seed.queue(website_id)
        claims = await asyncio.gather(*(s.claim(30) for s in scrapers for _ in range(3)))
        claimed = [c.website_id for batch in claims for c in batch]
        assert sorted(claimed) == sorted(ids)
    finally:
        await replica_a.engine.dispose()
        await replica_b.engine.dispose()


# -- failure paths --------------------------------------------------------------------------------


async def test_extraction_failure_is_stored_as_an_error(
    state: AppState, seed: Seed, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neonrain.websites.scraper as scraper_module

    async def broken(_page: object) -> object:
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(scraper_module, "extract_page", broken)
    site.html("/", ARTICLE)
    website_id = await seed.website(site.url("/"))
    await make_scraper(state).run_once()
    (scrape,) = await seed.scrapes(website_id)
    assert scrape.error_message == "the page was fetched but its content could not be read"
    assert scrape.status_code == 200


async def test_loop_survives_database_errors(
    state: AppState, seed: Seed, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """A claim that fails (database down) is logged and retried at the next poll."""
    site.html("/", ARTICLE)
    website_id = await seed.website(site.url("/"))
    failures = 2

    class Flaky:
        def __call__(self) -> object:
            nonlocal failures
            if failures:
                failures -= 1
                raise OSError("database is unreachable")
            return state.sessionmaker()

    scraper = Scraper(
        Flaky(),  # type: ignore[arg-type]
        Fetcher(allow_private=True),
        options=ScraperOptions(poll_interval=0.05),
    )
    scraper.start()
    try:
        await _wait_for_scrapes(seed, website_id, 1, timeout=5)
    finally:
        await scraper.stop()
    assert "could not claim websites" in caplog.text


async def test_shutdown_stops_claiming_and_lets_a_claim_finish(
    state: AppState, seed: Seed, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """At shutdown the change notifier closes (it no longer waits): the loop stops instead of
    claiming in a tight loop, and ``stop`` lets a claim under way finish rather than cancelling
    its database session mid-statement."""
    site.html("/", ARTICLE)
    claims = 0
    in_claim = asyncio.Event()
    finish_claim = asyncio.Event()
    scraper = Scraper(
        state.sessionmaker,
        Fetcher(allow_private=True),
        options=ScraperOptions(poll_interval=5),
        notifier=state.notifier,
    )
    original_claim = scraper.claim

    async def slow_claim(limit: int, running_hosts: Iterable[str] = ()) -> list[Claim]:
        nonlocal claims
        claims += 1
        if claims == 2:
            in_claim.set()
            await finish_claim.wait()
        return await original_claim(limit, running_hosts)

    scraper.claim = slow_claim  # type: ignore[method-assign]
    scraper.start()
    while claims < 1:
        await asyncio.sleep(0.01)
    scraper.wake()  # the loop's second claim waits for finish_claim
    await asyncio.wait_for(in_claim.wait(), 5)
    stopping = asyncio.create_task(scraper.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()  # waits for the claim instead of cancelling it
    finish_claim.set()
    await asyncio.wait_for(stopping, 5)
    assert claims == 2

    closing = Scraper(
        state.sessionmaker,
        Fetcher(allow_private=True),
        options=ScraperOptions(poll_interval=5),
        notifier=state.notifier,
    )
    counted = 0
    closing_claim = closing.claim

    async def counting_claim(limit: int, running_hosts: Iterable[str] = ()) -> list[Claim]:
        nonlocal counted
        counted += 1
        return await closing_claim(limit, running_hosts)

    closing.claim = counting_claim  # type: ignore[method-assign]
    closing.start()
    await asyncio.sleep(0.1)
    state.notifier.close()
    await asyncio.sleep(0.3)
    assert counted <= 2  # one claim at start, at most one when the notifier closed
    await asyncio.wait_for(closing.stop(), 5)
    assert "Traceback" not in caplog.text
