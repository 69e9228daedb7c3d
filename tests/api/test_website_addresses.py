"""Adding a website whose address the fetching rules refuse: 400 ``INVALID_URL`` at once, not a
row the scraper would retry forever."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from neonrain.app import create_app
from neonrain.websites.fetch import AddressPolicy, url_refusal
from neonrain.websites.models import ServerWebsite
from tests.api.conftest import World, add_server, add_website, connect, state_of
from tests.conftest import ApiUser, api_client, assert_error, make_settings, register_user


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/", "the address 10.0.0.1 is private"),
        ("http://169.254.169.254/latest/meta-data/", "the address 169.254.169.254 is link-local"),
        ("http://[::1]:8080/", "the address ::1 is loopback"),
        ("http://[::ffff:127.0.0.1]/", "the address ::ffff:127.0.0.1 is loopback"),
        ("http://192.0.0.9/", "the address 192.0.0.9 is special-purpose"),
        ("http://localhost:8080/admin", "localhost resolves to "),  # /etc/hosts: loopback
        ("https://example.com:22/", "port 22 is not allowed"),
    ],
)
async def test_refused_addresses_are_not_added(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World, url: str, reason: str
) -> None:
    server = await add_server(client, connected, world.guild1)
    response = await client.post(
        f"/api/servers/{server['serverId']}/websites", json={"url": url}, headers=connected.headers
    )
    body = assert_error(response, 400, "INVALID_URL")
    assert body["error"].startswith(f"This address cannot be added: {reason}"), body
    assert body["error"].endswith("Neonrain only reads public websites.")
    async with state_of(app).sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(ServerWebsite)) == 0


async def test_a_name_that_does_not_resolve_is_added(
    client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    website = await add_website(client, connected, server["serverId"], "https://nowhere.invalid/")
    assert website["scrapeStatus"] == "queued"


async def test_private_addresses_can_be_added_when_allowed(
    database_url: str, tmp_path: Path, world: World
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        DISCORD_API_URL=world.fake.api_url,
        NEONRAIN_ALLOW_PRIVATE_URLS=True,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), api_client(app) as http:
        user = await register_user(http)
        await connect(http, user)
        server = await add_server(http, user, world.guild1)
        website = await add_website(http, user, server["serverId"], "http://10.0.0.1/intranet")
        assert website["url"] == "http://10.0.0.1/intranet"
        # The port rule stays whatever the setting.
        response = await http.post(
            f"/api/servers/{server['serverId']}/websites",
            json={"url": "http://10.0.0.1:22/"},
            headers=user.headers,
        )
        assert_error(response, 400, "INVALID_URL")


async def test_the_lookup_is_bounded_in_time() -> None:
    async def hanging(_host: str, _port: int) -> list[str]:
        await asyncio.sleep(60)
        return []

    started = time.monotonic()
    refusal = await url_refusal(
        "https://slow.example/", AddressPolicy(), resolver=hanging, dns_timeout=0.2
    )
    assert refusal is None  # not refused: the scrape will report the DNS problem
    assert time.monotonic() - started < 2


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    async def resolver(_host: str, _port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]

    refusal = await url_refusal("https://intranet.example/", AddressPolicy(), resolver=resolver)
    assert refusal == "refused: intranet.example resolves to 10.1.2.3, which is private"
    allowed = AddressPolicy(allow_private=True)
    assert await url_refusal("https://intranet.example/", allowed, resolver=resolver) is None
