"""Everything the Redis storages decide without I/O: the keys of the Node adapter's layout,
the value of a session, and what a value read back means.

The layout is ``@shopify/shopify-app-session-storage-redis``'s: a session under
``<prefix>_<id>``, holding ``JSON.stringify(session.toPropertyArray(true))``; the shop
index under ``<prefix>_<shop>``, a JSON array of session keys; the Node adapter's
migration record under ``<prefix>_migrations``. Locks are keys of our own,
``<prefix>:lock:<id>``, which a Node app never reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from redis.crc import key_slot

from .._encryption import TokenCipher
from .._errors import InvalidSessionError, SessionDataError
from .._session import PropertyValue, Session
from .._storage import (
    InvalidEntryHandler,
    check_id,
    check_session,
    check_shop,
    holds_tokens,
    session_order,
)
from .._time import to_epoch_ms

DEFAULT_KEY_PREFIX = "shopify_sessions"
"""The default key prefix, the Node Redis adapter's default ``sessionKeyPrefix``."""

#: The name of the Node adapter's migration record, and what it holds once its one
#: migration ran (``JSON.stringify(Object.fromEntries(migrations))``): a Node app that
#: finds it runs no migration over the keys Python wrote.
MIGRATIONS_NAME = "migrations"
MIGRATIONS_DONE = '{"migrateToVersion1_0_1":true}'

_TOKEN_KEYS = ("accessToken", "refreshToken")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(raw: str | bytes) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def to_json(value: object) -> str:
    """``value`` as JavaScript's ``JSON.stringify`` writes it (no spaces, no ASCII escaping;
    a lone surrogate escaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        text = _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text


@dataclass(frozen=True, slots=True)
class Stored:
    """A session value as read back: the session, and the text it was read from."""

    session: Session
    raw: str


class RedisCore:
    """The keys and values of one key prefix, with an optional token cipher."""

    __slots__ = (
        "_cipher",
        "_expire_online",
        "_lock_prefix",
        "_pattern",
        "_prefix",
        "migrations_key",
    )

    def __init__(
        self, prefix: str, cipher: TokenCipher | None, expire_online_sessions: bool
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"key_prefix must be a non-empty str, not {prefix!r}")
        if cipher is not None and not isinstance(cipher, TokenCipher):
            raise TypeError(f"token_cipher must be a TokenCipher, not {cipher!r}")
        self._prefix = f"{prefix}_"
        self._lock_prefix = f"{prefix}:lock:"
        self._pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._prefix) + "*"
        self._cipher = cipher
        self._expire_online = bool(expire_online_sessions)
        self.migrations_key = self._prefix + MIGRATIONS_NAME

    @property
    def prefix(self) -> str:
        """The key prefix, without its ``_``."""
        return self._prefix[:-1]

    @property
    def pattern(self) -> str:
        """The ``SCAN MATCH`` pattern of every key of the layout."""
        return self._pattern

    def session_key(self, id: str) -> str:
        """The key of session ``id``; refuses the id the Node layout keeps for itself."""
        if check_id(id) == MIGRATIONS_NAME:
            raise InvalidSessionError(
                f"the session id {MIGRATIONS_NAME!r} is the Node Redis layout's migration record"
            )
        return self._prefix + id

    def index_key(self, shop: str) -> str:
        """The key of ``shop``'s index."""
        if check_shop(shop) == MIGRATIONS_NAME:
            raise InvalidSessionError(
                f"the shop {MIGRATIONS_NAME!r} is the Node Redis layout's migration record"
            )
        return self._prefix + shop

    def lock_key(self, id: str) -> str:
        """The key of session ``id``'s lock (ours; no Node key has this shape)."""
        return self._lock_prefix + check_id(id)

    def store_arguments(self, session: Session) -> tuple[str, list[str]]:
        """``STORE``'s key and arguments for ``session``."""
        session = check_session(session)
        key = self.session_key(session.id)
        self.index_key(session.shop)
        return key, [self.value(session), self.expiry(session), to_json(["shop", session.shop])]

    def stored_answer(self, answer: Sequence[object]) -> tuple[str | None, bool]:
        """``STORE``'s answer: the value it replaced (None if none), and whether that was a
        session of another shop (whose list must let go of the key)."""
        old, moved = answer[0], answer[1]
        if not isinstance(old, (str, bytes)) or not old:
            return None, False
        return _text(old), bool(moved)

    def value(self, session: Session) -> str:
        """What the key of ``session`` holds: its property array with user data, as JSON."""
        pairs = session.to_property_array(True)
        if self._cipher is not None:
            pairs = [self._encrypted(pair) for pair in pairs]
        return to_json(pairs)

    def _encrypted(self, pair: tuple[str, PropertyValue]) -> tuple[str, PropertyValue]:
        key, value = pair
        if key in _TOKEN_KEYS and isinstance(value, str) and value:
            assert self._cipher is not None
            return key, self._cipher.encrypt(value)
        return pair

    def expiry(self, session: Session) -> str:
        """``PXAT`` of the session's key: its expiry for an online session when asked, else ''."""
        if self._expire_online and session.is_online and session.expires is not None:
            return str(to_epoch_ms(session.expires))
        return ""

    def index_arguments(self, session_key: str) -> list[str]:
        """``INDEX_ADD``'s arguments: the key, and the key as a JSON string."""
        return [session_key, to_json(session_key)]

    def read(self, key: str, raw: str | bytes) -> Stored:
        """The session ``key`` holds; :class:`SessionDataError` if it holds anything else."""
        text = _text(raw)
        try:
            entries = json.loads(text)
        except ValueError as error:
            raise SessionDataError(f"{key} holds text that is not JSON") from error
        if not isinstance(entries, list) or not entries or not isinstance(entries[0], list):
            kind = "a shop index" if isinstance(entries, list) else "no property array"
            if isinstance(entries, dict):
                kind = "a record of the Node adapter (its migrations?)"
            raise SessionDataError(f"{key} holds {kind}, not a session")
        try:
            session = Session.from_property_array(entries, True)
        except InvalidSessionError as error:
            raise SessionDataError(f"{key} holds no valid session: {error}") from error
        if self._prefix + session.id != key:
            raise SessionDataError(f"{key} holds the session of another id, {session.id!r}")
        if self._cipher is not None:
            if session.access_token:
                session.access_token = self._cipher.decrypt(session.access_token)
            if session.refresh_token:
                session.refresh_token = self._cipher.decrypt(session.refresh_token)
        return Stored(session, text)

    def shop_of(self, key: str, raw: str | bytes) -> str:
        """The shop of the session value ``raw`` (read without decrypting its tokens)."""
        text = _text(raw)
        try:
            entries = json.loads(text)
            for name, value in entries:
                if isinstance(name, str) and name.lower() == "shop" and isinstance(value, str):
                    return value
        except (ValueError, TypeError) as error:
            raise SessionDataError(f"{key} holds no valid session") from error
        raise SessionDataError(f"{key} holds a session without a shop")

    def index_entries(self, key: str, raw: str | bytes | None) -> list[str]:
        """The session keys of the shop index ``raw`` (none when it is absent)."""
        if raw is None:
            return []
        text = _text(raw)
        try:
            entries = json.loads(text)
        except ValueError as error:
            raise SessionDataError(f"{key} holds text that is not JSON") from error
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise SessionDataError(f"{key} holds no shop index")
        return entries

    def is_session_value(self, raw: str | bytes) -> bool:
        """Whether a value is a session's (not a shop list or a record)."""
        return raw[:2] in ("[[", b"[[")

    def scanned(self, key: str, raw: object) -> Stored | None:
        """The session of a key a scan found, or None for a value that is no session of
        this prefix: a shop list, a record, another type, or the session of a longer
        prefix that this one's pattern also matches (``a_b_x`` under ``a``)."""
        if not isinstance(raw, (str, bytes)) or not self.is_session_value(raw):
            return None
        try:
            return self.read(key, raw)
        except SessionDataError:
            if self._holds_other_id(key, raw):
                return None
            raise

    def _holds_other_id(self, key: str, raw: str | bytes) -> bool:
        try:
            ids = [v for k, v in json.loads(raw) if isinstance(k, str) and k.lower() == "id"]
        except (ValueError, TypeError):
            return False
        return bool(ids) and self._prefix + str(ids[0]) != key

    def holds_tokens(self, stored: Stored, session: Session) -> bool:
        """Whether the stored session holds ``session``'s tokens."""
        return holds_tokens(stored.session.access_token, stored.session.refresh_token, session)

    def reencrypt_check(self) -> None:
        """Refuse to re-encrypt without a cipher."""
        if self._cipher is None:
            raise InvalidSessionError("reencrypt_tokens needs a storage with a token_cipher")

    def reencrypted(self, stored: Stored) -> str | None:
        """The value of ``stored`` with its tokens under the current key, or None if they are."""
        self.reencrypt_check()
        assert self._cipher is not None
        current = self._cipher.is_current
        entries = json.loads(stored.raw)
        if all(current(value) for name, value in entries if name in _TOKEN_KEYS and value):
            return None
        return self.value(stored.session)

    def listed_by_shop(
        self, keys: Sequence[str], olds: Sequence[str | bytes | None]
    ) -> dict[str, list[str]]:
        """The keys whose value a write replaced or deleted (``olds``, ``None`` where the
        key was absent), by the shop whose list named them."""
        listed: dict[str, list[str]] = {}
        for key, old in zip(keys, olds, strict=True):
            if old is not None:
                listed.setdefault(self.shop_of(key, old), []).append(key)
        return listed

    def shop_sessions(
        self, shop: str, keys: Sequence[str], values: Sequence[str | bytes | None]
    ) -> tuple[list[Session], list[str]]:
        """The sessions of ``shop``'s list, read back, in
        :func:`~shopify_sessions.session_order`; and the list's stale keys (gone, or
        holding a session of another shop)."""
        found, stale = [], []
        for key, value in zip(keys, values, strict=True):
            session = None if value is None else self.read(key, value).session
            if session is None or session.shop != shop:
                stale.append(key)
            else:
                found.append(session)
        return sorted(found, key=session_order), stale

    def scanned_batch(
        self,
        keys: Sequence[str],
        values: Sequence[object],
        on_invalid: InvalidEntryHandler | None = None,
    ) -> list[Stored]:
        """The sessions among scanned keys' values (see :meth:`scanned`). A key that holds
        no session raises :class:`SessionDataError`, or with ``on_invalid`` is handed to
        it and left out."""
        if on_invalid is None:
            found = (self.scanned(key, value) for key, value in zip(keys, values, strict=True))
            return [stored for stored in found if stored is not None]
        batch = []
        for key, value in zip(keys, values, strict=True):
            try:
                stored = self.scanned(key, value)
            except SessionDataError as error:
                on_invalid(key, error)
                continue
            if stored is not None:
                batch.append(stored)
        return batch

    def relisted(
        self, unlisted: Sequence[tuple[str, str]], values: Sequence[object]
    ) -> list[tuple[str, str]]:
        """The ``(shop, key)`` pairs taken off a list whose key a store wrote back
        meanwhile (``values``: what the keys hold now): they belong on the list again."""
        return [
            (shop, key)
            for (shop, key), value in zip(unlisted, values, strict=True)
            if isinstance(value, (str, bytes))
            and self.is_session_value(value)
            and self.shop_of(key, value) == shop
        ]

    def sorted_keys(self, keys: Sequence[str | bytes]) -> list[str]:
        """Scanned keys, without duplicates and the migration record, in id order."""
        names = {_text(k) for k in keys}
        names.discard(self.migrations_key)
        return sorted(names)


def same_slot(key: str, other: str) -> bool:
    """Whether two keys hash to one Redis Cluster slot (so one script may touch both)."""
    return key_slot(key.encode()) == key_slot(other.encode())


def is_own_lock(held: str | bytes | None, token: str) -> bool:
    """Whether ``SET NX GET``'s answer ``held`` (what the lock key held before) means the
    lock is ``token``'s now: it was free, or already ours (a try whose answer was lost)."""
    return held is None or held in (token, token.encode())
