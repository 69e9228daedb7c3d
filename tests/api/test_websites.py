"""``/api/servers/:serverId/websites`` and the URL rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from neonrain.db.base import utcnow
from neonrain.websites.models import ServerWebsite
from neonrain.websites.urls import InvalidUrl, is_http_url, normalize_url
from tests.api.conftest import World, add_scrape, add_server, add_website, generation_of, state_of
from tests.conftest import ApiUser, assert_error

WEBSITE_FIELDS = {
    "id", "url", "name", "lastScrapedAt", "lastScrapeStatus", "lastScrapeError",
    "scrapeStatus", "contentSize", "truncated", "createdAt",
}  # fmt: skip


# ------------------------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("https://example.com", "https://example.com/"),
        ("  HTTPS://Example.COM/Path?q=A#frag ", "https://example.com/Path?q=A"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://example.com:8443/", "https://example.com:8443/"),
        ("http://example.com:443/", "http://example.com:443/"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://example.com./x", "https://example.com/x"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
        ("https://10.0.0.1/", "https://10.0.0.1/"),
    ],
)
def test_normalize_url(raw: str, normalized: str) -> None:
    assert normalize_url(raw) == normalized
    assert normalize_url(normalized) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "example.com",
        "ftp://example.com/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://",
        "https:///path",
        "https://user:pass@example.com/",
        "https://exa mple.com/",
        "https://example.com:99999/",
        "https://example.com:abc/",
        "https://example.com:0/",
        "https://exa\x00mple.com/",
        "https://example..com/",
        "https://[::1/",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_invalid_urls(raw: str) -> None:
    with pytest.raises(InvalidUrl):
        normalize_url(raw)
    assert not is_http_url(raw)


def test_url_length_limit_is_2048() -> None:
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    assert normalize_url(url) == url
    with pytest.raises(InvalidUrl):
        normalize_url(url + "a")


# ------------------------------------------------------------------------------------ API


async def test_add_website_queues_a_scrape(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    before = await generation_of(app)
    website = await add_website(
        client, connected, server["serverId"], "HTTPS://Example.com/Docs#top", "  Docs  "
    )
    assert set(website) == WEBSITE_FIELDS
    assert website["url"] == "https://example.com/Docs"
    assert website["name"] == "Docs"
    assert website["lastScrapeStatus"] == "pending"
    assert website["lastScrapedAt"] is None and website["lastScrapeError"] is None
    assert website["scrapeStatus"] == "queued"
    assert (website["contentSize"], website["truncated"]) == (0, False)
    assert await generation_of(app) > before
    async with state_of(app).sessionmaker() as session:
        row = await session.get(ServerWebsite, website["id"])
        assert row is not None and row.scrape_status == "queued"
        assert row.next_scrape_at is not None
    unnamed = await add_website(client, connected, server["serverId"], "https://example.org")
    assert unnamed["name"] is None
    listing = await client.get(
        f"/api/servers/{server['serverId']}/websites", headers=connected.headers
    )
    assert [w["id"] for w in listing.json()["websites"]] == [website["id"], unnamed["id"]]
    one = await client.get(
        f"/api/servers/{server['serverId']}/websites/{website['id']}", headers=connected.headers
    )
    assert one.json() == website


async def test_website_shows_its_scrapes(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    website = await add_website(client, connected, server["serverId"], "https://example.com/")
    path = f"/api/servers/{server['serverId']}/websites/{website['id']}"
    earlier = utcnow() - timedelta(hours=2)
    await add_scrape(app, website["id"], "# Good content", at=earlier, truncated=True)
    body = (await client.get(path, headers=connected.headers)).json()
    assert body["lastScrapeStatus"] == "success"
    assert body["contentSize"] == len("# Good content")
    assert body["truncated"] is True
    await add_scrape(app, website["id"], "", error="HTTP 503 from the site")
    body = (await client.get(path, headers=connected.headers)).json()
    assert body["lastScrapeStatus"] == "error"
    assert body["lastScrapeError"] == "HTTP 503 from the site"
    assert (
        body["lastScrapedAt"]
        > (await client.get(path, headers=connected.headers)).json()["createdAt"]
        or body["lastScrapedAt"]
    )
    # The content the agent uses is still the last good one.
    assert body["contentSize"] == len("# Good content")


async def test_duplicate_website_is_409(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    first = await add_website(client, connected, server["serverId"], "https://example.com/a")
    response = await client.post(
        f"/api/servers/{server['serverId']}/websites",
        json={"url": "HTTPS://EXAMPLE.com:443/a#again"},
        headers=connected.headers,
    )
    body = assert_error(response, 409, "WEBSITE_ALREADY_ADDED")
    assert body["websiteId"] == first["id"]
    # The same URL on another server is fine.
    other = await add_server(client, connected, world.guild2)
    await add_website(client, connected, other["serverId"], "https://example.com/a")


async def test_twenty_websites_per_server(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    for index in range(20):
        await add_website(client, connected, server["serverId"], f"https://example.com/{index}")
    response = await client.post(
        f"/api/servers/{server['serverId']}/websites",
        json={"url": "https://example.com/21"},
        headers=connected.headers,
    )
    assert_error(response, 409, "WEBSITE_LIMIT")
    detail = (
        await client.get(f"/api/servers/{server['serverId']}", headers=connected.headers)
    ).json()
    assert detail["websiteCount"] == 20


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"url": "ftp://example.com/"}, "INVALID_URL"),
        ({"url": "not a url"}, "INVALID_URL"),
        ({"url": ""}, "INVALID_URL"),
        ({"url": "https://example.com/" + "a" * 2100}, "INVALID_URL"),
        ({"url": "javascript:alert(1)"}, "INVALID_URL"),
        ({}, "VALIDATION_ERROR"),
        ({"url": 5}, "VALIDATION_ERROR"),
        ({"url": None}, "VALIDATION_ERROR"),
        ({"url": "https://example.com/", "name": "n" * 101}, "VALIDATION_ERROR"),
        ({"url": "https://example.com/", "name": 3}, "VALIDATION_ERROR"),
        ({"url": "https://example.com/", "extra": 1}, "VALIDATION_ERROR"),
        ({"url": "https://exa\x00mple.com/"}, "VALIDATION_ERROR"),
    ],
)
async def test_add_website_bad_input(
    client: httpx.AsyncClient, connected: ApiUser, world: World, payload: Any, code: str
) -> None:
    server = await add_server(client, connected, world.guild1)
    response = await client.post(
        f"/api/servers/{server['serverId']}/websites", json=payload, headers=connected.headers
    )
    assert_error(response, 400, code)


async def test_manual_scrape_is_queued_once_a_minute(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    website = await add_website(client, connected, server["serverId"], "https://example.com/")
    async with state_of(app).sessionmaker() as session:
        await session.execute(
            update(ServerWebsite)
            .where(ServerWebsite.id == website["id"])
            .values(scrape_status="idle", next_scrape_at=utcnow() + timedelta(hours=6))
        )
        await session.commit()
    path = f"/api/servers/{server['serverId']}/websites/{website['id']}/scrape"
    response = await client.post(path, headers=connected.headers)
    assert response.status_code == 202, response.text
    assert response.json()["scrapeStatus"] == "queued"
    async with state_of(app).sessionmaker() as session:
        row = await session.get(ServerWebsite, website["id"])
        assert row is not None and row.last_manual_scrape_at is not None
        assert row.next_scrape_at is not None and row.next_scrape_at <= utcnow()
    again = await client.post(path, headers=connected.headers)
    assert_error(again, 429, "SCRAPE_TOO_SOON")
    assert 1 <= int(again.headers["Retry-After"]) <= 60
    async with state_of(app).sessionmaker() as session:
        await session.execute(
            update(ServerWebsite)
            .where(ServerWebsite.id == website["id"])
            .values(last_manual_scrape_at=utcnow() - timedelta(seconds=61))
        )
        await session.commit()
    third = await client.post(path, headers=connected.headers)
    assert third.status_code == 202


async def test_delete_website(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    website = await add_website(client, connected, server["serverId"], "https://example.com/")
    await add_scrape(app, website["id"], "# hi")
    before = await generation_of(app)
    path = f"/api/servers/{server['serverId']}/websites/{website['id']}"
    response = await client.delete(path, headers=connected.headers)
    assert response.status_code == 204
    assert await generation_of(app) > before
    assert_error(await client.get(path, headers=connected.headers), 404, "WEBSITE_NOT_FOUND")
    assert_error(await client.delete(path, headers=connected.headers), 404, "WEBSITE_NOT_FOUND")
    async with state_of(app).sessionmaker() as session:
        assert (await session.scalars(select(ServerWebsite))).all() == []


@pytest.mark.parametrize("website_id", ["nope", "%00", "x" * 200])
async def test_unknown_website_is_404(
    client: httpx.AsyncClient, connected: ApiUser, world: World, website_id: str
) -> None:
    server = await add_server(client, connected, world.guild1)
    base = f"/api/servers/{server['serverId']}/websites/{website_id}"
    for method, path in [("GET", base), ("DELETE", base), ("POST", base + "/scrape")]:
        response = await client.request(method, path, headers=connected.headers)
        assert_error(response, 404, "WEBSITE_NOT_FOUND")
