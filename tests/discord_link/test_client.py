"""The Discord REST client against the fake Discord (and a few malformed answers)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from neonrain.discord_link.client import (
    BOT_PERMISSIONS,
    DiscordNotFound,
    DiscordRestClient,
    DiscordUnauthorized,
    DiscordUnavailable,
    avatar_url,
    guild_icon_url,
    invite_url,
)
from tests.fakes.fake_discord import FakeDiscord

TOKEN = "MTEx.fake-bot.token_value"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        server.add_bot(TOKEN, "Helper", bot_id=111222333444555666, avatar="a_animated")
        yield server


@pytest_asyncio.fixture
async def discord(fake: FakeDiscord) -> AsyncIterator[DiscordRestClient]:
    async with DiscordRestClient(fake.api_url, timeout=0.5, connect_timeout=0.5) as client:
        yield client


# --------------------------------------------------------------------------- identity


async def test_get_current_user_returns_the_bot_identity(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    me = await discord.get_current_user(TOKEN)

    assert me.id == "111222333444555666"
    assert me.username == "Helper"
    assert me.avatar == "a_animated"
    assert me.bot is True
    assert me.avatar_url().startswith(
        "https://cdn.discordapp.com/avatars/111222333444555666/a_animated.gif"
    )
    request = fake.requests[-1]
    assert (request.method, request.path, request.bot_id) == (
        "GET",
        "/users/@me",
        111222333444555666,
    )


async def test_a_user_account_is_reported_as_not_a_bot(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    fake.add_bot("user-token", "a-person", is_bot=False)
    assert (await discord.get_current_user("user-token")).bot is False


async def test_unknown_token_is_unauthorized(fake: FakeDiscord, discord: DiscordRestClient) -> None:
    with pytest.raises(DiscordUnauthorized) as raised:
        await discord.get_current_user("wrong-token")
    assert raised.value.status == 401
    assert raised.value.code == 0
    assert fake.requests[-1].status == 401


async def test_revoked_token_is_unauthorized(fake: FakeDiscord, discord: DiscordRestClient) -> None:
    fake.revoke_token(TOKEN)
    with pytest.raises(DiscordUnauthorized):
        await discord.list_guilds(TOKEN)


@pytest.mark.parametrize("token", ["", "   ", "two words", "line\nbreak", "é-accent", "x" * 600])
async def test_strings_that_cannot_be_tokens_are_refused_without_a_request(
    fake: FakeDiscord, discord: DiscordRestClient, token: str
) -> None:
    with pytest.raises(DiscordUnauthorized):
        await discord.get_current_user(token)
    assert fake.requests == []


# --------------------------------------------------------------------------- guilds


async def test_list_guilds_follows_every_page(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    created = [fake.add_guild(f"guild {i}", icon=f"i{i}", bots=[TOKEN]) for i in range(450)]
    fake.add_guild("not the bot's")

    guilds = await discord.list_guilds(TOKEN)

    assert [g.id for g in guilds] == [str(g.id) for g in created]
    assert guilds[449].name == "guild 449"
    assert guilds[0].icon == "i0"
    assert (
        guilds[0].icon_url() == f"https://cdn.discordapp.com/icons/{created[0].id}/i0.png?size=128"
    )
    assert guilds[0].permissions is not None and guilds[0].permissions & BOT_PERMISSIONS
    pages = [r for r in fake.requests if r.path == "/users/@me/guilds"]
    assert [r.query for r in pages] == [
        {"limit": "200"},
        {"limit": "200", "after": str(created[199].id)},
        {"limit": "200", "after": str(created[399].id)},
    ]


async def test_list_guilds_with_exactly_one_full_page_and_with_none(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    assert await discord.list_guilds(TOKEN) == []
    for i in range(200):
        fake.add_guild(f"g{i}", bots=[TOKEN])
    assert len(await discord.list_guilds(TOKEN)) == 200
    assert len([r for r in fake.requests if r.path == "/users/@me/guilds"]) == 3


async def test_a_failing_later_page_fails_the_whole_listing(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    for i in range(201):
        fake.add_guild(f"g{i}", bots=[TOKEN])
    fake.add_failure("/users/@me/guilds", status=500, skip=1)
    with pytest.raises(DiscordUnavailable) as raised:
        await discord.list_guilds(TOKEN)
    assert raised.value.status == 500
    assert len(fake.requests) == 2


async def test_get_guild(fake: FakeDiscord, discord: DiscordRestClient) -> None:
    guild = fake.add_guild("The Guild", icon="abc", bots=[TOKEN])

    found = await discord.get_guild(TOKEN, guild.id)

    assert (found.id, found.name, found.icon) == (str(guild.id), "The Guild", "abc")
    assert found.owner_id == str(guild.owner_id)
    assert found.icon_url(size=64) == f"https://cdn.discordapp.com/icons/{guild.id}/abc.png?size=64"


async def test_guild_the_bot_is_not_in_is_not_found(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    elsewhere = fake.add_guild("Elsewhere")
    with pytest.raises(DiscordNotFound) as raised:
        await discord.get_guild(TOKEN, str(elsewhere.id))
    assert (raised.value.status, raised.value.code) == (403, 50001)


async def test_unknown_guild_is_not_found(fake: FakeDiscord, discord: DiscordRestClient) -> None:
    with pytest.raises(DiscordNotFound) as raised:
        await discord.get_guild(TOKEN, "123456789012345678")
    assert (raised.value.status, raised.value.code) == (404, 10004)


@pytest.mark.parametrize("guild_id", ["", "abc", "../users/@me", "1" * 21, "12 34"])
async def test_malformed_guild_ids_are_not_found_without_a_request(
    fake: FakeDiscord, discord: DiscordRestClient, guild_id: str
) -> None:
    with pytest.raises(DiscordNotFound):
        await discord.get_guild(TOKEN, guild_id)
    assert fake.requests == []


async def test_kicking_the_bot_makes_its_guild_not_found(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    guild = fake.add_guild("Soon Gone", bots=[TOKEN])
    assert (await discord.get_guild(TOKEN, guild.id)).name == "Soon Gone"
    await fake.remove_bot_from_guild(guild.id, TOKEN)
    with pytest.raises(DiscordNotFound):
        await discord.get_guild(TOKEN, guild.id)
    assert await discord.list_guilds(TOKEN) == []


# --------------------------------------------------------------------------- Discord failing


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_unavailable(
    fake: FakeDiscord, discord: DiscordRestClient, status: int
) -> None:
    fake.add_failure("*", status=status)
    with pytest.raises(DiscordUnavailable) as raised:
        await discord.get_current_user(TOKEN)
    assert raised.value.status == status


async def test_a_hanging_discord_times_out_as_unavailable(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    fake.hang("/users/@me")
    started = time.monotonic()
    with pytest.raises(DiscordUnavailable, match="in time"):
        await discord.get_current_user(TOKEN)
    assert time.monotonic() - started < 3


async def test_unreachable_discord_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with DiscordRestClient(f"http://127.0.0.1:{port}/api/v10", timeout=1) as client:
        with pytest.raises(DiscordUnavailable, match="reach"):
            await client.get_current_user(TOKEN)


async def test_short_rate_limit_is_waited_out(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    fake.rate_limit("/users/@me", retry_after=0.05)
    assert (await discord.get_current_user(TOKEN)).username == "Helper"
    assert [r.status for r in fake.requests] == [429, 200]


async def test_long_rate_limit_is_unavailable(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    fake.rate_limit("/users/@me", retry_after=60, times=5)
    with pytest.raises(DiscordUnavailable) as raised:
        await discord.get_current_user(TOKEN)
    assert raised.value.status == 429
    assert len(fake.requests) == 1


async def test_injected_401_for_one_token_only(
    fake: FakeDiscord, discord: DiscordRestClient
) -> None:
    fake.add_bot("second-token", "Second")
    fake.add_failure("*", token=TOKEN, status=401, body={"message": "401: Unauthorized", "code": 0})
    with pytest.raises(DiscordUnauthorized):
        await discord.get_current_user(TOKEN)
    assert (await discord.get_current_user("second-token")).username == "Second"


def _mock(handler: httpx.MockTransport) -> DiscordRestClient:
    return DiscordRestClient("https://discord.test/api/v10", transport=handler)


@pytest.mark.parametrize(
    ("status", "content", "headers"),
    [
        (200, b"<html>oops</html>", {"Content-Type": "text/html"}),
        (200, b'["not", "an", "object"]', {"Content-Type": "application/json"}),
        (200, b'{"id": "not-a-snowflake", "username": "x"}', {"Content-Type": "application/json"}),
        (200, b'{"id": "1", "username": 5}', {"Content-Type": "application/json"}),
        (200, b'{"username": "no id"}', {"Content-Type": "application/json"}),
        (418, b"teapot", {}),
    ],
)
async def test_malformed_answers_are_unavailable(
    status: int, content: bytes, headers: dict[str, str]
) -> None:
    transport = httpx.MockTransport(
        lambda _: httpx.Response(status, content=content, headers=headers)
    )
    async with _mock(transport) as client:
        with pytest.raises(DiscordUnavailable):
            await client.get_current_user(TOKEN)


async def test_malformed_guild_pages_are_unavailable() -> None:
    pages = iter(
        [
            httpx.Response(
                200, json=[{"id": str(i), "name": f"g{i}", "icon": None} for i in range(200)]
            ),
            # The same page again: a server that does not advance must not loop us forever.
            httpx.Response(
                200, json=[{"id": str(i), "name": f"g{i}", "icon": None} for i in range(200)]
            ),
        ]
    )
    async with _mock(httpx.MockTransport(lambda _: next(pages))) as client:
        with pytest.raises(DiscordUnavailable, match="advance"):
            await client.list_guilds(TOKEN)

    async with _mock(httpx.MockTransport(lambda _: httpx.Response(200, json={"a": 1}))) as client:
        with pytest.raises(DiscordUnavailable):
            await client.list_guilds(TOKEN)


async def test_requests_carry_the_bot_authorization_and_a_user_agent() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "1", "username": "b", "avatar": None, "bot": True})

    async with _mock(httpx.MockTransport(answer)) as client:
        await client.get_current_user(f"  {TOKEN}\n")
        await client.get_current_user(f"Bot {TOKEN}")
    assert [r.headers["Authorization"] for r in seen] == [f"Bot {TOKEN}"] * 2
    assert seen[0].headers["User-Agent"].startswith("DiscordBot (")
    assert str(seen[0].url) == "https://discord.test/api/v10/users/@me"


async def test_a_shared_http_client_is_not_closed(fake: FakeDiscord) -> None:
    async with httpx.AsyncClient() as shared:
        async with DiscordRestClient(fake.api_url, http_client=shared) as client:
            assert (await client.get_current_user(TOKEN)).bot is True
        assert not shared.is_closed


async def test_tokens_never_reach_logs_or_errors(
    fake: FakeDiscord, discord: DiscordRestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.add_guild("g", bots=[TOKEN])
    await discord.get_current_user(TOKEN)
    await discord.list_guilds(TOKEN)
    errors: list[Exception] = []
    failures: list[tuple[int | None, float]] = [(500, 0.0), (401, 0.0), (None, 5.0)]
    for status, delay in failures:
        fake.clear_failures()
        fake.add_failure("*", status=status, delay=delay)
        try:
            await discord.get_current_user(TOKEN)
        except (DiscordUnavailable, DiscordUnauthorized) as exc:
            errors.append(exc)
    assert len(errors) == 3
    assert caplog.records, "the client should log its requests"
    assert TOKEN not in caplog.text
    assert all(TOKEN not in repr(e) and TOKEN not in str(e) for e in errors)


# --------------------------------------------------------------------------- URLs


def test_invite_url_asks_for_exactly_the_needed_permissions() -> None:
    view_channel, send_messages, read_history, change_nickname = 1 << 10, 1 << 11, 1 << 16, 1 << 26
    assert view_channel | send_messages | read_history | change_nickname == BOT_PERMISSIONS
    assert BOT_PERMISSIONS == 67_177_472

    url = invite_url("111222333444555666")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://discord.com/oauth2/authorize"
    assert parse_qs(parts.query) == {
        "client_id": ["111222333444555666"],
        "scope": ["bot"],
        "permissions": ["67177472"],
    }
    with_guild = parse_qs(urlsplit(invite_url(1, guild_id=42)).query)
    assert with_guild["guild_id"] == ["42"] and with_guild["disable_guild_select"] == ["true"]


def test_cdn_urls() -> None:
    assert avatar_url(80351110224678912, "8342729096ea3675442027381ff50dfe") == (
        "https://cdn.discordapp.com/avatars/80351110224678912/"
        "8342729096ea3675442027381ff50dfe.png?size=128"
    )
    # No avatar: Discord's default avatar, (id >> 22) % 6 on the new username system.
    assert avatar_url(80351110224678912, None) == (
        f"https://cdn.discordapp.com/embed/avatars/{(80351110224678912 >> 22) % 6}.png"
    )
    assert avatar_url(1, None, discriminator="1337") == (
        "https://cdn.discordapp.com/embed/avatars/2.png"
    )
    assert guild_icon_url(5, None) is None
    assert (
        guild_icon_url(5, "a_x", cdn_url="http://cdn.test/")
        == "http://cdn.test/icons/5/a_x.gif?size=128"
    )
