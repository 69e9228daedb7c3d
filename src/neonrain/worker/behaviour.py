"""Where and when the bot speaks (``behaviour.md``): the decisions, as plain functions and one
small limiter, so the message pipeline only asks them.

* :func:`watches` — is a channel (or a thread, through its parent) in the server's channel scope;
* :func:`addresses_bot` — does a message ask for the bot in ``mentioned`` mode;
* :class:`ReplyLimiter` — ``maxRepliesPerHour`` over the server and ``minSecondsBetweenReplies``
  per channel, counting delivered messages only.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from neonrain.contract import ServerEntry

HOUR_SECONDS = 3600.0


def watches(server: ServerEntry, channel_id: int, parent_id: int | None = None) -> bool:
    """Whether the server's channel scope covers ``channel_id``; a thread (or forum post) is
    watched exactly when its parent channel is (pass the parent's id)."""
    if server.channel_mode == "all":
        return True
    scoped = str(parent_id if parent_id is not None else channel_id)
    listed = scoped in _as_set(server.channel_ids)
    return listed if server.channel_mode == "only" else not listed


@lru_cache(maxsize=4096)
def _as_set(channel_ids: tuple[str, ...]) -> frozenset[str]:
    return frozenset(channel_ids)


@lru_cache(maxsize=1024)
def _name_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(name.strip())}(?!\w)", re.IGNORECASE)


def addresses_bot(
    *,
    content: str,
    mentioned_ids: Iterable[int],
    bot_id: int | None,
    bot_name: str,
    replies_to_bot: bool,
) -> bool:
    """``mentioned`` mode: the message mentions the bot (``<@id>``/``<@!id>``), replies to one of
    its messages, or contains the server's bot name as a whole word (case-insensitive)."""
    if replies_to_bot:
        return True
    if bot_id is not None and bot_id in set(mentioned_ids):
        return True
    return bool(bot_name.strip()) and _name_pattern(bot_name).search(content) is not None


@dataclass
class ReplyLimiter:
    """The reply limits of one server configuration, over the messages actually delivered."""

    sent_at: deque[float] = field(default_factory=deque)
    last_in_channel: dict[str, float] = field(default_factory=dict)

    def wait_needed(self, server: ServerEntry, channel_id: str, now: float) -> float:
        """Seconds until a message may be posted in ``channel_id`` (0: now)."""
        wait = 0.0
        if server.max_replies_per_hour > 0:
            while self.sent_at and now - self.sent_at[0] >= HOUR_SECONDS:
                self.sent_at.popleft()
            if len(self.sent_at) >= server.max_replies_per_hour:
                oldest = self.sent_at[len(self.sent_at) - server.max_replies_per_hour]
                wait = max(wait, oldest + HOUR_SECONDS - now)
        gap = server.min_seconds_between_replies
        last = self.last_in_channel.get(channel_id)
        if gap > 0 and last is not None:
            wait = max(wait, last + gap - now)
        return max(wait, 0.0)

    def delivered(self, channel_id: str, now: float) -> None:
        self.sent_at.append(now)
        self.last_in_channel[channel_id] = now
        if len(self.sent_at) > 1000:  # the limit's maximum: older entries never matter
            self.sent_at.popleft()
