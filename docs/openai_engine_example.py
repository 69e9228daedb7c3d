"""Talk to an OpenAI-compatible model from the command line with Neonrain's OpenAI engine.

    python docs/openai_engine_example.py --base-url http://127.0.0.1:11434/v1 --model llama3.1 \\
        "Hi Nova, what is this server about?"

Any server speaking the Chat Completions API with tool calling works (Ollama, vLLM, llama.cpp,
LM Studio, OpenAI, OpenRouter, Groq …); pass the key in ``OPENAI_ENGINE_API_KEY`` when it needs
one. To try it without a model, run the fake model server in another terminal
(``python -m tests.fakes.fake_openai``) and use ``--base-url http://127.0.0.1:8766/v1
--model fake-model``.

The script plays one turn in a made-up server's ``#general``: your message goes to the model with
the server's configuration, and whatever the agent decides to send (it may stay silent) is
printed, after the typing delay a person would need.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from neonrain.huma import ChannelRef, FetchedMessages, ServerConfig, ToolError
from neonrain.openai_engine import (
    ChatLine,
    EngineError,
    EngineListener,
    OpenAIAgent,
    OpenAIEndpoint,
)

CHANNEL = ChannelRef("example-general", "general")
CONFIG = ServerConfig(
    bot_name="Nova",
    server_name="Neonrain Example",
    personality="Warm, a little nerdy, loves good documentation.",
    rules="Be kind. No spam.",
    information="This server is a demo of Neonrain: AI community members for Discord servers.",
)


class ConsoleChannel(EngineListener):
    """One channel in the terminal: the agent's ToolHost, ConversationSource and listener."""

    def __init__(self) -> None:
        self.history: list[ChatLine] = []
        self.failure: EngineError | None = None

    def say(self, author: str, text: str) -> None:
        self.history.append(ChatLine(author, text, datetime.now(UTC)))

    # ConversationSource
    def agent_config(self) -> ServerConfig:
        return CONFIG

    def channel_name(self, channel_id: str) -> str:
        return CHANNEL.name

    def channels(self) -> Sequence[ChannelRef]:
        return [CHANNEL]

    async def recent_lines(self, channel_id: str, limit: int) -> Sequence[ChatLine]:
        return self.history[-limit:]

    # ToolHost
    async def check_channel(self, channel_id: str) -> None:
        if channel_id != CHANNEL.id:
            raise ToolError(f"Channel {channel_id} is not in this server")

    async def show_typing(self, channel_id: str) -> None:
        print(f"  ({CONFIG.bot_name} is typing…)", flush=True)

    async def send_text(self, channel_id: str, text: str) -> None:
        print(f"{CONFIG.bot_name}: {text}", flush=True)

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        self.history.append(ChatLine(CONFIG.bot_name, text, datetime.now(UTC), from_agent=True))
        return None

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        return FetchedMessages(CHANNEL.name, [])

    # EngineListener
    async def turn_failed(self, channel_id: str, error: EngineError) -> None:
        self.failure = error


async def main(base_url: str, model: str, message: str) -> int:
    console = ConsoleChannel()
    agent = OpenAIAgent(
        endpoint=OpenAIEndpoint(base_url, model, os.environ.get("OPENAI_ENGINE_API_KEY")),
        host=console,
        source=console,
        listener=console,
        quiet_seconds=0.2,
    )
    try:
        console.say("you", message)
        print(f"you: {message}", flush=True)
        agent.message(CHANNEL.id)
        await agent.wait_idle()
    finally:
        await agent.close()
    if console.failure is not None:
        print(f"The model failed ({console.failure.code}): {console.failure}", file=sys.stderr)
        return 1
    if not any(line.from_agent for line in console.history):
        print(f"({CONFIG.bot_name} chose to stay silent)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:11434/v1")
    parser.add_argument("--model", required=True, help="e.g. llama3.1")
    parser.add_argument("message", nargs="?", default="Hi Nova, what is this server about?")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    sys.exit(asyncio.run(main(args.base_url, args.model, args.message)))
