"""A website whose URL the fetching rules refuse is marked with the error and not retried until it
is rescraped by hand or the rules may have changed (a scraper starts)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from neonrain import background
from neonrain.app import create_app
from neonrain.state import AppState
from neonrain.websites.fetch import Fetcher
from neonrain.websites.scraper import BACKOFF, PARKED
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


def refusing_fetcher(resolver: FakeResolver | None = None) -> Fetcher:
    return Fetcher(allow_private=False, resolver=resolver or FakeResolver())


async def test_a_refused_url_is_not_retried(
    state: AppState, seed: Seed, connections: Connections
) -> None:
    website_id = await seed.website("http://10.0.0.1/")
    clock = FakeClock()
    scraper = make_scraper(state, fetcher=refusing_fetcher(), clock=clock)
    (outcome,) = await scraper.run_once()
    assert not outcome.ok
    (scrape,) = await seed.scrapes(website_id)
    assert scrape.error_message == "refused: the address 10.0.0.1 is private"
    website = await seed.get(website_id)
    assert website.scrape_status == "idle"
    assert website.next_scrape_at == PARKED
    for _ in range(3):  # no retries, however long we wait
        clock.advance(timedelta(days=30))
        assert await scraper.run_once() == []
    assert len(await seed.scrapes(website_id)) == 1
    # A manual rescrape checks once more (and parks it again).
    await seed.queue(website_id)
    assert len(await scraper.run_once()) == 1
    assert (await seed.get(website_id)).next_scrape_at == PARKED
    assert connections.attempts == []


async def test_a_refused_redirect_target_keeps_the_backoff(
    state: AppState, seed: Seed, site: Site, listener: Listener
) -> None:
    """The site may redirect elsewhere tomorrow: that is an ordinary failure."""

    async def to_loopback(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"http://127.0.0.1:{listener.port}/admin")

    site.route("/go", to_loopback)
    resolver = FakeResolver({"public.example.com": ["127.0.0.1"]})
    fetcher = Fetcher(policy=AllowHosts("public.example.com"), resolver=resolver)
    website_id = await seed.website(f"http://public.example.com:{site.port}/go")
    clock = FakeClock()
    await make_scraper(state, fetcher=fetcher, clock=clock).run_once()
    (scrape,) = await seed.scrapes(website_id)
    assert scrape.error_message is not None
    assert scrape.error_message.endswith("(where the site redirected to)")
    assert (await seed.get(website_id)).next_scrape_at == clock.now + BACKOFF[0]
    assert listener.accepted == 0


async def test_a_starting_scraper_checks_parked_websites_again(
    database_url: str, tmp_path: Path, site: Site
) -> None:
    site.html("/", "<html><head><title>Intranet</title></head><body><p>Hello.</p></body></html>")
    # Refused while private addresses were not allowed…
    strict = create_app(make_settings(database_url, tmp_path))
    seed = Seed(strict.state.neonrain)
    await seed.setup()
    website_id = await seed.website(site.url("/"))
    await make_scraper(strict.state.neonrain, fetcher=refusing_fetcher()).run_once()
    assert (await seed.get(website_id)).next_scrape_at == PARKED
    await strict.state.neonrain.engine.dispose()
    # …and fetched once a scraper starts with them allowed.
    lenient = create_app(
        make_settings(database_url, tmp_path, NEONRAIN_ALLOW_PRIVATE_URLS=True),
        background=[background.scraper],
    )
    async with lenient.router.lifespan_context(lenient):
        seed = Seed(lenient.state.neonrain, seed.user_id, seed.config_id)
        async with asyncio.timeout(10):
            while len(await seed.scrapes(website_id)) < 2:
                await asyncio.sleep(0.05)
        newest = (await seed.scrapes(website_id))[0]
        assert newest.error_message is None
        assert (await seed.get(website_id)).next_scrape_at != PARKED
    assert site.paths() == ["/"]
