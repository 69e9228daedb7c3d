"""A fake HUMA server (REST + Socket.IO) and a manual clock, for tests and local runs.

Run it standalone: ``python -m tests.fakes.fake_huma --port 8765 --api-key dev --echo``.
"""

from tests.fakes.fake_huma.clock import ManualClock
from tests.fakes.fake_huma.server import (
    ConnectionAttempt,
    FakeAgent,
    FakeHuma,
    ReceivedEvent,
    RestRequest,
    Rule,
    last_message_text,
)

__all__ = [
    "ConnectionAttempt",
    "FakeAgent",
    "FakeHuma",
    "ManualClock",
    "ReceivedEvent",
    "RestRequest",
    "Rule",
    "last_message_text",
]
