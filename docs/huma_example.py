"""Talk to a HUMA agent from the command line with the Neonrain HUMA library.

    HUMA_API_KEY=... .venv/bin/python docs/huma_example.py "Hi Nova, what is this server about?"

``HUMA_API_URL`` defaults to https://api.humalike.tech. To try it without a real key, run the fake
server in another terminal (``.venv/bin/python -m tests.fakes.fake_huma --api-key dev --echo``)
and use ``HUMA_API_URL=http://127.0.0.1:8765 HUMA_API_KEY=dev``.

The script creates a throw-away agent for a made-up server, sends one message as "you", prints
whatever the agent decides to say (HUMA may also decide to stay silent), and deletes the agent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from neonrain.huma import (
    AgentSession,
    ChannelRef,
    FetchedMessages,
    HumaError,
    ServerConfig,
    ToolError,
    build_agent_metadata,
    build_context,
    describe_new_message,
    discord_agent_name,
    format_history_line,
)

CHANNEL = ChannelRef("example-general", "general")
CONFIG = ServerConfig(
    bot_name="Nova",
    server_name="Neonrain Example",
    personality="Warm, a little nerdy, loves good documentation.",
    rules="Be kind. No spam.",
    information="This server is a demo of Neonrain: AI community members for Discord servers.",
)


class ConsoleHost:
    """A ToolHost that "sends" messages by printing them."""

    def __init__(self, history: list[str]) -> None:
        self.history = history
        self.replied = asyncio.Event()

    async def check_channel(self, channel_id: str) -> None:
        if channel_id != CHANNEL.id:
            raise ToolError(f"Channel {channel_id} is not in this server")

    async def show_typing(self, channel_id: str) -> None:
        print(f"  ({CONFIG.bot_name} is typing…)")

    async def send_text(self, channel_id: str, text: str) -> None:
        print(f"{CONFIG.bot_name}: {text}")

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        self.history.append(format_history_line(datetime.now(UTC), CONFIG.bot_name, text))
        self.replied.set()
        return {
            "currentChannel": {
                "id": CHANNEL.id,
                "name": CHANNEL.name,
                "conversationHistory": "".join(self.history),
            }
        }

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        return FetchedMessages(CHANNEL.name, self.history[-limit:])


async def main(question: str, wait: float, keep: bool) -> int:
    api_key = os.environ.get("HUMA_API_KEY")
    if not api_key:
        print("Set HUMA_API_KEY (and HUMA_API_URL for a non-default server).", file=sys.stderr)
        return 2
    api_url = os.environ.get("HUMA_API_URL", "https://api.humalike.tech")
    history = [format_history_line(datetime.now(UTC), "you", question)]
    host = ConsoleHost(history)
    session = AgentSession(
        api_url=api_url,
        api_key=api_key,
        name=discord_agent_name(CONFIG.server_name),
        metadata=build_agent_metadata(CONFIG),
        host=host,
        typing_wpm=float(os.environ.get("NEONRAIN_TYPING_WPM", "90")),
    )
    try:
        try:
            await session.start()
        except HumaError as exc:  # a wrong key, or a request HUMA will never accept
            print(f"HUMA error: {exc}", file=sys.stderr)
            return 1
        async with asyncio.timeout(30):
            if not await session.wait_connected():
                print(f"Could not connect: {session.error}", file=sys.stderr)
                return 1
        print(f"Connected to agent {session.agent_id}.\nyou: {question}")
        context = build_context(
            CONFIG,
            guild_id="example-guild",
            you=CONFIG.bot_name,
            current_channel=CHANNEL,
            history=history,
            monitored_channels=[CHANNEL],
            all_channels=[CHANNEL],
        )
        await session.send_context(context, describe_new_message("you", CHANNEL.name, question))
        try:
            async with asyncio.timeout(wait):
                await host.replied.wait()
        except TimeoutError:
            print(f"(no answer within {wait:.0f} s: HUMA chose to stay silent)")
        return 0
    finally:
        await session.close(delete_agent=not keep)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="Hi Nova! What is this server about?")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for an answer")
    parser.add_argument("--keep", action="store_true", help="do not delete the agent afterwards")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    sys.exit(asyncio.run(main(args.question, args.wait, args.keep)))
