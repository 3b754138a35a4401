"""Encryption at rest of access and refresh tokens.

A Node app sharing the table cannot read encrypted tokens: encrypt only tables that
Python alone reads.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ._errors import SessionStorageError

#: What a key id an error message may show looks like (anything else may be planted text).
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")


class TokenDecryptionError(SessionStorageError):
    """A stored token could not be decrypted (unknown key id, wrong key, or tampered)."""


@runtime_checkable
class TokenCipher(Protocol):
    """Turns a token into the text stored for it, and back."""

    def encrypt(self, token: str) -> str:
        """The text to store for ``token``, under the current key."""
        ...

    def decrypt(self, stored: str) -> str:
        """The token ``stored`` holds.

        Raises :class:`TokenDecryptionError` for text that does not decrypt, including text
        that is not in the cipher's form at all (altered, or planted in plaintext), unless
        the cipher was told to read legacy plaintext tokens.
        """
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
        read_plaintext_tokens: also read stored text that is not in the cipher's form as a
            legacy plaintext token (off by default). Turn it on only for the time between
            turning encryption on for a table that already has rows and
            ``reencrypt_tokens()`` (or ``shopify-sessions reencrypt``, which turns it on
            itself) having rewritten them, then off again: while it is on, whoever can write
            the table can plant a token of their choosing. Even then, text holding a ``:``
            (which no Shopify token does, and every encrypted value does) is refused, so an
            altered encrypted value never reads as a token.

    Stored form: ``fernet:<key id>:<token>``. Any other stored text raises
    :class:`TokenDecryptionError` (it was altered, or written in plaintext by someone who
    should not have), unless ``read_plaintext_tokens`` is on.
    """

    __slots__ = ("_current", "_fernets", "_read_plaintext")

    PREFIX = "fernet:"

    def __init__(
        self,
        keys: Mapping[str, bytes | str],
        *,
        current: str | None = None,
        read_plaintext_tokens: bool = False,
    ) -> None:
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
        self._read_plaintext = bool(read_plaintext_tokens)

    @property
    def reads_plaintext_tokens(self) -> bool:
        """Whether stored text not in the cipher's form is read as a legacy plaintext token."""
        return self._read_plaintext

    def encrypt(self, token: str) -> str:
        """``fernet:<current key id>:<Fernet token of token>``."""
        encrypted = self._fernets[self._current].encrypt(token.encode("utf-8"))
        return f"{self.PREFIX}{self._current}:{encrypted.decode('ascii')}"

    def decrypt(self, stored: str) -> str:
        """The token in ``stored``.

        Raises:
            TokenDecryptionError: ``stored`` names a key id that is not configured, does not
                decrypt (wrong key, altered text), or is not in the cipher's form at all;
                with ``read_plaintext_tokens``, text without ``:`` is returned unchanged.
        """
        if not stored.startswith(self.PREFIX):
            if self._read_plaintext and ":" not in stored:
                return stored
            # The message never shows the text: it may be a token, altered or not.
            raise TokenDecryptionError(
                "a stored token is not in the cipher's form (fernet:<key id>:...): it was "
                "altered, or written in plaintext; a table that still has tokens from before "
                "encryption was turned on is read with "
                "FernetTokenCipher(..., read_plaintext_tokens=True) until reencrypt_tokens() "
                "has rewritten them"
            )
        key_id, _, encrypted = stored[len(self.PREFIX) :].partition(":")
        fernet = self._fernets.get(key_id)
        if fernet is None:
            # An id of the usual form is shown; anything else may be planted text.
            shown = repr(key_id) if _KEY_ID.fullmatch(key_id) else "that is no key id"
            raise TokenDecryptionError(
                f"a token is encrypted with key id {shown}, which is not configured"
            )
        try:
            # Fernet's base64 decoding drops characters that aren't base64 and ignores the
            # spare bits of the last one: text altered there would still decrypt. Only the
            # canonical encoding of its bytes is taken, so that any altered character fails.
            raw = base64.urlsafe_b64decode(encrypted.encode("ascii"))
            if base64.urlsafe_b64encode(raw).decode("ascii") != encrypted:
                raise ValueError("not the canonical base64 of its bytes")
            token = fernet.decrypt(encrypted)
        except Exception as error:
            raise TokenDecryptionError(
                f"a token encrypted with key id {key_id!r} does not decrypt "
                "(wrong key, or the stored text was altered)"
            ) from error
        try:
            return str(token.decode("utf-8"))
        except UnicodeDecodeError:
            # Not chained: the error would hold the decrypted bytes.
            raise TokenDecryptionError(
                f"a token encrypted with key id {key_id!r} decrypts to bytes that are not UTF-8"
            ) from None

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is encrypted under the current key."""
        return stored.startswith(f"{self.PREFIX}{self._current}:")

    def __repr__(self) -> str:
        plaintext = ", read_plaintext_tokens=True" if self._read_plaintext else ""
        return (
            f"FernetTokenCipher(key_ids={list(self._fernets)!r}, "
            f"current={self._current!r}{plaintext})"
        )
