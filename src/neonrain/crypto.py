"""Encryption of Discord tokens at rest (Fernet, key derived from the secret key)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class TokenDecryptionError(Exception):
    """The stored ciphertext was not made with this secret key (it changed?)."""


class TokenCipher:
    #: Decrypted tokens kept per ciphertext: a full worker answer decrypts every account's token,
    #: and Fernet's check and decryption were a third of its cost. (The process holds the key
    #: anyway, so keeping plaintexts it already produced adds no exposure.)
    CACHE_SIZE = 50_000

    def __init__(self, secret_key: str) -> None:
        derived = derive_key(secret_key, b"neonrain discord-token v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._decrypted: dict[str, str] = {}

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        plaintext = self._decrypted.get(ciphertext)
        if plaintext is not None:
            return plaintext
        try:
            plaintext = self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenDecryptionError("stored token cannot be decrypted with this key") from exc
        if len(self._decrypted) >= self.CACHE_SIZE:
            self._decrypted.clear()
        self._decrypted[ciphertext] = plaintext
        return plaintext


def derive_key(secret_key: str, purpose: bytes) -> bytes:
    """A 32-byte key for one ``purpose``, derived from the secret key (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode()
    )


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
