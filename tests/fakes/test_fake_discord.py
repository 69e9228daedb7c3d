"""The fake Discord against the real discord.py client (and raw protocol checks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import discord
import discord.gateway
import discord.http
import discord.utils
import httpx
import pytest
import yarl

from tests.fakes.discord_clients import (
    OTHER_TOKEN,
    TOKEN,
    WORKER_INTENTS,
    RunningClient,
    connect,
    start_client,
)
from tests.fakes.fake_discord import (
    ChannelType,
    CloseCode,
    FakeDiscord,
    FakeGuild,
    Intent,
    discord_py_pointed_at,
)
from tests.webapp import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def guild(fake: FakeDiscord) -> FakeGuild:
    bot = fake.add_bot(TOKEN, "Helper", avatar="abc123")
    return fake.add_guild("Guild One", icon="icon1", bots=[bot])


@contextlib.asynccontextmanager
async def raw_gateway(
    fake: FakeDiscord, query: str = "v=10&encoding=json"
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A bare WebSocket to the fake gateway, for checks below discord.py's level."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{fake.gateway_url}?{query}") as ws,
    ):
        yield ws


# --------------------------------------------------------------------------- pointing discord.py


def test_discord_py_helper_sets_and_restores_the_addresses() -> None:
    route, ws = discord.http.Route, discord.gateway.DiscordWebSocket
    before = (route.BASE, ws.DEFAULT_GATEWAY)
    with discord_py_pointed_at("http://127.0.0.1:9/api/v10/", "ws://127.0.0.1:9/gateway"):
        assert route.BASE == "http://127.0.0.1:9/api/v10"
        assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:9/api/v10/users/@me"
        assert str(ws.DEFAULT_GATEWAY) == "ws://127.0.0.1:9/gateway"
        assert isinstance(ws.DEFAULT_GATEWAY, yarl.URL)
    assert before == (route.BASE, ws.DEFAULT_GATEWAY)


# --------------------------------------------------------------------------- login and READY


async def test_client_logs_in_and_receives_guilds_with_channels_and_roles(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    client = running.client

    assert client.user is not None
    assert client.user.id == fake.bots[TOKEN].id
    assert client.user.name == "Helper"
    assert client.user.bot is True
    assert client.application_id == fake.bots[TOKEN].id

    seen = client.get_guild(guild.id)
    assert seen is not None
    assert seen.name == "Guild One"
    assert seen.icon is not None and seen.icon.key == "icon1"
    by_name = {c.name: c for c in seen.channels}
    assert isinstance(by_name["general"], discord.TextChannel)
    assert isinstance(by_name["random"], discord.TextChannel)
    assert isinstance(by_name["General"], discord.VoiceChannel)
    assert isinstance(by_name["Text Channels"], discord.CategoryChannel)
    assert by_name["general"].category == by_name["Text Channels"]
    assert seen.default_role.id == guild.id
    assert any(r.is_bot_managed() for r in seen.roles)
    assert seen.me is not None and seen.me.id == client.user.id
    perms = by_name["general"].permissions_for(seen.me)
    assert perms.send_messages and perms.read_message_history and perms.view_channel

    login = fake.logins[0]
    assert (login.kind, login.bot_id, login.path) == ("identify", client.user.id, "/gateway")
    assert login.intents == WORKER_INTENTS.value
    assert fake.is_online(TOKEN)
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("GET", "/users/@me") in paths
    assert ("GET", "/oauth2/applications/@me") in paths
    assert ("GET", "/gateway/bot") not in paths  # a plain Client goes straight to the gateway


async def test_bot_only_receives_its_own_guilds(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    other = fake.add_bot(OTHER_TOKEN, "Other")
    fake.add_guild("Not Mine", bots=[other])
    running = await connect(clients)
    assert [g.name for g in running.client.guilds] == ["Guild One"]


# --------------------------------------------------------------------------- messages


async def test_user_message_reaches_on_message_with_content(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    general = guild.channel_named("general")

    posted = await fake.post_user_message(guild.id, general.id, "ana", "hello <@123> bot")
    message = await running.next_message()

    assert message.id == posted.id
    assert message.content == "hello <@123> bot"
    assert message.author.name == "ana"
    assert message.author.bot is False
    assert isinstance(message.author, discord.Member)
    assert message.guild is not None and message.guild.id == guild.id
    assert message.channel.id == general.id
    assert isinstance(message.channel, discord.TextChannel)
    assert message.webhook_id is None
    assert message.created_at == posted.timestamp


async def test_other_bots_webhooks_system_messages_and_attachments(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    channel_id = guild.channel_named("general").id

    await fake.post_user_message(guild.id, channel_id, "robot", "beep", author_is_bot=True)
    await fake.post_user_message(guild.id, channel_id, "hook", "hooked", webhook=True)
    await fake.post_user_message(guild.id, channel_id, "joe", "", message_type=7)
    await fake.post_user_message(guild.id, channel_id, "ana", "", attachments=["cat.png"])

    from_bot, from_hook, system, with_file = [await running.next_message() for _ in range(4)]
    assert from_bot.author.bot is True
    assert from_hook.webhook_id is not None
    assert system.type is discord.MessageType.new_member
    assert [a.filename for a in with_file.attachments] == ["cat.png"]


async def test_reply_typing_and_nickname_are_recorded(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    client = running.client
    general_id = guild.channel_named("general").id
    await fake.post_user_message(guild.id, general_id, "ana", "hi")
    incoming = await running.next_message()

    async with incoming.channel.typing():
        pass
    sent = await incoming.reply("hello ana")

    recorded = await fake.wait_for_bot_message(general_id, timeout=2)
    assert recorded.id == sent.id
    assert recorded.content == "hello ana"
    assert recorded.reference_id == incoming.id
    assert recorded.author_id == fake.bots[TOKEN].id
    assert [m.content for m in fake.history(general_id)] == ["hi", "hello ana"]
    # Discord echoes the bot's own message on the gateway, as it does for everyone's.
    echo = await running.next_message()
    assert echo.id == sent.id and echo.author == client.user

    assert (await fake.wait_for_typing(general_id)).bot_id == fake.bots[TOKEN].id
    assert [(t.bot_id, t.channel_id) for t in fake.typing_calls] == [
        (fake.bots[TOKEN].id, general_id)
    ]

    seen_guild = client.get_guild(guild.id)
    assert seen_guild is not None
    member = await seen_guild.me.edit(nick="Neon")
    assert member is not None and member.nick == "Neon"
    assert [(c.guild_id, c.nick) for c in fake.nickname_changes] == [(guild.id, "Neon")]
    assert fake.nickname(guild.id, TOKEN) == "Neon"
    # The gateway tells the bot about its own member update, so its cache follows.
    await fake.wait_for(lambda: seen_guild.me.nick == "Neon", timeout=2)


async def test_history_is_newest_first_with_before_paging(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    channel_id = guild.channel_named("random").id
    posted = [await fake.post_user_message(guild.id, channel_id, "ana", f"m{i}") for i in range(5)]

    channel = running.client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    newest = [m.content async for m in channel.history(limit=3)]
    assert newest == ["m4", "m3", "m2"]
    older = [
        m.content async for m in channel.history(limit=10, before=discord.Object(posted[2].id))
    ]
    assert older == ["m1", "m0"]
    history_requests = [r for r in fake.requests if r.path.endswith("/messages")]
    assert history_requests[0].query == {"limit": "3"}


async def test_load_generators_post_without_waiting_and_bound_the_history(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    fake.history_limit = 10
    running = await connect(clients)
    channel_id = guild.channel_named("general").id
    for i in range(25):
        fake.dispatch_user_message(guild.id, channel_id, "ana", f"m{i}")
    received = [(await running.next_message()).content for _ in range(25)]
    assert received == [f"m{i}" for i in range(25)]
    kept = [m.content for m in fake.history(channel_id)]
    assert 10 <= len(kept) <= 20
    assert kept == [f"m{i}" for i in range(25 - len(kept), 25)]


async def test_message_content_is_blank_without_the_intent_unless_mentioned(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    running = await connect(clients, intents=intents)
    channel_id = guild.channel_named("general").id
    bot_id = fake.bots[TOKEN].id

    await fake.post_user_message(guild.id, channel_id, "ana", "secret words")
    await fake.post_user_message(guild.id, channel_id, "ana", f"<@{bot_id}> hey you")

    assert (await running.next_message()).content == ""
    mentioned = await running.next_message()
    assert mentioned.content == f"<@{bot_id}> hey you"
    assert [u.id for u in mentioned.mentions] == [bot_id]


async def test_privileged_intent_not_enabled_in_portal_closes_4014(
    fake: FakeDiscord, clients: list[RunningClient]
) -> None:
    fake.add_bot(TOKEN, "NoContent", message_content_intent=False)
    running = start_client(TOKEN)
    clients.append(running)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(running.task, 10)
    assert fake.closed_connections[-1][1] == CloseCode.DISALLOWED_INTENTS


async def test_direct_messages_need_the_dm_intent(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    intents = discord.Intents(guilds=True, guild_messages=True, dm_messages=True)
    running = await connect(clients, intents=intents)

    posted = await fake.post_direct_message(TOKEN, "ana", "psst")
    message = await running.next_message()
    assert message.id == posted.id
    assert message.guild is None
    assert isinstance(message.channel, discord.DMChannel)
    assert message.content == "psst"  # DMs are not subject to the message content intent

    await message.channel.send("hi in private")
    sent = await fake.wait_for_bot_message(posted.channel_id)
    assert (sent.guild_id, sent.content) == (None, "hi in private")


# --------------------------------------------------------------------------- guild membership


async def test_adding_and_removing_the_bot_sends_guild_create_and_delete(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    second = fake.add_guild(
        "Second",
        channels=[("chat", ChannelType.GUILD_TEXT), ("news", ChannelType.GUILD_ANNOUNCEMENT)],
    )

    await fake.add_bot_to_guild(second.id, TOKEN)
    joined = await asyncio.wait_for(running.joined.get(), 5)
    assert joined.id == second.id
    assert sorted(c.name for c in joined.text_channels) == ["chat", "news"]
    assert {g.id for g in running.client.guilds} == {guild.id, second.id}

    await fake.post_user_message(second.id, second.channel_named("chat").id, "bo", "in second")
    assert (await running.next_message()).guild == joined

    await fake.remove_bot_from_guild(second.id, TOKEN)
    removed = await asyncio.wait_for(running.removed.get(), 5)
    assert removed.id == second.id
    assert {g.id for g in running.client.guilds} == {guild.id}


async def test_messages_go_to_every_bot_in_the_guild(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    fake.add_bot(OTHER_TOKEN, "Second Bot")
    await fake.add_bot_to_guild(guild.id, OTHER_TOKEN)
    first = await connect(clients, TOKEN)
    second = await connect(clients, OTHER_TOKEN)

    await fake.post_user_message(guild.id, guild.channel_named("general").id, "ana", "to all")

    assert (await first.next_message()).content == "to all"
    assert (await second.next_message()).content == "to all"
    assert {b.username for b in fake.bots_in(guild.id)} == {"Helper", "Second Bot"}


# --------------------------------------------------------------------------- invalid tokens


async def test_unknown_token_raises_login_failure(fake: FakeDiscord, guild: FakeGuild) -> None:
    client = discord.Client(intents=WORKER_INTENTS)
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-a-known-token")
    finally:
        await client.close()
    assert fake.requests[-1].status == 401
    assert fake.requests[-1].bot_id is None


async def test_revoked_token_closes_the_gateway_with_4004(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    fake.revoke_token(TOKEN)
    await fake.flush()

    with pytest.raises(discord.ConnectionClosed) as raised:
        await asyncio.wait_for(running.task, 10)
    assert raised.value.code == CloseCode.AUTHENTICATION_FAILED
    assert running.client.is_closed()
    assert not fake.is_online(TOKEN)


async def test_identify_with_unknown_token_closes_4004(fake: FakeDiscord) -> None:
    async with raw_gateway(fake) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["op"] == 10
        assert hello["d"]["heartbeat_interval"] == fake.heartbeat_interval_ms
        await ws.send_json({"op": 2, "d": {"token": "nope", "intents": 513, "properties": {}}})
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == CloseCode.AUTHENTICATION_FAILED


# --------------------------------------------------------------------------- resume


async def test_dropped_connection_resumes_and_replays_missed_events(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    session_id = fake.logins[0].session_id

    assert await fake.drop_connections(TOKEN) == 1
    # Dispatched while the bot is disconnected: kept for the session, replayed on RESUME.
    await fake.post_user_message(guild.id, guild.channel_named("general").id, "ana", "missed?")

    await asyncio.wait_for(running.resumed.wait(), 10)
    assert (await running.next_message()).content == "missed?"
    kinds = [(login.kind, login.session_id, login.path) for login in fake.logins]
    assert kinds == [
        ("identify", session_id, "/gateway"),
        ("resume", session_id, "/gateway-resume"),
    ]
    assert running.ready_count == 1


async def test_close_4000_and_reconnect_opcode_resume(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)

    await fake.close_connections(TOKEN, code=CloseCode.UNKNOWN_ERROR)
    await asyncio.wait_for(running.resumed.wait(), 10)
    running.resumed.clear()
    await fake.wait_for_online(TOKEN)

    await fake.send_reconnect(TOKEN)
    await asyncio.wait_for(running.resumed.wait(), 10)

    assert [login.kind for login in fake.logins] == ["identify", "resume", "resume"]
    await fake.post_user_message(guild.id, guild.channel_named("general").id, "ana", "still here")
    assert (await running.next_message()).content == "still here"


async def test_invalid_session_makes_the_client_identify_again(
    fake: FakeDiscord, guild: FakeGuild, clients: list[RunningClient]
) -> None:
    running = await connect(clients)
    running.ready.clear()

    await fake.invalidate_sessions(TOKEN, resumable=False)
    await running.wait_ready()

    assert [login.kind for login in fake.logins] == ["identify", "identify"]
    assert fake.logins[0].session_id != fake.logins[1].session_id
    assert running.ready_count == 2


async def test_resume_with_unknown_session_is_refused(fake: FakeDiscord, guild: FakeGuild) -> None:
    async with raw_gateway(fake) as ws:
        await ws.receive_json(timeout=5)
        await ws.send_json({"op": 6, "d": {"token": TOKEN, "session_id": "x", "seq": 1}})
        answer = await ws.receive_json(timeout=5)
    assert answer == {"op": 9, "d": False, "s": None, "t": None}


# --------------------------------------------------------------------------- heartbeats, zlib


async def test_heartbeats_are_acknowledged(
    guild: FakeGuild, fake: FakeDiscord, clients: list[RunningClient]
) -> None:
    fake.heartbeat_interval_ms = 100
    running = await connect(clients)
    await fake.wait_for(lambda: fake.connection_count(TOKEN) == 1, timeout=2)
    conn = fake.connections(TOKEN)[0]
    await fake.wait_for(lambda: conn.heartbeats >= 3, timeout=5)
    assert running.client.latency < 1.0


async def test_zlib_stream_split_over_frames_works_with_discord_py(
    clients: list[RunningClient],
) -> None:
    async with FakeDiscord(zlib_chunk_size=16) as fake:
        bot = fake.add_bot(TOKEN, "Helper")
        guild = fake.add_guild("Zlib Guild", bots=[bot])
        with fake.patch_discord_py():
            running = await connect(clients)
            await fake.post_user_message(guild.id, guild.text_channels[0].id, "ana", "x" * 500)
            assert (await running.next_message()).content == "x" * 500
            assert fake.logins[0].zlib_stream is True
            await running.client.close()


async def test_zlib_stream_and_plain_text_frames_on_the_wire(fake: FakeDiscord) -> None:
    async with raw_gateway(fake, "v=10&encoding=json&compress=zlib-stream") as ws:
        frame = await ws.receive(timeout=5)
        assert frame.type is aiohttp.WSMsgType.BINARY
        assert frame.data.endswith(b"\x00\x00\xff\xff")
        inflater = zlib.decompressobj()
        hello = json.loads(inflater.decompress(frame.data))
        assert hello["op"] == 10
        await ws.send_json({"op": 1, "d": None})
        ack = await ws.receive(timeout=5)
        assert json.loads(inflater.decompress(ack.data)) == {
            "op": 11,
            "d": None,
            "s": None,
            "t": None,
        }
    async with raw_gateway(fake) as ws:
        frame = await ws.receive(timeout=5)
        assert frame.type is aiohttp.WSMsgType.TEXT
        assert json.loads(frame.data)["op"] == 10


async def test_protocol_errors_close_with_discord_codes(fake: FakeDiscord) -> None:
    async def close_code_after(payload: str) -> int | None:
        async with raw_gateway(fake) as ws:
            await ws.receive(timeout=5)
            await ws.send_str(payload)
            await ws.receive(timeout=5)
            return ws.close_code

    fake.add_bot(TOKEN, "Helper")
    assert await close_code_after("{not json") == CloseCode.DECODE_ERROR
    assert await close_code_after('{"op": 3, "d": {}}') == CloseCode.NOT_AUTHENTICATED
    assert await close_code_after('{"op": 99}') == CloseCode.UNKNOWN_OPCODE
    bad_intents = json.dumps({"op": 2, "d": {"token": TOKEN, "intents": 1 << 40}})
    assert await close_code_after(bad_intents) == CloseCode.INVALID_INTENTS


# --------------------------------------------------------------------------- REST shapes


async def test_rest_errors_use_discords_shapes_and_exact_content_type(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    outsider = fake.add_guild("Outsider")
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        unauthorized = await http.get("/users/@me", headers={"Authorization": "Bot wrong"})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["content-type"] == "application/json"
        assert unauthorized.json() == {"message": "401: Unauthorized", "code": 0}

        auth = {"Authorization": f"Bot {TOKEN}"}
        me = await http.get("/users/@me", headers=auth)
        assert me.headers["content-type"] == "application/json"
        assert me.json()["bot"] is True and me.json()["id"] == str(fake.bots[TOKEN].id)

        missing = await http.get(f"/guilds/{outsider.id}", headers=auth)
        assert (missing.status_code, missing.json()["code"]) == (403, 50001)
        unknown = await http.get("/guilds/42", headers=auth)
        assert (unknown.status_code, unknown.json()["code"]) == (404, 10004)
        not_a_route = await http.get("/nothing/here", headers=auth)
        assert not_a_route.status_code == 404 and not_a_route.json()["code"] == 0

        channel_id = guild.channel_named("general").id
        too_long = await http.post(
            f"/channels/{channel_id}/messages", headers=auth, json={"content": "x" * 2001}
        )
        assert (too_long.status_code, too_long.json()["code"]) == (400, 50035)
        empty = await http.post(f"/channels/{channel_id}/messages", headers=auth, json={})
        assert (empty.status_code, empty.json()["code"]) == (400, 50006)
        typing = await http.post(f"/channels/{channel_id}/typing", headers=auth)
        assert typing.status_code == 204 and typing.content == b""

        gateway = await http.get("/gateway/bot", headers=auth)
        assert gateway.json()["url"] == fake.gateway_url
        assert gateway.json()["shards"] == 1


async def test_guild_list_pages_with_limit_and_after(fake: FakeDiscord) -> None:
    bot = fake.add_bot(TOKEN, "Helper")
    ids = [fake.add_guild(f"g{i}", bots=[bot]).id for i in range(5)]
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        auth = {"Authorization": f"Bot {TOKEN}"}
        first = (await http.get("/users/@me/guilds?limit=2", headers=auth)).json()
        rest = (await http.get(f"/users/@me/guilds?after={first[-1]['id']}", headers=auth)).json()
        too_big = await http.get("/users/@me/guilds?limit=201", headers=auth)
    assert [int(g["id"]) for g in first] == ids[:2]
    assert [int(g["id"]) for g in rest] == ids[2:]
    assert set(first[0]) >= {"id", "name", "icon", "owner", "permissions", "features"}
    assert too_big.status_code == 400


async def test_injected_failures_apply_per_route_token_and_count(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    fake.add_failure("/users/@me", status=502, times=1)
    fake.add_failure("/guilds/*", token=TOKEN, status=500)
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        auth = {"Authorization": f"Bot {TOKEN}"}
        assert (await http.get("/users/@me", headers=auth)).status_code == 502
        assert (await http.get("/users/@me", headers=auth)).status_code == 200
        assert (await http.get(f"/guilds/{guild.id}", headers=auth)).status_code == 500
        fake.clear_failures()
        assert (await http.get(f"/guilds/{guild.id}", headers=auth)).status_code == 200


# --------------------------------------------------------------------------- standalone


async def test_standalone_fake_serves_the_demo_bot() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.fake_discord",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        banner = ""
        while "channel" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), 20)
            assert line, f"the fake exited early: {banner}"
            banner += line.decode()
        assert f"DISCORD_API_URL=http://127.0.0.1:{port}/api/v10" in banner
        assert "demo bot token: fake-demo-bot-token" in banner
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            me = await http.get(
                "/api/v10/users/@me", headers={"Authorization": "Bot fake-demo-bot-token"}
            )
            state = (await http.get("/_fake/state")).json()
            posted = await http.post(
                "/_fake/messages",
                json={
                    "guild_id": "1200000000000000001",
                    "channel_id": "1300000000000000101",
                    "author": "dev",
                    "content": "hello from curl",
                },
            )
            replied = await http.post(
                "/_fake/messages",
                json={
                    "guild_id": "1200000000000000001",
                    "channel_id": "1300000000000000101",
                    "author": "dev2",
                    "content": "a reply",
                    "reply_to": posted.json()["id"],
                },
            )
            bad = await http.post("/_fake/messages", json={"guild_id": "x"})
            history = await http.get(
                "/api/v10/channels/1300000000000000101/messages",
                headers={"Authorization": "Bot fake-demo-bot-token"},
            )
        assert me.json()["username"] == "Neonrain Demo"
        assert [g["name"] for g in state["guilds"]] == [
            "Neonrain Demo Guild",
            "Second Demo Guild",
            "Guild Without The Bot",
        ]
        assert posted.status_code == 201
        assert [(m["author"]["username"], m["content"]) for m in history.json()] == [
            ("dev2", "a reply"),
            ("dev", "hello from curl"),
        ]
        assert replied.status_code == 201 and bad.status_code == 400
        assert history.json()[0]["message_reference"]["message_id"] == posted.json()["id"]
    finally:
        process.terminate()
        await process.wait()


def test_intent_numbers_match_discord_py() -> None:
    assert discord.Intents(message_content=True).value == Intent.MESSAGE_CONTENT
    assert discord.Intents(guild_messages=True).value == Intent.GUILD_MESSAGES
    assert discord.Intents(members=True).value == Intent.GUILD_MEMBERS


def test_zlib_split_frames_decode_with_discord_pys_decompressor() -> None:
    context_class = getattr(discord.utils, "_ZlibDecompressionContext", None)
    if context_class is None:  # discord.py prefers zstd-stream when zstandard is installed
        pytest.skip("discord.py uses zstd-stream here")
    from tests.fakes.fake_discord.gateway import ZLIB_SUFFIX, _split_zlib

    text = json.dumps({"op": 0, "t": "X", "s": 1, "d": {"k": "v" * 300, "n": list(range(50))}})
    compressor = zlib.compressobj()
    data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
    chunks = _split_zlib(data, 8)
    assert len(chunks) > 2 and b"".join(chunks) == data
    assert all(not c.endswith(ZLIB_SUFFIX) for c in chunks[:-1])

    context = context_class()
    decoded = [context.decompress(c) for c in chunks]
    assert decoded[:-1] == [None] * (len(chunks) - 1)
    assert decoded[-1] == text
