"""Process-wide tuning shared by the long-running commands (``serve``, ``web``, ``worker``)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Moves what start-up allocated (modules, routes, mappers, connections) out of the garbage
    collector's reach: it lives as long as the process. Full collections then scan only what
    requests and messages allocate — pauses of a few milliseconds instead of 50–70 ms."""
    gc.collect()
    gc.freeze()
