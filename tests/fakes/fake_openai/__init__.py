"""A fake OpenAI-compatible model server (Chat Completions with tool calls), for tests and local
runs: ``python -m tests.fakes.fake_openai --port 8766``."""

from tests.fakes.fake_openai.server import (
    ChatRequest,
    Failure,
    FakeOpenAI,
    Reply,
    ReplyFn,
    ToolCall,
    quoting_reply,
    send_message,
    text,
    tool_call,
)

__all__ = [
    "ChatRequest",
    "Failure",
    "FakeOpenAI",
    "Reply",
    "ReplyFn",
    "ToolCall",
    "quoting_reply",
    "send_message",
    "text",
    "tool_call",
]
