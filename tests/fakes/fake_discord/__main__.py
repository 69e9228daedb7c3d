"""Run the fake Discord on its own: ``python -m tests.fakes.fake_discord --port 8790``.

It prints a demo bot token and the guilds; point the product at it with DISCORD_API_URL and
DISCORD_GATEWAY_URL. Post a message as a user with::

    curl -X POST localhost:8790/_fake/messages \\
         -d '{"guild_id": "...", "channel_id": "...", "author": "ana", "content": "hello"}'

and read what bots sent at ``GET /_fake/sent-messages`` (state at ``GET /_fake/state``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from .models import ChannelType
from .server import FakeDiscord

DEMO_TOKEN = "fake-demo-bot-token"


def build_demo(fake: FakeDiscord, token: str) -> None:
    """One demo bot in two guilds (and a third guild without it), with fixed ids for curl."""
    bot = fake.add_bot(token, "Neonrain Demo", bot_id=1100000000000000001)
    names = ["Neonrain Demo Guild", "Second Demo Guild", "Guild Without The Bot"]
    for index, name in enumerate(names, start=1):
        guild_id = 1200000000000000000 + index
        guild = fake.add_guild(
            name, guild_id=guild_id, channels=[], bots=[bot] if index < 3 else []
        )
        base = 1300000000000000000 + index * 100
        category = fake.add_channel(
            guild.id, "Text Channels", ChannelType.GUILD_CATEGORY, channel_id=base
        )
        fake.add_channel(guild.id, "general", channel_id=base + 1, parent_id=category.id)
        fake.add_channel(guild.id, "random", channel_id=base + 2, parent_id=category.id)
        fake.add_channel(guild.id, "Lounge", ChannelType.GUILD_VOICE, channel_id=base + 3)


async def serve(host: str, port: int, token: str) -> None:
    fake = FakeDiscord(host=host, port=port)
    build_demo(fake, token)
    await fake.start()
    print(f"fake Discord listening on {fake.base_url}")
    print(f"  DISCORD_API_URL={fake.api_url}")
    print(f"  DISCORD_GATEWAY_URL={fake.gateway_url}")
    print(f"  demo bot token: {token}")
    for guild in fake.guilds.values():
        bots = ", ".join(b.username for b in fake.bots_in(guild.id)) or "no bot"
        print(f"  guild {guild.id} {guild.name!r} ({bots})")
        for channel in guild.channels:
            print(f"    channel {channel.id} #{channel.name} (type {int(channel.type)})")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.fake_discord",
        description="Run the fake Discord (REST + gateway) with a demo bot, for local runs.",
        epilog=(
            "Point Neonrain at it with DISCORD_API_URL=http://HOST:PORT/api/v10 and "
            "DISCORD_GATEWAY_URL=ws://HOST:PORT/gateway. Post as a user with POST /_fake/messages "
            '{"guild_id", "channel_id", "author", "content", "reply_to"?}; read what bots sent '
            "at GET /_fake/sent-messages and the state at GET /_fake/state."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8790, help="port to listen on")
    parser.add_argument("--token", default=DEMO_TOKEN, help="the demo bot's token")
    parser.add_argument("--verbose", action="store_true", help="log at DEBUG level")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()
