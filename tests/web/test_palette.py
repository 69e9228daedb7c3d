"""Persona colours read as name text on the chat pane (WCAG AA, 4.5:1), and the chart's and
cards' counts are in the right number."""

from __future__ import annotations

import re
from pathlib import Path

from neonrain.chat.service import PALETTE
from neonrain.web import views

STATIC = Path(views.__file__).parent / "static"


def luminance(color: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def css_variable(name: str) -> str:
    match = re.search(rf"--{name}:\s*(#[0-9a-f]{{6}})", (STATIC / "neonrain.css").read_text())
    assert match, name
    return match.group(1)


def test_contrast_formula_matches_known_values() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#eb459e", "#2b2d31"), 2) == 3.86  # the old pink, as axe measured


def test_palette_is_ten_distinct_colours_readable_on_the_pane() -> None:
    pane = css_variable("panel")
    assert pane == "#2b2d31"
    chat_js = (STATIC / "js" / "chat.js").read_text()
    assert f'PANE_BACKGROUND = "{pane}"' in chat_js  # what chat.js lightens custom colours to
    assert len(PALETTE) == 10 and len(set(PALETTE)) == 10
    for color in PALETTE:
        assert re.fullmatch(r"#[0-9a-f]{6}", color), color
        assert contrast(color, pane) >= 4.5, (color, round(contrast(color, pane), 2))
    # The names of the account itself and of the agent too.
    for name in ("OWN_COLOR", "BOT_COLOR"):
        match = re.search(rf'const {name} = "(#[0-9a-f]{{6}})"', chat_js)
        assert match, name
        assert contrast(match.group(1), pane) >= 4.5, name


def test_counts_are_in_the_right_number() -> None:
    assert views.plural(1, "message") == "1 message"
    assert views.plural(0, "message") == "0 messages"
    assert views.plural(1204, "website") == "1,204 websites"
    one = views.daily_chart([("2025-01-01", 0, 0), ("2025-01-02", 1, 1)])
    assert "1 message received and 1 sent" in one.summary
    assert "1 messages" not in one.summary
    many = views.daily_chart([("2025-01-01", 3, 0), ("2025-01-02", 1, 1)])
    assert "4 messages received" in many.summary
