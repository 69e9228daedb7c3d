"""The configuration contract's text rules."""

from __future__ import annotations

import pytest

from neonrain.contract import AgentActionBody, MessageHistory, clean_text, storable


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("plain", "plain"),
        ("nul\x00inside", "nulinside"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("emoji 🙂 stays", "emoji 🙂 stays"),
    ],
)
def test_clean_text_makes_any_discord_text_storable(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned
    assert storable(clean_text(raw)) == cleaned


def test_a_report_of_cleaned_text_is_accepted() -> None:
    body = AgentActionBody(
        user_id="u",
        guild_id="1",
        channel_id="2",
        channel_name=clean_text("gen\x00eral"),
        agent_message=clean_text("hi \ud83d"),
        trigger_description="t",
        message_history=MessageHistory(),
    )
    assert body.wire()["channelName"] == "general"
