"""Update the README's pictures: ``.venv/bin/python -m tests.browser.screenshots``.

Runs the two browser flows that take them (the dashboard flow and the 3-pane chat) with
NEONRAIN_SCREENSHOTS_DIR pointing at ``docs/screenshots``; otherwise the tests save their
screenshots in a temporary folder, so running the tests never changes tracked files. Extra
arguments go to pytest (e.g. ``-x``). Needs Debian's chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: Where the README's pictures live; the tests write there only when SCREENSHOTS_ENV says so.
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOTS_ENV = "NEONRAIN_SCREENSHOTS_DIR"

FLOWS = [
    "tests/browser/test_dashboard_flow.py::test_dashboard_flow",
    "tests/browser/test_chat.py::test_three_pane_chat_flow",
]


def main(argv: list[str] | None = None) -> int:
    os.environ[SCREENSHOTS_ENV] = str(README_SCREENSHOTS)
    code = int(pytest.main(["-q", "-p", "no:cacheprovider", *FLOWS, *(argv or [])]))
    if code == 0:
        print(f"updated: {', '.join(sorted(p.name for p in README_SCREENSHOTS.glob('*.png')))}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
