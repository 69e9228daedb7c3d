"""A channel's history: Discord's order, no duplicates, the newest 50 kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from neonrain.worker.history import ChannelHistory, Entry

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def entry(message_id: int, text: str = "") -> Entry:
    return Entry(
        id=message_id,
        author="ana",
        author_id="7",
        content=text or f"message {message_id}",
        timestamp=EPOCH + timedelta(seconds=message_id),
    )


def ids(history: ChannelHistory) -> list[int]:
    return [e.id for e in history.entries()]


def test_keeps_the_newest_and_forgets_what_fell_out() -> None:
    history = ChannelHistory(limit=3)
    for message_id in (1, 2, 3, 4):
        assert history.add(entry(message_id))
    assert ids(history) == [2, 3, 4]
    assert not history.add(entry(3))  # still there: a duplicate
    history.add(entry(1))  # fell out: older than everything kept, so it stays out
    assert ids(history) == [2, 3, 4]
    assert history.add(entry(5))
    assert ids(history) == [3, 4, 5]
    assert not history.add(entry(5))


def test_out_of_order_messages_take_their_place() -> None:
    history = ChannelHistory(limit=5)
    history.extend([entry(1), entry(4)])
    assert history.add(entry(3))
    assert history.add(entry(2))
    assert not history.add(entry(3))
    assert ids(history) == [1, 2, 3, 4]


def test_lines_are_the_newest_formatted_once() -> None:
    history = ChannelHistory()
    for message_id in range(1, 8):
        history.add(entry(message_id))
    lines = history.lines()
    assert len(lines) == 7 and lines[-1].endswith("ana: message 7\n")
    assert history.lines(limit=2) == lines[-2:]
    assert history.lines(limit=50) == lines
    assert history.lines()[0] is lines[0]  # the same string, not formatted again
