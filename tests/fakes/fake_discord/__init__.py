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
    FakeMessage,
    FakeUser,
    Intent,
    Permission,
)
from .server import (
    FailureRule,
    FakeDiscord,
    GatewayLogin,
    NicknameChange,
    RecordedRequest,
    TypingCall,
)

__all__ = [
    "ChannelType",
    "CloseCode",
    "FailureRule",
    "FakeBot",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeMessage",
    "FakeUser",
    "GatewayLogin",
    "GatewaySession",
    "Intent",
    "NicknameChange",
    "Op",
    "Permission",
    "RecordedRequest",
    "TypingCall",
    "discord_py_pointed_at",
]
