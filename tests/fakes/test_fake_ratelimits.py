"""Rate limits of the fake Discord: headers, per-route buckets, 429s that discord.py honours."""

from __future__ import annotations

import time

import discord
import httpx
import pytest

from tests.fakes.discord_clients import OTHER_TOKEN, TOKEN, RunningClient, connect
from tests.fakes.fake_discord import FakeDiscord, FakeGuild, Limit, RateLimits
from tests.fakes.fake_discord.ratelimit import POST_MESSAGE, RateLimiter

AUTH = {"Authorization": f"Bot {TOKEN}"}


@pytest.fixture
def guild(fake: FakeDiscord) -> FakeGuild:
    bot = fake.add_bot(TOKEN, "Helper")
    fake.add_bot(OTHER_TOKEN, "Other")
    return fake.add_guild("Limits", bots=[bot, OTHER_TOKEN])


async def test_answers_carry_the_buckets_headers_per_channel(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    fake.set_rate_limit(POST_MESSAGE, 5, 5.0)
    general, random = guild.channel_named("general").id, guild.channel_named("random").id
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        first = await http.post(
            f"/channels/{general}/messages", headers=AUTH, json={"content": "a"}
        )
        second = await http.post(
            f"/channels/{general}/messages", headers=AUTH, json={"content": "b"}
        )
        elsewhere = await http.post(
            f"/channels/{random}/messages", headers=AUTH, json={"content": "c"}
        )
        other_bot = await http.post(
            f"/channels/{general}/messages",
            headers={"Authorization": f"Bot {OTHER_TOKEN}"},
            json={"content": "d"},
        )
        me = await http.get("/users/@me", headers=AUTH)
        unknown = await http.get("/no/such/route", headers=AUTH)

    assert first.headers["X-RateLimit-Limit"] == "5"
    assert [r.headers["X-RateLimit-Remaining"] for r in (first, second)] == ["4", "3"]
    assert elsewhere.headers["X-RateLimit-Remaining"] == "4"  # its own channel, its own bucket
    assert other_bot.headers["X-RateLimit-Remaining"] == "4"  # its own token, too
    assert first.headers["X-RateLimit-Bucket"] == elsewhere.headers["X-RateLimit-Bucket"]
    assert me.headers["X-RateLimit-Bucket"] != first.headers["X-RateLimit-Bucket"]
    reset_after = float(second.headers["X-RateLimit-Reset-After"])
    assert 4.0 < reset_after <= 5.0
    assert abs(float(second.headers["X-RateLimit-Reset"]) - (time.time() + reset_after)) < 1.0
    assert "X-RateLimit-Bucket" not in unknown.headers


async def test_over_the_limit_is_a_429_like_discords(fake: FakeDiscord, guild: FakeGuild) -> None:
    fake.set_rate_limit(POST_MESSAGE, 2, 30.0)
    general = guild.channel_named("general").id
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        answers = [
            await http.post(f"/channels/{general}/messages", headers=AUTH, json={"content": "x"})
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[2]
    body = limited.json()
    assert body["message"] == "You are being rate limited." and body["global"] is False
    assert 29.0 < body["retry_after"] <= 30.0
    assert limited.headers["Retry-After"] == "30"
    assert limited.headers["X-RateLimit-Scope"] == "user"
    assert limited.headers["Via"] == "1.1 google"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["content-type"] == "application/json"
    (hit,) = fake.rate_limit_hits
    assert (hit.bot_id, hit.method, hit.path) == (
        fake.bots[TOKEN].id,
        "POST",
        f"/channels/{general}/messages",
    )
    assert hit.retry_after == body["retry_after"] and not hit.injected
    assert len(fake.history(general)) == 2  # the refused message was not posted


async def test_discord_py_waits_out_retry_after_and_retries(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    """Another user of the same token (the web app, a second worker) used up the bucket."""
    fake.set_rate_limit(POST_MESSAGE, 1, 0.6)
    running = await connect(clients)
    general = guild.channel_named("general").id
    channel = running.client.get_channel(general)
    assert isinstance(channel, discord.TextChannel)
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        taken = await http.post(
            f"/channels/{general}/messages", headers=AUTH, json={"content": "1"}
        )
    assert taken.status_code == 200

    sent = await channel.send("2")

    assert [m.content for m in fake.messages_sent_to(general)] == ["1", "2"]
    assert sent.id == fake.messages_sent_to(general)[1].id
    (hit,) = fake.rate_limit_hits
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert [r.status for r in posts] == [200, 429, 200]
    assert posts[2].at - posts[1].at >= hit.retry_after - 0.05


async def test_discord_py_reads_the_headers_and_never_hits_the_limit(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    fake.set_rate_limit(POST_MESSAGE, 2, 0.5)
    running = await connect(clients)
    channel = running.client.get_channel(guild.channel_named("general").id)
    assert isinstance(channel, discord.TextChannel)
    for text in ("a", "b", "c"):
        await channel.send(text)
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert [r.status for r in posts] == [200, 200, 200]
    assert fake.rate_limit_hits == []
    assert posts[2].at - posts[0].at >= 0.4  # it slept until the bucket reset


async def test_the_default_limits_are_generous_and_can_be_switched_off(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    general = guild.channel_named("general").id
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        for i in range(30):
            answer = await http.post(
                f"/channels/{general}/messages", headers=AUTH, json={"content": str(i)}
            )
            assert answer.status_code == 200
        fake.rate_limits = RateLimits.off()
        plain = await http.get("/users/@me", headers=AUTH)
    assert "X-RateLimit-Limit" not in plain.headers
    assert fake.rate_limit_hits == []
    assert RateLimits.discord().for_route(POST_MESSAGE) == Limit(5, 5.0)


def test_a_bucket_resets_when_its_window_ends() -> None:
    now = [1000.0]
    limiter = RateLimiter(RateLimits(routes={"GET /x": Limit(1, 2.0)}), clock=lambda: now[0])
    assert limiter.check("t", "GET /x", {}) is not None
    refused = limiter.check("t", "GET /x", {})
    assert refused is not None and not refused.allowed and refused.retry_after == 2.0
    now[0] += 1.5
    still = limiter.check("t", "GET /x", {})
    assert still is not None and not still.allowed and still.retry_after == 0.5
    now[0] += 0.5
    again = limiter.check("t", "GET /x", {})
    assert again is not None and again.allowed
    assert again.headers["X-RateLimit-Remaining"] == "0"
    assert limiter.check("t", "GET /y", {}) is None  # no limit for that route
