"""Discord tokens at rest: round trip, wrong keys refused, decryptions kept per ciphertext."""

from __future__ import annotations

import pytest

from neonrain.crypto import TokenCipher, TokenDecryptionError


def test_round_trip_and_a_different_key_is_refused() -> None:
    cipher = TokenCipher("one key")
    stored = cipher.encrypt("bot-token")
    assert stored != "bot-token"
    assert cipher.decrypt(stored) == "bot-token"
    with pytest.raises(TokenDecryptionError):
        TokenCipher("another key").decrypt(stored)
    with pytest.raises(TokenDecryptionError):
        cipher.decrypt("not a ciphertext")


def test_decryptions_are_kept_and_the_cache_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(TokenCipher, "CACHE_SIZE", 3)
    cipher = TokenCipher("key")
    stored = [cipher.encrypt(f"token-{n}") for n in range(5)]
    calls: list[bytes] = []
    fernet_decrypt = cipher._fernet.decrypt

    def counting(token: bytes) -> bytes:
        calls.append(token)
        return fernet_decrypt(token)

    monkeypatch.setattr(cipher._fernet, "decrypt", counting)
    assert cipher.decrypt(stored[0]) == "token-0"
    assert cipher.decrypt(stored[0]) == "token-0"
    assert len(calls) == 1
    assert [cipher.decrypt(s) for s in stored] == [f"token-{n}" for n in range(5)]
    assert len(cipher._decrypted) <= 3
    with pytest.raises(TokenDecryptionError):  # failures are never cached as successes
        cipher.decrypt("garbage")
    with pytest.raises(TokenDecryptionError):
        cipher.decrypt("garbage")
