"""The behaviour decisions (behaviour.md) as plain functions."""

from __future__ import annotations

from typing import Any

import pytest

from neonrain.contract import ServerEntry
from neonrain.worker.behaviour import ReplyLimiter, addresses_bot, watches


def server(**fields: Any) -> ServerEntry:
    base: dict[str, Any] = {
        "server_id": "s", "guild_id": "1", "guild_name": "G", "bot_active": True,
        "bot_name": "Nova", "personality": "", "rules": "", "information": "",
    }  # fmt: skip
    return ServerEntry(**{**base, **fields})


@pytest.mark.parametrize(
    ("mode", "ids", "channel", "parent", "expected"),
    [
        ("all", (), 10, None, True),
        ("only", ("10",), 10, None, True),
        ("only", ("10",), 11, None, False),
        ("only", (), 10, None, False),  # "only" with nothing: watches nothing
        ("except", ("10",), 10, None, False),
        ("except", ("10",), 11, None, True),
        ("only", ("10",), 99, 10, True),  # a thread follows its parent
        ("except", ("10",), 99, 10, False),
        ("only", ("99",), 99, 10, False),  # the thread's own id does not count
    ],
)
def test_channel_scope(
    mode: str, ids: tuple[str, ...], channel: int, parent: int | None, expected: bool
) -> None:
    assert watches(server(channel_mode=mode, channel_ids=ids), channel, parent) is expected


@pytest.mark.parametrize(
    ("content", "mentions", "reply", "expected"),
    [
        ("<@42> can you help?", [42], False, True),
        ("thanks", [], True, True),  # a reply to one of the bot's messages
        ("hey nova, what time is it", [], False, True),  # the name as a word, any case
        ("Nova.", [], False, True),
        ("supernova explosions", [], False, False),  # inside another word
        ("novabot is cool", [], False, False),
        ("nothing for the bot", [7], False, False),
    ],
)
def test_mentioned_mode(content: str, mentions: list[int], reply: bool, expected: bool) -> None:
    found = addresses_bot(
        content=content, mentioned_ids=mentions, bot_id=42, bot_name="Nova", replies_to_bot=reply
    )
    assert found is expected


def test_replies_per_hour_over_the_server() -> None:
    config = server(max_replies_per_hour=2)
    limiter = ReplyLimiter()
    assert limiter.wait_needed(config, "a", 0.0) == 0
    limiter.delivered("a", 0.0)
    limiter.delivered("b", 100.0)
    assert limiter.wait_needed(config, "c", 200.0) == pytest.approx(3400.0)
    assert limiter.wait_needed(config, "c", 3600.0) == 0  # the first left the window


def test_seconds_between_replies_per_channel() -> None:
    config = server(min_seconds_between_replies=30)
    limiter = ReplyLimiter()
    limiter.delivered("a", 10.0)
    assert limiter.wait_needed(config, "a", 20.0) == pytest.approx(20.0)
    assert limiter.wait_needed(config, "b", 20.0) == 0
    assert limiter.wait_needed(config, "a", 40.0) == 0


def test_no_limits_by_default() -> None:
    limiter = ReplyLimiter()
    for second in range(100):
        limiter.delivered("a", float(second))
    assert limiter.wait_needed(server(), "a", 100.0) == 0
