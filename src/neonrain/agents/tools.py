"""The agent tools' argument checks and result texts, the same for every engine.

A model's tool call arrives with arguments as an object or a JSON string; :func:`parse_arguments`,
:func:`required_string` and :func:`fetch_limit` turn them into checked values or raise
:class:`~neonrain.agents.sending.ToolError` with the message the model is told.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from neonrain.agents.history import join_history
from neonrain.agents.sending import FetchedMessages, ToolError

FETCH_DEFAULT_LIMIT: Final = 50
FETCH_MAX_LIMIT: Final = 100

SENT_OK: Final = "Message sent successfully"
REASON_SUPERSEDED: Final = "Superseded by newer message"
REASON_STOPPED: Final = "Stopped by user"
REASON_SHUTDOWN: Final = "Agent shutting down"

_INVALID_LIMIT: Final = "Invalid limit: expected a number from 1 to 100"


def required_string(arguments: Mapping[str, Any], name: str) -> str:
    """A non-blank string argument; ids are stripped, and numeric ids (snowflakes) accepted."""
    value = arguments.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and name.endswith("_id"):
        value = str(value)  # snowflakes sometimes arrive as numbers
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"Missing or invalid {name}")
    return value.strip() if name.endswith("_id") else value


def fetch_limit(arguments: Mapping[str, Any]) -> int:
    """``limit`` of ``fetch_channel_messages``: a whole number from 1 to 100, default 50."""
    value = arguments.get("limit")
    if value is None:
        return FETCH_DEFAULT_LIMIT
    number: float
    if isinstance(value, bool):
        raise ToolError(_INVALID_LIMIT)
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ToolError(_INVALID_LIMIT) from None
    else:
        raise ToolError(_INVALID_LIMIT)
    if number != number or not 1 <= number <= FETCH_MAX_LIMIT or number != int(number):
        raise ToolError(_INVALID_LIMIT)
    return int(number)


def parse_arguments(raw: object) -> Mapping[str, Any]:
    """A tool call's arguments as an object (models often send them as a JSON string)."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ToolError("Invalid arguments: expected an object") from None
    if not isinstance(raw, Mapping):
        raise ToolError("Invalid arguments: expected an object")
    return raw


def format_fetched(
    channel_id: str, fetched: FetchedMessages, current: tuple[str, str] | None
) -> str:
    """The result text of ``fetch_channel_messages``: the lines between a header saying they are
    for reference only and a footer naming the current channel ``(id, name)`` to answer in."""
    name = fetched.channel_name or channel_id
    lines = join_history(fetched.lines, limit=len(fetched.lines))
    header = (
        f"Recent messages from #{name} (channel {channel_id}), for reference only. "
        "Do not answer them there and do not repeat their content elsewhere."
    )
    if current is not None:
        current_id, current_name = current
        footer = (
            f"End of #{name}. If you answer, answer in the current channel "
            f"#{current_name} (channel_id {current_id})."
        )
    else:
        footer = f"End of #{name}. If you answer, answer in the current channel."
    body = lines if lines else "(no messages)\n"
    return f"{header}\n{body}{footer}"


__all__ = [
    "FETCH_DEFAULT_LIMIT",
    "FETCH_MAX_LIMIT",
    "REASON_SHUTDOWN",
    "REASON_STOPPED",
    "REASON_SUPERSEDED",
    "SENT_OK",
    "fetch_limit",
    "format_fetched",
    "parse_arguments",
    "required_string",
]
