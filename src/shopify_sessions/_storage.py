from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import datetime, timedelta
from typing import Protocol, TypeAlias, runtime_checkable

from ._errors import InvalidSessionError, SessionDataError
from ._session import Session
from ._time import as_utc, utc_now

InvalidEntryHandler: TypeAlias = Callable[[str, SessionDataError], object]
"""What a walk over every session (``sessions``, ``delete_expired_sessions``) calls, as
``on_invalid``, with the id (or Redis key) of an entry that holds no session and the error
reading it raised: the walk leaves the entry out and goes on. Without a handler, the walk
raises the error."""


@runtime_checkable
class SessionStorage(Protocol):
    """What a synchronous session storage does.

    Every method raises a :class:`~shopify_sessions.SessionStorageError` subclass when
    it cannot do its job; none of them reports a failure by its return value.
    """

    def store_session(self, session: Session) -> bool:
        """Insert or replace the session, every field (a cleared field is cleared). ``True``."""
        ...

    def load_session(self, id: str) -> Session | None:
        """The stored session with this id, or ``None`` when there is none."""
        ...

    def delete_session(self, id: str) -> bool:
        """Delete the session with this id; an absent id is fine. Returns ``True``."""
        ...

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Delete every session in ``ids`` (any number; ``[]`` does nothing). Returns ``True``."""
        ...

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Every session of ``shop``, in :func:`session_order`."""
        ...


@runtime_checkable
class AsyncSessionStorage(Protocol):
    """What an asyncio session storage does: :class:`SessionStorage`, awaited."""

    async def store_session(self, session: Session) -> bool:
        """Insert or replace the session, every field (a cleared field is cleared). ``True``."""
        ...

    async def load_session(self, id: str) -> Session | None:
        """The stored session with this id, or ``None`` when there is none."""
        ...

    async def delete_session(self, id: str) -> bool:
        """Delete the session with this id; an absent id is fine. Returns ``True``."""
        ...

    async def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Delete every session in ``ids`` (any number; ``[]`` does nothing). Returns ``True``."""
        ...

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Every session of ``shop``, in :func:`session_order`."""
        ...


@runtime_checkable
class LockingSessionStorage(SessionStorage, Protocol):
    """A :class:`SessionStorage` that can also serialise work on a session, store a renewed
    pair only over the pair it renews, and list the offline sessions whose refresh token
    is due: what ``OfflineTokens`` needs.

    The memory and SQL storages of this package are all of this kind.
    """

    def lock_session(self, id: str, *, timeout: float = ...) -> AbstractContextManager[None]:
        """Hold the lock of session ``id``: one holder at a time, however many workers.

        Raises :class:`~shopify_sessions.LockTimeoutError` when it is not free within
        ``timeout`` seconds.
        """
        ...

    def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Store ``session`` only if the stored row still holds ``previous``'s tokens.

        A compare-and-set on the access and refresh tokens: ``True`` when ``session`` is
        stored (or already was), ``False`` when the row holds other tokens (another
        worker or app stored a newer pair) or is gone (the shop was uninstalled); then
        nothing is written. This is the fence that keeps a worker which outlived its
        lock from storing a renewed pair over a newer one, or bringing a deleted
        session back.
        """
        ...

    def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = ...
    ) -> Iterator[list[Session]]:
        """Offline sessions whose refresh token expires before ``before``, in batches."""
        ...


@runtime_checkable
class AsyncLockingSessionStorage(AsyncSessionStorage, Protocol):
    """The asyncio twin of :class:`LockingSessionStorage`."""

    def lock_session(self, id: str, *, timeout: float = ...) -> AbstractAsyncContextManager[None]:
        """Hold the lock of session ``id``: one holder at a time, however many workers."""
        ...

    async def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Store ``session`` only if the stored row still holds ``previous``'s tokens."""
        ...

    def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = ...
    ) -> AsyncIterator[list[Session]]:
        """Offline sessions whose refresh token expires before ``before``, in batches."""
        ...


def is_asyncio_storage(storage: object) -> bool:
    """Whether ``storage`` is an asyncio storage: its methods are coroutine functions.

    The protocols alone cannot tell (they check that the methods exist); this can, so that
    a sync storage is never awaited, and an asyncio one never called from sync code.
    """
    return inspect.iscoroutinefunction(getattr(storage, "load_session", None))


def session_order(session: Session) -> tuple[bool, float, str]:
    """Sort key of ``find_sessions_by_shop``: the same order on every backend.

    Sessions that never expire come first, then the rest by ``expires`` descending
    (the latest first, as Shopify's Drizzle and Prisma adapters order them); ties are
    broken by ``id`` in code-point order, which no database collation can reorder.
    """
    expires: datetime | None = session.expires
    if expires is None:
        return (False, 0.0, session.id)
    return (True, -expires.timestamp(), session.id)


def is_purgeable(
    expires: datetime | None,
    refresh_token: str | None,
    refresh_token_expires: datetime | None,
    cutoff: datetime,
    now: datetime,
) -> bool:
    """Whether a session may be deleted as expired.

    Its access token expired before ``cutoff``, and it has no refresh token that could
    still renew it: none at all, or one that expired before ``now``. A refresh token
    without an expiry counts as valid, so such a session is kept.
    """
    if expires is None or expires >= cutoff:
        return False
    if not refresh_token:
        return True
    return refresh_token_expires is not None and refresh_token_expires < now


def purgeable_ids(sessions: Iterable[Session], cutoff: datetime, now: datetime) -> list[str]:
    """The ids of ``sessions`` that :func:`is_purgeable` allows to delete: the part of
    ``delete_expired_sessions`` every storage that walks its sessions in code shares."""
    return [
        s.id
        for s in sessions
        if is_purgeable(s.expires, s.refresh_token, s.refresh_token_expires, cutoff, now)
    ]


def is_refresh_due(session: Session, before: datetime) -> bool:
    """Whether ``session`` is offline with a refresh token that expires before ``before``."""
    expires = session.refresh_token_expires
    return (
        not session.is_online
        and bool(session.refresh_token)
        and expires is not None
        and expires < before
    )


def expiry_cutoff(grace: timedelta, now: datetime | None) -> tuple[datetime, datetime]:
    """``(now, now - grace)`` as aware UTC; ``now`` defaults to the current time."""
    if not isinstance(grace, timedelta) or grace < timedelta(0):
        raise InvalidSessionError("grace must be a timedelta of zero or more")
    now = utc_now() if now is None else as_utc(now)
    return now, now - grace


def check_storage_kind(storage: object, user: type, *, is_async: bool) -> None:
    """Refuse, before anything runs, a storage of the other kind than ``user`` needs.

    A sync storage's methods would block an event loop; an asyncio storage's would hand
    back coroutines where sessions are expected. ``user`` is the class taking the storage,
    named ``AsyncX`` for asyncio and ``X`` for sync, so the message can name its twin.
    """
    if getattr(storage, "load_session", None) is None or is_asyncio_storage(storage) == is_async:
        return  # the right kind, or no storage at all: the caller's own check says so
    needed, given = ("an asyncio", "a synchronous") if is_async else ("a synchronous", "an asyncio")
    name = type(storage).__name__
    advice = f"use {_twin(user.__name__)} with it"
    module = sys.modules.get(type(storage).__module__)
    if _twin(name) in getattr(module, "__all__", ()):
        advice += f", or {_twin(name)} here"
    raise TypeError(f"{user.__name__} needs {needed} storage, and {name} is {given} one: {advice}")


def _twin(name: str) -> str:
    """``AsyncX`` for ``X`` and ``X`` for ``AsyncX``: the other kind's class."""
    return name.removeprefix("Async") if name.startswith("Async") else f"Async{name}"


def check_session(session: object) -> Session:
    """Return ``session`` if it is a storable :class:`Session`; else raise InvalidSessionError.

    Every text field must be encodable as UTF-8 (no lone surrogate, as ``surrogateescape``
    makes of undecodable bytes): no backend can store such text, and each failed its own
    way (a raw ``UnicodeEncodeError``, or half a write), so it is refused here, once, for
    all of them, before anything is sent.
    """
    if not isinstance(session, Session):
        raise InvalidSessionError(f"expected a Session, got {type(session).__name__}")
    check_id(session.id)
    _check_encodable(session.shop, "the session's shop")
    _check_encodable(session.state, "the session's state")
    _check_encodable(session.scope, "the session's scope")
    _check_encodable(session.access_token, "the session's access_token")
    _check_encodable(session.refresh_token, "the session's refresh_token")
    info = session.online_access_info
    if info is not None:
        user = info.associated_user
        _check_encodable(user.first_name, "the session user's first_name")
        _check_encodable(user.last_name, "the session user's last_name")
        _check_encodable(user.email, "the session user's email")
        _check_encodable(user.locale, "the session user's locale")
    return session


def _check_encodable(value: object, what: str) -> None:
    """Refuse a str that UTF-8 cannot encode; other values are the codecs' to check.

    The message says where the offending character is, never the text: it may be a token.
    """
    if not isinstance(value, str) or value.isascii():  # the fast path: nearly every value
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        # Not chained: the UnicodeEncodeError holds the whole text (a token, maybe).
        raise InvalidSessionError(
            f"{what} is not valid text: it holds a lone surrogate "
            f"(U+{ord(value[error.start]):04X}) at index {error.start}, which UTF-8 cannot "
            "encode"
        ) from None


def check_replacement(session: object, previous: object) -> tuple[Session, Session]:
    """Return ``(session, previous)`` if both are storable sessions with the same id."""
    session, previous = check_session(session), check_session(previous)
    if session.id != previous.id:
        raise InvalidSessionError(
            f"a session replaces one of the same id, not {previous.id!r} with {session.id!r}"
        )
    return session, previous


def holds_tokens(access_token: str | None, refresh_token: str | None, session: Session) -> bool:
    """Whether stored tokens are ``session``'s (an empty token counts as none)."""
    return (access_token or None, refresh_token or None) == (
        session.access_token or None,
        session.refresh_token or None,
    )


def shown_id(id: object) -> str:
    """An id (or key) as an error message shows it: quoted, cut short if it is long."""
    text = repr(id)
    return text if len(text) <= 80 else f"{text[:76]}...{text[-1]}"


def check_batch_size(size: object) -> int:
    """Return ``size`` if it is a positive int, else raise :class:`InvalidSessionError`."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidSessionError("batch_size must be a positive int")
    return size


def check_id(id: object) -> str:
    """Return ``id`` if it is a non-empty string UTF-8 can encode, else raise
    :class:`InvalidSessionError`."""
    if not isinstance(id, str):
        raise InvalidSessionError(f"a session id must be a str, got {type(id).__name__}")
    if not id:
        raise InvalidSessionError("a session id must not be empty")
    _check_encodable(id, "a session id")
    return id


def check_ids(ids: Iterable[object]) -> list[str]:
    """Return ``ids`` as a list of valid ids, without duplicates, in their first order."""
    if isinstance(ids, (str, bytes)):
        raise InvalidSessionError("ids must be a sequence of str, not a single string")
    return list(dict.fromkeys(check_id(id) for id in ids))


def check_shop(shop: object) -> str:
    """Return ``shop`` if it is a str UTF-8 can encode, else raise :class:`InvalidSessionError`."""
    if not isinstance(shop, str):
        raise InvalidSessionError(f"a shop must be a str, got {type(shop).__name__}")
    _check_encodable(shop, "a shop")
    return shop
