"""Conversation history as every engine shows it to its model: one line per message,
``[<ISO timestamp>] <author>: <content>``, oldest first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

HISTORY_LIMIT: Final = 50


def iso_timestamp(timestamp: datetime | str) -> str:
    """``timestamp`` as ISO 8601 in UTC with a ``Z`` (naive datetimes are taken as UTC)."""
    if isinstance(timestamp, str):
        return timestamp
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return timestamp.isoformat().replace("+00:00", "Z")


def format_history_line(timestamp: datetime | str, author: str, content: str) -> str:
    """One ``conversationHistory`` line: ``[<ISO timestamp>] <author>: <content>\\n``."""
    return f"[{iso_timestamp(timestamp)}] {author}: {content}\n"


def join_history(lines: Iterable[str], limit: int = HISTORY_LIMIT) -> str:
    """The ``conversationHistory`` string: the last ``limit`` lines, oldest first."""
    kept = list(lines)[-limit:] if limit > 0 else []
    return "".join(line if line.endswith("\n") else line + "\n" for line in kept)


@dataclass(frozen=True)
class ChatLine:
    """One message of a channel's history, oldest first; ``from_agent`` marks the bot's own."""

    author: str
    content: str
    timestamp: datetime
    from_agent: bool = False
