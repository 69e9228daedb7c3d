"""Keeping API keys out of logs and error texts."""

from __future__ import annotations

from urllib.parse import quote


def redact(text: str, secret: str | None) -> str:
    """``text`` with the secret (and its URL-encoded form) replaced, for logs and exceptions."""
    if not secret:
        return text
    for form in {secret, quote(secret, safe="")}:
        text = text.replace(form, "***")
    return text
