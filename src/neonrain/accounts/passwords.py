"""What a new password must not be, beyond its length (10–256 characters, in ``schemas.py``):
one of the 10,000 most common passwords, or nothing but whitespace.

The list ships with the package (``common-passwords.txt.gz``, ~40 KB; its origin and licence are in
``common-passwords.NOTICE``) and is read on first use. It is compared after lower-casing and
trimming, so ``Password123 `` counts as ``password123``.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources

COMMON_PASSWORDS_FILE = "common-passwords.txt.gz"


@functools.cache
def common_passwords() -> frozenset[str]:
    data = resources.files("neonrain.accounts").joinpath(COMMON_PASSWORDS_FILE).read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split("\n")) - {""}


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be chosen, as a sentence, or None."""
    if not password.strip():
        return "The password must not be only spaces."
    if password.strip().lower() in common_passwords():
        return (
            "This password is one of the 10,000 most common ones and would be guessed quickly; "
            "choose another."
        )
    return None
