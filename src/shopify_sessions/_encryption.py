"""Encryption at rest of access and refresh tokens.

A Node app sharing the table cannot read encrypted tokens: encrypt only tables that
Python alone reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ._errors import SessionStorageError


class TokenDecryptionError(SessionStorageError):
    """A stored token could not be decrypted (unknown key id, wrong key, or tampered)."""


@runtime_checkable
class TokenCipher(Protocol):
    """Turns a token into the text stored for it, and back."""

    def encrypt(self, token: str) -> str:
        """The text to store for ``token``, under the current key."""
        ...

    def decrypt(self, stored: str) -> str:
        """The token ``stored`` holds; text that was never encrypted is returned as it is."""
        ...

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is already encrypted under the current key."""
        ...


class FernetTokenCipher:
    """Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) with key rotation.

    Args:
        keys: key id -> Fernet key (``Fernet.generate_key()``), newest first. Ids are
            short names without ``:`` (``"2026-11"``); they are stored with each value,
            so old keys keep decrypting after a new one is added.
        current: the id of the key that encrypts; defaults to the first of ``keys``.

    Stored form: ``fernet:<key id>:<token>``. Text without that prefix is a legacy
    plaintext token and is read as it is, so encryption can be turned on for a table
    that already has rows; ``reencrypt_tokens()`` of the SQL storages then rewrites them.
    """

    __slots__ = ("_current", "_fernets")

    PREFIX = "fernet:"

    def __init__(self, keys: Mapping[str, bytes | str], *, current: str | None = None) -> None:
        try:
            from cryptography.fernet import Fernet
        except ImportError as error:  # pragma: no cover - depends on the install
            raise ImportError(
                "FernetTokenCipher needs `cryptography`: pip install 'shopify-sessions[encryption]'"
            ) from error
        if not keys:
            raise ValueError("FernetTokenCipher needs at least one key")
        for key_id in keys:
            if not key_id or ":" in key_id:
                raise ValueError(f"key id {key_id!r} must be non-empty and contain no ':'")
        self._fernets: dict[str, Any] = {key_id: Fernet(key) for key_id, key in keys.items()}
        self._current = next(iter(keys)) if current is None else current
        if self._current not in self._fernets:
            raise ValueError(f"current key id {self._current!r} is not among the keys")

    def encrypt(self, token: str) -> str:
        """``fernet:<current key id>:<Fernet token of token>``."""
        encrypted = self._fernets[self._current].encrypt(token.encode("utf-8"))
        return f"{self.PREFIX}{self._current}:{encrypted.decode('ascii')}"

    def decrypt(self, stored: str) -> str:
        """The token in ``stored``; legacy plaintext comes back unchanged."""
        if not stored.startswith(self.PREFIX):
            return stored
        key_id, _, encrypted = stored[len(self.PREFIX) :].partition(":")
        fernet = self._fernets.get(key_id)
        if fernet is None:
            raise TokenDecryptionError(
                f"a token is encrypted with key id {key_id!r}, which is not configured"
            )
        try:
            return str(fernet.decrypt(encrypted.encode("ascii")).decode("utf-8"))
        except Exception as error:
            raise TokenDecryptionError(
                f"a token encrypted with key id {key_id!r} does not decrypt "
                "(wrong key, or the stored text was altered)"
            ) from error

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is encrypted under the current key."""
        return stored.startswith(f"{self.PREFIX}{self._current}:")

    def __repr__(self) -> str:
        return f"FernetTokenCipher(key_ids={list(self._fernets)!r}, current={self._current!r})"
