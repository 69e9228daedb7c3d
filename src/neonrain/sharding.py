"""The one stable mapping of accounts onto worker shards.

The web app (``GET /api/discord/tokens?shard=&shards=``) and the worker (``--shard I/N``) must agree
on it across processes, machines and Python versions, so it is a CRC-32 of the user id, never
Python's randomised ``hash()``.
"""

from __future__ import annotations

import zlib

MAX_SHARDS = 1024


def shard_of(user_id: str, shards: int) -> int:
    """The shard (``0 <= shard < shards``) that serves ``user_id``."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    return zlib.crc32(user_id.encode("utf-8")) % shards


def in_shard(user_id: str, shard: int, shards: int) -> bool:
    return shard_of(user_id, shards) == shard
