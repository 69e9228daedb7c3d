"""Why a message got no answer, logged at INFO so that an operator can see it — but once per
reason and channel per minute, so a busy channel does not flood the log (ids only, never texts)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("neonrain.worker.no_answer")

REPEAT_SECONDS = 60.0
MAX_KEYS = 10_000


class NoAnswerLog:
    """``note(reason, ...)`` logs ``message not answered: <reason>`` with ids; repeats of the same
    reason in the same channel within a minute go to DEBUG."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}

    def note(self, reason: str, *, channel: str, **ids: object) -> None:
        now = self._clock()
        key = (reason, channel)
        last = self._last.get(key)
        fields = " ".join(f"{name}={value}" for name, value in ids.items())
        if last is not None and now - last < REPEAT_SECONDS:
            log.debug("message not answered: %s channel=%s %s", reason, channel, fields)
            return
        if len(self._last) >= MAX_KEYS:
            self._last.clear()
        self._last[key] = now
        log.info("message not answered: %s channel=%s %s", reason, channel, fields)
