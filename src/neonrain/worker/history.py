"""The last 50 messages of every channel the worker has seen, for the agent's context."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from neonrain.agents.history import ChatLine, format_history_line
from neonrain.contract import AUTHOR_NAME_MAX, MESSAGE_TEXT_MAX, HistoryMessage

HISTORY_PER_CHANNEL = 50


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    author: str
    author_id: str
    content: str
    timestamp: datetime
    # Formatted once: every context update resends up to 50 lines of the channel.
    _line: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        line = format_history_line(self.timestamp, self.author, self.content)
        object.__setattr__(self, "_line", line)

    def line(self) -> str:
        return self._line

    def chat_line(self, bot_user_id: int | None) -> ChatLine:
        """The entry for an OpenAI-compatible model: the bot's own messages are its own."""
        return ChatLine(
            author=self.author,
            content=self.content,
            timestamp=self.timestamp,
            from_agent=bot_user_id is not None and self.author_id == str(bot_user_id),
        )

    def as_action_message(self) -> HistoryMessage:
        return HistoryMessage(
            author=self.author[:AUTHOR_NAME_MAX],
            author_id=self.author_id,
            content=self.content[:MESSAGE_TEXT_MAX],
            timestamp=self.timestamp.isoformat(),
        )


class ChannelHistory:
    """Messages of one channel in Discord's order (snowflake ids grow with time), de-duplicated."""

    def __init__(self, limit: int = HISTORY_PER_CHANNEL) -> None:
        self._entries: deque[Entry] = deque(maxlen=limit)
        self._ids: set[int] = set()
        self.loaded = False

    def add(self, entry: Entry) -> bool:
        """Add a message; False when it was already there."""
        if entry.id in self._ids:
            return False
        if self._entries and entry.id < self._entries[-1].id:
            # Out of order (a loaded page racing a live event): put it in its place.
            ordered = sorted([*self._entries, entry], key=lambda e: e.id)
            self._entries.clear()
            self._entries.extend(ordered)  # the deque keeps the newest ``limit``
            self._ids = {e.id for e in self._entries}
            return True
        if len(self._entries) == self._entries.maxlen:
            self._ids.discard(self._entries[0].id)  # the append below pushes it out
        self._entries.append(entry)
        self._ids.add(entry.id)
        return True

    def extend(self, entries: Iterable[Entry]) -> None:
        for entry in sorted(entries, key=lambda e: e.id):
            self.add(entry)

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def lines(self, limit: int | None = None) -> list[str]:
        entries = self._entries
        if limit is not None and limit < len(entries):
            return [entries[i].line() for i in range(len(entries) - limit, len(entries))]
        return [e.line() for e in entries]

    def rename(self, author_id: str, author: str) -> None:
        """Show every message of ``author_id`` under ``author`` (a person's server nickname
        changed; rare, so the lines are formatted anew here rather than at every read)."""
        if not any(e.author_id == author_id and e.author != author for e in self._entries):
            return
        renamed = [
            replace(e, author=author) if e.author_id == author_id else e for e in self._entries
        ]
        self._entries.clear()
        self._entries.extend(renamed)

    def newest_id(self) -> int | None:
        return self._entries[-1].id if self._entries else None

    def get(self, message_id: int) -> Entry | None:
        if message_id not in self._ids:
            return None
        return next((e for e in self._entries if e.id == message_id), None)

    def __len__(self) -> int:
        return len(self._entries)
