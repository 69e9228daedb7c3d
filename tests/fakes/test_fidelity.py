"""Fidelity of the fake Discord: its REST answers against Discord's OpenAPI document, its gateway
payloads against what discord.py's own parsers read.

The REST part calls every endpoint the product uses (``discord_link/client.py``; through
discord.py, the worker's login, history, sending, typing and nickname; the permission-aware
channel list's channels, roles and bot member) and the error answers (400, 401, 403, 404, 429),
and validates each body against the response schema Discord's OpenAPI document declares for that
operation and status. The document is read from
``/work/shared/reference/discord-api-spec/openapi.json`` (``DISCORD_OPENAPI`` overrides it);
without it those tests are skipped, with the reason, except under ``CI=true`` where they fail.

The gateway part connects a real discord.py client, checks what its cache made of READY,
GUILD_CREATE, MESSAGE_CREATE, THREAD_CREATE and GUILD_MEMBER_UPDATE, and feeds the very payloads
the fake sent to discord.py's own constructors (``Guild``, ``Message``, ``Thread``, ``Member``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import httpx
import pytest
import pytest_asyncio

from tests.fakes.discord_clients import WORKER_INTENTS, RunningClient, connect
from tests.fakes.fake_discord import (
    ChannelType,
    FakeDiscord,
    FakeGuild,
    FakeThread,
    Permission,
)
from tests.fakes.openapi_schema import OpenApiDocument

OPENAPI = Path(
    os.environ.get("DISCORD_OPENAPI", "/work/shared/reference/discord-api-spec/openapi.json")
)
TOKEN = "fidelity-bot-token"

#: The permissions about reading and writing messages (what a channel list shows for the bot).
MESSAGE_PERMISSIONS = int(
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.SEND_MESSAGES_IN_THREADS
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.MENTION_EVERYONE
    | Permission.ADD_REACTIONS
    | Permission.MANAGE_MESSAGES
    | Permission.MANAGE_THREADS
    | Permission.CREATE_PUBLIC_THREADS
)

#: The REST routes ``src/neonrain`` calls, directly or through discord.py.
PRODUCT_ROUTES = {
    ("GET", "/users/@me"),
    ("GET", "/users/@me/guilds"),
    ("GET", "/guilds/{guild_id}"),
    ("GET", "/guilds/{guild_id}/channels"),
    ("GET", "/guilds/{guild_id}/roles"),
    ("GET", "/guilds/{guild_id}/members/{user_id}"),
    ("PATCH", "/guilds/{guild_id}/members/@me"),
    ("GET", "/channels/{channel_id}"),
    ("GET", "/channels/{channel_id}/messages"),
    ("POST", "/channels/{channel_id}/messages"),
    ("POST", "/channels/{channel_id}/typing"),
    ("GET", "/gateway/bot"),
    ("GET", "/oauth2/applications/@me"),
}


@pytest.fixture(scope="module")
def openapi() -> OpenApiDocument:
    if not OPENAPI.is_file():
        reason = f"Discord's OpenAPI document is not at {OPENAPI}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    document = OpenApiDocument.load(OPENAPI)
    correct_the_document(document)
    return document


def correct_the_document(document: OpenApiDocument) -> None:
    """Where the preview document disagrees with what Discord sends, follow Discord.

    Field errors of a 400 Invalid Form Body carry string codes (``"BASE_TYPE_REQUIRED"``, see
    the example under "Error Messages" in Discord's API reference; discord.py reads only their
    ``message``), while the document gives them the top-level error's integer ``code``.
    """
    schemas = document.document["components"]["schemas"]
    schemas["InnerErrors"]["properties"]["_errors"]["items"] = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    }


@dataclass
class World:
    """A guild with every channel type, roles, overwrites, people, threads and messages."""

    fake: FakeDiscord
    guild: FakeGuild
    general: int
    hidden: int
    read_only: int
    voice: int
    stage: int
    category: int
    news: int
    forum: int
    thread: FakeThread
    private_thread: FakeThread
    post: FakeThread
    news_thread: FakeThread
    person: int
    user_message: int
    dm_channel: int


async def build_world(fake: FakeDiscord) -> World:
    bot = fake.add_bot(TOKEN, "Fidelity Bot", avatar="a_animated", members_intent=True)
    guild = fake.add_guild("Fidelity", icon="icon", bots=[bot])
    gid = guild.id
    general = guild.channel_named("general").id
    mods = fake.add_role(gid, "Mods", Permission.MANAGE_MESSAGES | Permission.KICK_MEMBERS)
    person = fake.add_member(gid, "ana", nick="Ana (mod)", global_name="Ana", roles=[mods])
    hidden = fake.add_channel(gid, "staff", topic="secret")
    fake.set_overwrite(hidden.id, guild.id, deny=Permission.VIEW_CHANNEL)
    fake.set_overwrite(hidden.id, mods, allow=Permission.VIEW_CHANNEL)
    read_only = fake.add_channel(gid, "rules")
    fake.set_overwrite(read_only.id, bot, deny=Permission.SEND_MESSAGES)
    stage = fake.add_channel(gid, "Town Hall", ChannelType.GUILD_STAGE_VOICE)
    news = fake.add_channel(gid, "news", ChannelType.GUILD_ANNOUNCEMENT)
    forum = fake.add_channel(gid, "help", ChannelType.GUILD_FORUM, topic="Ask here")
    first = await fake.post_user_message(gid, general, "ana", f"hello <@{bot.id}>")
    await fake.post_user_message(gid, general, "bo", "a reply", reply_to=first.id)
    await fake.post_user_message(gid, general, "cy", "", attachments=["cat.png"])
    await fake.post_user_message(gid, general, "hook", "from a webhook", webhook=True)
    thread = await fake.create_thread(gid, general, "side", author="ana", from_message=first.id)
    await fake.post_user_message(gid, thread.id, "bo", "in the thread")
    private = await fake.create_thread(
        gid, general, "private talk", author="ana", private=True, members=[bot]
    )
    post = await fake.create_thread(gid, forum.id, "How do I?", author="cy", content="Question")
    news_thread = await fake.create_thread(gid, news.id, "news talk", author="ana")
    dm = await fake.post_direct_message(TOKEN, "dee", "psst")
    return World(
        fake=fake,
        guild=guild,
        general=general,
        hidden=hidden.id,
        read_only=read_only.id,
        voice=guild.channel_named("General").id,
        stage=stage.id,
        category=guild.channel_named("Text Channels").id,
        news=news.id,
        forum=forum.id,
        thread=thread,
        private_thread=private,
        post=post,
        news_thread=news_thread,
        person=person.user.id,
        user_message=first.id,
        dm_channel=dm.channel_id,
    )


@pytest_asyncio.fixture
async def world(fake: FakeDiscord) -> World:
    return await build_world(fake)


@dataclass
class Checker:
    """Calls the fake and validates each answer against the document; collects problems."""

    openapi: OpenApiDocument
    http: httpx.AsyncClient
    problems: list[str] = field(default_factory=list)
    checked: list[tuple[str, str, int]] = field(default_factory=list)

    async def call(
        self,
        method: str,
        template: str,
        path: str,
        status: int,
        *,
        token: str | None = TOKEN,
        **kwargs: Any,
    ) -> Any:
        headers = {"Authorization": f"Bot {token}"} if token is not None else {}
        response = await self.http.request(method, path, headers=headers, **kwargs)
        where = f"{method} {path} ({template})"
        self.checked.append((method, template, response.status_code))
        if response.status_code != status:
            self.problems.append(f"{where}: status {response.status_code}, wanted {status}")
            return None
        if self.openapi.response(method, template, status) is None:
            self.problems.append(f"{where}: the document declares no {status} answer")
            return None
        schema = self.openapi.response_schema(method, template, status)
        if schema is None:
            if response.content:
                self.problems.append(f"{where}: a body where the document declares none")
            return None
        if response.headers.get("content-type") != "application/json":
            self.problems.append(f"{where}: content-type {response.headers.get('content-type')}")
        body = response.json()
        self.problems.extend(f"{where} {e}" for e in self.openapi.validate(body, schema))
        return body


@pytest_asyncio.fixture
async def checker(openapi: OpenApiDocument, world: World) -> AsyncIterator[Checker]:
    async with httpx.AsyncClient(base_url=world.fake.api_url, timeout=10) as http:
        yield Checker(openapi, http)


# --------------------------------------------------------------------------- the validator itself


def test_the_validator_catches_what_the_document_forbids(openapi: OpenApiDocument) -> None:
    user = {"$ref": "#/components/schemas/UserResponse"}
    good = {
        "id": "1",
        "username": "a",
        "avatar": None,
        "discriminator": "0",
        "public_flags": 0,
        "flags": 0,
        "global_name": None,
        "primary_guild": None,
    }
    assert openapi.validate(good, user) == []
    without_id = {k: v for k, v in good.items() if k != "id"}
    assert openapi.validate(without_id, user) == ["$: required key 'id' is missing"]
    assert openapi.validate({**good, "id": 1}, user)  # snowflakes are strings
    assert openapi.validate({**good, "id": "01"}, user)  # without leading zeros
    assert openapi.validate({**good, "flags": True}, user)  # a boolean is not an integer
    assert openapi.validate({**good, "avatar": 3}, user)
    channel = {"$ref": "#/components/schemas/GuildChannelResponse"}
    text = {"id": "2", "type": 0, "flags": 0, "guild_id": "1", "name": "x", "position": 0}
    assert openapi.validate(text, channel) == []
    assert openapi.validate({**text, "type": 11}, channel)  # a thread type is not a guild channel
    either = openapi.response_schema("GET", "/channels/{channel_id}", 200)
    assert either is not None and openapi.validate(text, either) == []
    assert openapi.validate({"id": "2"}, either)  # matches none of the channel shapes
    member = {"$ref": "#/components/schemas/GuildMemberResponse"}
    assert any("joined_at" in e for e in openapi.validate({"joined_at": "yesterday"}, member))
    error = openapi.response_schema("GET", "/users/@me", 404)
    assert error is not None and openapi.validate({"message": "x"}, error)  # no code
    with pytest.raises(KeyError):
        openapi.response_schema("GET", "/users/@me", 204)  # not declared for this operation


# --------------------------------------------------------------------------- REST answers


async def test_rest_answers_match_discords_openapi_document(world: World, checker: Checker) -> None:
    fake, c = world.fake, checker
    gid = world.guild.id
    bot_id = fake.bots[TOKEN].id
    member = "/guilds/{guild_id}/members/{user_id}"
    channel = "/channels/{channel_id}"
    messages = "/channels/{channel_id}/messages"
    message = "/channels/{channel_id}/messages/{message_id}"
    typing = "/channels/{channel_id}/typing"

    await c.call("GET", "/users/@me", "/users/@me", 200)
    await c.call("GET", "/oauth2/applications/@me", "/oauth2/applications/@me", 200)
    await c.call("GET", "/gateway", "/gateway", 200, token=None)
    await c.call("GET", "/gateway/bot", "/gateway/bot", 200)
    guilds = await c.call("GET", "/users/@me/guilds", "/users/@me/guilds", 200)
    await c.call("GET", "/users/@me/guilds", "/users/@me/guilds?with_counts=true", 200)
    await c.call("GET", "/guilds/{guild_id}", f"/guilds/{gid}", 200)
    await c.call("GET", "/guilds/{guild_id}", f"/guilds/{gid}?with_counts=true", 200)
    channels = await c.call("GET", "/guilds/{guild_id}/channels", f"/guilds/{gid}/channels", 200)
    roles = await c.call("GET", "/guilds/{guild_id}/roles", f"/guilds/{gid}/roles", 200)
    me = await c.call("GET", member, f"/guilds/{gid}/members/{bot_id}", 200)
    person = await c.call("GET", member, f"/guilds/{gid}/members/{world.person}", 200)
    nick = {"nick": "Fido"}
    await c.call(
        "PATCH", "/guilds/{guild_id}/members/@me", f"/guilds/{gid}/members/@me", 200, json=nick
    )
    active = "/guilds/{guild_id}/threads/active"
    threads = await c.call("GET", active, f"/guilds/{gid}/threads/active", 200)

    for cid in (
        world.general,
        world.voice,
        world.stage,
        world.category,
        world.news,
        world.forum,
        world.thread.id,
        world.private_thread.id,
        world.post.id,
        world.news_thread.id,
        world.dm_channel,
    ):
        await c.call("GET", channel, f"/channels/{cid}", 200)
    for cid in (world.general, world.thread.id, world.post.id, world.news, world.dm_channel):
        await c.call("GET", messages, f"/channels/{cid}/messages", 200)
    paged = f"/channels/{world.general}/messages?limit=2&before={2**60}"
    await c.call("GET", messages, paged, 200)
    await c.call("GET", message, f"/channels/{world.general}/messages/{world.user_message}", 200)
    general_messages = f"/channels/{world.general}/messages"
    mention = {"content": f"hi <@{world.person}>", "nonce": "12345", "embeds": []}
    sent = await c.call("POST", messages, general_messages, 200, json=mention)
    reply = {"content": "re", "message_reference": {"message_id": str(world.user_message)}}
    await c.call("POST", messages, general_messages, 200, json=reply)
    in_thread = f"/channels/{world.thread.id}/messages"
    await c.call("POST", messages, in_thread, 200, json={"content": "in"})
    in_dm = f"/channels/{world.dm_channel}/messages"
    await c.call("POST", messages, in_dm, 200, json={"content": "dm"})
    await c.call("POST", typing, f"/channels/{world.general}/typing", 204)

    # The error answers: 401, 403 Missing Access / Missing Permissions, 404s, 400s.
    await c.call("GET", "/users/@me", "/users/@me", 401, token="not-a-token")
    outsider = fake.add_guild("Outsider")
    await c.call("GET", "/guilds/{guild_id}", f"/guilds/{outsider.id}", 403)
    await c.call("GET", "/guilds/{guild_id}", "/guilds/42", 404)
    await c.call("GET", member, f"/guilds/{gid}/members/42", 404)
    await c.call("GET", channel, f"/channels/{world.hidden}", 403)
    await c.call("GET", channel, "/channels/42", 404)
    await c.call("GET", messages, f"/channels/{world.hidden}/messages", 403)
    rules = f"/channels/{world.read_only}/messages"
    await c.call("POST", messages, rules, 403, json={"content": "no"})
    await c.call("POST", messages, general_messages, 400, json={})
    await c.call("GET", messages, f"{general_messages}?limit=500", 400)
    await c.call("GET", message, f"{general_messages}/42", 404)

    # A real 429 from a bucket, and an injected one.
    fake.set_rate_limit("POST /channels/{channel_id}/typing", 1, 60)
    await c.call("POST", typing, f"/channels/{world.general}/typing", 204)
    await c.call("POST", typing, f"/channels/{world.general}/typing", 429)
    fake.rate_limit("/users/@me", retry_after=0.25)
    await c.call("GET", "/users/@me", "/users/@me", 429)

    assert c.problems == [], "\n".join(c.problems)
    # Every route the product calls was checked, with every kind of answer.
    assert {(m, t) for m, t, _ in c.checked} >= PRODUCT_ROUTES
    assert {200, 204, 400, 401, 403, 404, 429} <= {s for _, _, s in c.checked}
    # And the answers carried the world (the calls did not just "pass").
    assert [g["id"] for g in guilds] == [str(gid)]
    assert {ch["type"] for ch in channels} == {0, 2, 4, 5, 13, 15}
    assert str(gid) in {r["id"] for r in roles}
    assert me["user"]["id"] == str(bot_id) and person["nick"] == "Ana (mod)"
    assert {t["id"] for t in threads["threads"]} >= {str(world.thread.id), str(world.post.id)}
    assert sent["mentions"][0]["global_name"] == "Ana"
    assert [h.injected for h in fake.rate_limit_hits] == [False, True]


# --------------------------------------------------------------------------- gateway payloads


def dispatched(fake: FakeDiscord, event: str) -> list[dict[str, Any]]:
    """The ``d`` of every ``event`` the fake dispatched to the bot's session."""
    (session,) = fake.sessions_of(TOKEN)
    return [p["d"] for p in session.buffer if p["t"] == event]


async def test_gateway_payloads_are_what_discord_py_reads(
    world: World, clients: list[RunningClient]
) -> None:
    fake = world.fake
    intents = discord.Intents(WORKER_INTENTS.value, members=True)
    running = await connect(clients, TOKEN, intents)
    client = running.client
    guild = client.get_guild(world.guild.id)
    assert guild is not None and guild.me is not None

    # READY and GUILD_CREATE: every channel type, overwrites, roles, threads, members.
    kinds = {
        world.general: discord.TextChannel,
        world.news: discord.TextChannel,
        world.voice: discord.VoiceChannel,
        world.stage: discord.StageChannel,
        world.category: discord.CategoryChannel,
        world.forum: discord.ForumChannel,
    }
    for channel_id, kind in kinds.items():
        assert isinstance(guild.get_channel(channel_id), kind)
    news = guild.get_channel(world.news)
    assert isinstance(news, discord.TextChannel) and news.is_news()
    voice = guild.get_channel(world.voice)
    assert isinstance(voice, discord.VoiceChannel) and voice.bitrate == 64000
    # discord.py's own permission computation agrees with the fake's, channel by channel, on the
    # bits about messages (discord.py also strips voice bits from text channels, for example).
    for channel in [*guild.channels, *guild.threads]:
        expected = fake.permissions_in(channel.id, TOKEN) & MESSAGE_PERMISSIONS
        assert channel.permissions_for(guild.me).value & MESSAGE_PERMISSIONS == expected, channel
    assert not guild.get_channel(world.hidden).permissions_for(guild.me).view_channel  # type: ignore[union-attr]
    side = guild.get_thread(world.thread.id)
    assert side is not None and side.parent_id == world.general and side.owner_id == world.person
    assert side.message_count == 1
    private = guild.get_thread(world.private_thread.id)
    assert private is not None and private.is_private() and private.me is not None
    post = guild.get_thread(world.post.id)
    assert post is not None and isinstance(post.parent, discord.ForumChannel)
    news_thread = guild.get_thread(world.news_thread.id)
    assert news_thread is not None and news_thread.type is discord.ChannelType.news_thread
    await fake.wait_for(lambda: guild.get_member(world.person) is not None)  # members chunked
    ana = guild.get_member(world.person)
    assert ana is not None and (ana.nick, ana.global_name) == ("Ana (mod)", "Ana")
    assert ana.display_name == "Ana (mod)"
    assert any(r.name == "Mods" for r in ana.roles)

    # MESSAGE_CREATE with member, mentions and a reply; a message in a thread.
    await fake.post_user_message(
        world.guild.id, world.general, "ana", f"<@{guild.me.id}> again", reply_to=world.user_message
    )
    said = await running.next_message()
    assert isinstance(said.author, discord.Member) and said.author.display_name == "Ana (mod)"
    assert [m.id for m in said.mentions] == [guild.me.id]
    assert said.type is discord.MessageType.reply and said.reference is not None
    assert said.reference.message_id == world.user_message
    replied = said.reference.resolved
    assert isinstance(replied, discord.Message) and replied.content.startswith("hello")
    await fake.post_user_message(world.guild.id, world.thread.id, "bo", "thread talk")
    in_thread = await running.next_message()
    assert isinstance(in_thread.channel, discord.Thread) and in_thread.channel.id == world.thread.id

    # THREAD_CREATE for a thread started now; GUILD_MEMBER_UPDATE for a nickname and a name.
    fresh = await fake.create_thread(world.guild.id, world.general, "fresh", author="bo")
    event, thread = await running.next_thread()
    assert (event, thread.id, thread.parent_id, thread.name) == (
        "create",
        fresh.id,
        world.general,
        "fresh",
    )
    fake.set_nick(world.guild.id, "ana", "Ana!")
    fake.set_global_name("ana", "Ana Banana")
    await fake.wait_for(lambda: (ana.nick, ana.global_name) == ("Ana!", "Ana Banana"))

    # The same payloads, fed to discord.py's constructors one by one.
    state = client._connection
    (guild_create,) = dispatched(fake, "GUILD_CREATE")
    parsed = discord.Guild(data=guild_create, state=state)  # type: ignore[arg-type]
    assert {c.id for c in parsed.channels} == {c.id for c in world.guild.channels}
    built = (world.thread, world.private_thread, world.post, world.news_thread)
    assert {t.id for t in parsed.threads} == {t.id for t in built}
    creates = dispatched(fake, "MESSAGE_CREATE")
    assert len(creates) >= 3
    for data in creates:
        where = guild.get_channel_or_thread(int(data["channel_id"]))
        assert where is not None
        message = discord.Message(state=state, channel=where, data=data)  # type: ignore[arg-type]
        assert message.id == int(data["id"]) and message.content == data["content"]
        assert isinstance(message.author, discord.Member) == ("webhook_id" not in data)
    (thread_create,) = dispatched(fake, "THREAD_CREATE")
    assert discord.Thread(guild=guild, state=state, data=thread_create).id == fresh.id  # type: ignore[arg-type]
    updates = dispatched(fake, "GUILD_MEMBER_UPDATE")
    assert len(updates) == 2
    for data in updates:
        member = discord.Member(data=data, guild=guild, state=state)  # type: ignore[arg-type]
        assert member.id == world.person and member.nick == "Ana!"
    assert not client.is_closed() and not running.task.done()
