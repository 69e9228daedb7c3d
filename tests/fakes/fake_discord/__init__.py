"""A fake Discord (REST API v10 + gateway) that the real discord.py client connects to.

Typical use in a test::

    async with FakeDiscord() as fake:
        bot = fake.add_bot("token-1", "Helper")
        guild = fake.add_guild("My Guild", bots=[bot])
        with fake.patch_discord_py():
            ...  # start discord.py / the worker with fake.api_url and fake.gateway_url
        await fake.post_user_message(guild.id, guild.channel_named("general").id, "ana", "hi")
        reply = await fake.wait_for_bot_message(guild.channel_named("general").id)
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
