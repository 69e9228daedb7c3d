"""Pure helpers of the runtime and the client: typing delay, message splitting, backoff."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neonrain.huma import Backoff, split_message, typing_delay
from neonrain.huma.client import _find_code, _redact


@pytest.mark.parametrize(
    ("text", "wpm", "expected"),
    [
        ("one two three", 90, 2.0),  # 3 words / 90 wpm × 60 s
        ("hi", 90, pytest.approx(0.6667, rel=1e-3)),
        ("hi", 6000, 0.5),  # clamped up
        ("word " * 1000, 90, 30.0),  # clamped down
        ("", 90, 0.5),
        ("  spaced\n\n words\tcount  ", 60, 3.0),
    ],
)
def test_typing_delay(text: str, wpm: float, expected: float) -> None:
    assert typing_delay(text, wpm) == expected


def test_short_message_is_one_chunk() -> None:
    assert split_message("  hello there  ") == ["hello there"]
    assert split_message("x" * 2000) == ["x" * 2000]


def test_split_prefers_paragraphs() -> None:
    first = "A" * 1500
    second = "B" * 1500
    assert split_message(f"{first}\n\n{second}") == [first, second]


def test_split_falls_back_to_sentences() -> None:
    sentence = "This is a sentence of moderate length. "
    text = sentence * 80  # ~3,100 characters, no newline
    chunks = split_message(text)
    assert len(chunks) == 2
    assert all(len(c) <= 2000 for c in chunks)
    assert chunks[0].endswith(".")
    assert chunks[1].startswith("This is")


def test_split_cuts_a_giant_word_hard() -> None:
    chunks = split_message("y" * 4500)
    assert [len(c) for c in chunks] == [2000, 2000, 500]


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("abc .!?\n\t")) | st.characters(codec="utf-8"),
        max_size=700,
    ),
    st.integers(min_value=5, max_value=120),
)
def test_split_properties(text: str, limit: int) -> None:
    chunks = split_message(text, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    assert all(c == c.strip() for c in chunks)
    # nothing but whitespace is lost or added
    assert "".join("".join(chunks).split()) == "".join(text.split())


def test_backoff_doubles_to_eight_with_jitter() -> None:
    """Eight seconds at most by default: an agent is back within 10 s of HUMA's return."""
    no_jitter = Backoff(rng=lambda: 0.0)
    assert [no_jitter.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    longer = Backoff(maximum=60.0, rng=lambda: 0.0)
    assert [longer.next_delay() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    no_jitter.reset()
    assert no_jitter.next_delay() == 1
    full = Backoff(rng=lambda: 1.0)
    assert [round(full.next_delay(), 3) for _ in range(3)] == [0.8, 1.6, 3.2]
    values = itertools.cycle([0.1, 0.9, 0.5])
    jittered = Backoff(rng=lambda: next(values))
    delays = [jittered.next_delay() for _ in range(12)]
    assert all(d <= 8 for d in delays)
    assert len(set(delays)) > 3


def test_refusal_codes_are_found_wherever_they_are() -> None:
    assert _find_code({"message": "x", "data": {"code": "AGENT_NOT_FOUND"}}) == "AGENT_NOT_FOUND"
    assert _find_code({"message": "UNAUTHORIZED"}) == "UNAUTHORIZED"
    assert _find_code(["Agent expired: AGENT_EXPIRED"]) == "AGENT_EXPIRED"
    assert _find_code({"message": "busy"}) is None


def test_redact_hides_plain_and_url_encoded_keys() -> None:
    assert _redact("ws://h/?apiKey=a+b/c&x=1", "a+b/c") == "ws://h/?apiKey=***&x=1"
    assert _redact("apiKey=a%2Bb%2Fc", "a+b/c") == "apiKey=***"
