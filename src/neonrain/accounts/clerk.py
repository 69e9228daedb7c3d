"""Verifying Clerk session tokens (RS256 JWTs) against the configured JWKS."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import jwt

log = logging.getLogger(__name__)


class ClerkVerifier:
    def __init__(self, jwks_url: str, issuer: str | None, timeout: float = 5.0) -> None:
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=600, timeout=int(timeout))
        self._issuer = issuer

    async def verify(self, token: str) -> str | None:
        """The Clerk user id (``sub``) of a valid token, or None."""
        try:
            claims = await anyio.to_thread.run_sync(self._decode, token)
        except jwt.PyJWKClientError as exc:
            log.warning("Clerk JWKS unavailable or key unknown: %s", exc)
            return None
        except jwt.PyJWTError as exc:
            log.info("Clerk token refused: %s", exc)
            return None
        subject = claims.get("sub")
        return subject if isinstance(subject, str) and subject else None

    def _decode(self, token: str) -> dict[str, Any]:
        key = self._jwks.get_signing_key_from_jwt(token)
        options = {"require": ["exp", "sub"] + (["iss"] if self._issuer else [])}
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            issuer=self._issuer,
            options=options,  # type: ignore[arg-type]
            leeway=5,
        )
        return claims


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")
