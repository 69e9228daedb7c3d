"""A fake Discord (REST API v10 + gateway) that the real discord.py client connects to.

Typical use in a test::

    async with FakeDiscord() as fake:
        bot = fake.add_bot("token-1", "Helper")
        guild = fake.add_guild("My Guild", bots=[bot])
        with fake.patch_discord_py():
            ...  # start discord.py / the worker with fake.api_url and fake.gateway_url
        general = guild.channel_named("general").id
        await fake.post_user_message(guild.id, general, "ana", "hi")
        reply = await fake.wait_for_bot_message(general)

People, roles and permissions (Discord's algorithm; the bot only gets MESSAGE_CREATE where it can
VIEW_CHANNEL, and REST answers 403 ``50001`` Missing Access / ``50013`` Missing Permissions)::

    ana = fake.add_member(guild.id, "ana", nick="Ana (mod)", global_name="Ana")
    mods = fake.add_role(guild.id, "Mods", Permission.MANAGE_MESSAGES, members=[ana])
    staff = fake.add_channel(guild.id, "staff", parent_id=category.id)  # synced with it
    fake.set_overwrite(staff.id, guild.id, deny=Permission.VIEW_CHANNEL)  # @everyone
    fake.set_overwrite(staff.id, mods, allow=Permission.VIEW_CHANNEL)
    fake.set_overwrite(staff.id, bot, deny=Permission.SEND_MESSAGES)  # a member overwrite
    fake.sync_with_category(staff.id)
    fake.give_role(guild.id, bot, mods)  # also take_role, set_role_permissions, bot_role
    fake.permissions_in(staff.id, "token-1")  # the truth to compare the product with
    fake.set_nick(guild.id, "ana", "Nana")  # GUILD_MEMBER_UPDATE
    fake.set_global_name("ana", "Ana Maria")
    fake.history_without_permission = "empty"  # instead of 403 without READ_MESSAGE_HISTORY

Mentions, replies, threads and forum posts::

    said = await fake.post_user_message(guild.id, general, "ana", f"hey <@{bot.id}>")
    await fake.post_user_message(guild.id, general, "bo", "+1", reply_to=said.id)
    thread = await fake.create_thread(guild.id, general, "side", author="ana",
                                      from_message=said.id)  # or private=True, members=[bot]
    await fake.post_user_message(guild.id, thread.id, "ana", "in the thread")
    forum = fake.add_channel(guild.id, "help", ChannelType.GUILD_FORUM)
    post = await fake.create_thread(guild.id, forum.id, "How?", author="cy", content="Help!")
    await fake.add_thread_member(thread.id, bot)

Rate limits (on by default, generous; every 429 is in ``fake.rate_limit_hits``)::

    fake.set_rate_limit("POST /channels/{channel_id}/messages", 5, 5.0)  # Discord's numbers
    fake.rate_limits = RateLimits.discord()  # or RateLimits.off()
    fake.rate_limit("/users/@me", retry_after=0.5)  # one injected 429

Gateway recovery and diagnostics::

    await fake.drop_connections("token-1")  # discord.py RESUMEs; missed events are replayed
    await fake.send_parser_crash("token-1", guild.id)  # discord.py's parser raises KeyError
    fake.add_channel(guild.id, "Bad", ChannelType.GUILD_VOICE, omit=["bitrate"])  # every start
    fake.bots["token-1"].message_content_intent = False  # next IDENTIFY closes with 4014
    await fake.send_event("token-1", "GUILD_UPDATE", {...})  # any event, as is

Run it on its own with ``python -m tests.fakes.fake_discord`` (see ``--help``).
"""

from .discord_py import discord_py_pointed_at
from .gateway import CloseCode, GatewaySession, Op
from .models import (
    ChannelType,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeThread,
    FakeUser,
    Intent,
    MessageType,
)
from .permissions import Overwrite, Permission
from .ratelimit import Limit, RateLimits
from .records import (
    FailureRule,
    GatewayLogin,
    NicknameChange,
    RateLimitHit,
    RecordedRequest,
    TypingCall,
)
from .server import FakeDiscord

__all__ = [
    "ChannelType",
    "CloseCode",
    "FailureRule",
    "FakeBot",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeThread",
    "FakeUser",
    "GatewayLogin",
    "GatewaySession",
    "Intent",
    "Limit",
    "MessageType",
    "NicknameChange",
    "Op",
    "Overwrite",
    "Permission",
    "RateLimitHit",
    "RateLimits",
    "RecordedRequest",
    "TypingCall",
    "discord_py_pointed_at",
]
