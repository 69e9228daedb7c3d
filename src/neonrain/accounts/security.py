"""Passwords (argon2), session tokens (random secrets stored as SHA-256), CSRF tokens."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import os
import secrets
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from neonrain.crypto import derive_key, sha256_hex

T = TypeVar("T")

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash("neonrain-timing-equaliser")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Argon2 hashes and checks running at once in a process. Each takes 64 MiB and keeps a core busy;
#: unbounded, 60 concurrent sign-ups took 775 MiB and made ``/healthz`` 40 times slower, while
#: more at once than there are cores finish no sooner. The others wait their turn.
HASH_CONCURRENCY = max(1, _cores())
_hash_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def _in_hash_slot(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread once one of the :data:`HASH_CONCURRENCY` slots is free."""
    loop = asyncio.get_running_loop()
    slots = _hash_slots.get(loop)
    if slots is None:  # one per event loop: a semaphore belongs to the loop that uses it
        slots = _hash_slots[loop] = asyncio.Semaphore(HASH_CONCURRENCY)
    async with slots:
        # Not abandoned on cancellation: the slot stays taken while the thread still hashes.
        return await anyio.to_thread.run_sync(work)


async def hash_password(password: str) -> str:
    return await _in_hash_slot(functools.partial(_hasher.hash, password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; argon2 runs in a thread so the event loop stays free."""

    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await _in_hash_slot(_verify)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_session_token() -> tuple[str, str]:
    """A fresh session secret and the hash that is stored in its place."""
    token = "nrs_" + secrets.token_urlsafe(32)
    return token, sha256_hex(token)


def new_csrf_token() -> str:
    """A CSRF cookie value for a browser without a session (it authorises nothing)."""
    return secrets.token_urlsafe(24)


@functools.lru_cache(maxsize=4)
def _csrf_key(secret_key: str) -> bytes:
    return derive_key(secret_key, b"neonrain csrf v1")


def csrf_token(secret_key: str, session_token: str) -> str:
    """The CSRF token of a session: an HMAC of its token, so a token planted in a browser's
    cookie (by a sibling subdomain, say) is worthless without the session it belongs to."""
    digest = hmac.new(_csrf_key(secret_key), session_token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
