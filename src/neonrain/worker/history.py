"""The last 50 messages of every channel the worker has seen, for the agent's context."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from neonrain.contract import AUTHOR_NAME_MAX, MESSAGE_TEXT_MAX, HistoryMessage
from neonrain.huma.prompt import format_history_line

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

    def __len__(self) -> int:
        return len(self._entries)
