from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta

from ._locks import DEFAULT_LOCK_TIMEOUT, AsyncKeyedLocks, KeyedLocks, check_timeout
from ._session import Session
from ._storage import (
    check_batch_size,
    check_id,
    check_ids,
    check_replacement,
    check_session,
    check_shop,
    expiry_cutoff,
    holds_tokens,
    is_refresh_due,
    purgeable_ids,
    session_order,
)
from ._time import as_utc


class MemorySessionStorage:
    """A session storage in a dict, for tests and prototypes.

    It keeps copies: changing a session after storing it, or a session it returned,
    does not change what it holds. Nothing survives the process.
    """

    __slots__ = ("_locks", "_sessions", "_swap")

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._locks = KeyedLocks()
        #: Held by every write, so that replace_session's compare-and-set is atomic.
        self._swap = threading.Lock()

    def store_session(self, session: Session) -> bool:
        """Store a copy of ``session``, replacing any session with its id."""
        session = check_session(session)
        with self._swap:
            self._sessions[session.id] = session.copy()
        return True

    def load_session(self, id: str) -> Session | None:
        """A copy of the session with this id, or ``None``."""
        session = self._sessions.get(check_id(id))
        return None if session is None else session.copy()

    def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Store a copy of ``session`` only if the stored one still holds ``previous``'s
        tokens; see :meth:`~shopify_sessions.LockingSessionStorage.replace_session`."""
        session, previous = check_replacement(session, previous)
        with self._swap:
            stored = self._sessions.get(session.id)
            if stored is None:
                return False
            tokens = stored.access_token, stored.refresh_token
            if holds_tokens(*tokens, previous):
                self._sessions[session.id] = session.copy()
                return True
            return holds_tokens(*tokens, session)

    def delete_session(self, id: str) -> bool:
        """Delete the session with this id, if any."""
        id = check_id(id)
        with self._swap:
            self._sessions.pop(id, None)
        return True

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Delete every session in ``ids``."""
        ids = check_ids(ids)
        with self._swap:
            for id in ids:
                self._sessions.pop(id, None)
        return True

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Copies of every session of ``shop``, in :func:`~shopify_sessions.session_order`."""
        shop = check_shop(shop)
        found = [s.copy() for s in self._sessions.values() if s.shop == shop]
        return sorted(found, key=session_order)

    def delete_expired_sessions(
        self,
        *,
        grace: timedelta = timedelta(0),
        now: datetime | None = None,
        batch_size: int = 500,
    ) -> int:
        """Delete sessions expired more than ``grace`` ago that no refresh token can renew.

        Returns how many were deleted. ``batch_size`` is accepted for parity with the
        SQL storages; a dict needs no batches.
        """
        now, cutoff = expiry_cutoff(grace, now)
        with self._swap:
            doomed = purgeable_ids(self._sessions.values(), cutoff, now)
            for id in doomed:
                del self._sessions[id]
        return len(doomed)

    @contextmanager
    def lock_session(self, id: str, *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the lock of session ``id`` (among the threads of this process).

        Raises:
            LockTimeoutError: it was not free within ``timeout`` seconds.
        """
        with self._locks.hold(check_id(id), check_timeout(timeout)):
            yield

    def sessions(self, *, batch_size: int = 500) -> Iterator[list[Session]]:
        """Copies of every session, ``batch_size`` at a time, in id order (the ids are
        read at the start; a session deleted meanwhile is left out)."""
        size = check_batch_size(batch_size)
        ids = sorted(self._sessions)
        for start in range(0, len(ids), size):
            batch = (self._sessions.get(id) for id in ids[start : start + size])
            yield [session.copy() for session in batch if session is not None]

    def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = 100
    ) -> Iterator[list[Session]]:
        """Copies of the offline sessions whose refresh token expires before ``before``,
        ``batch_size`` at a time, in id order."""
        before, size = as_utc(before), check_batch_size(batch_size)
        due = sorted(
            (s for s in self._sessions.values() if is_refresh_due(s, before)), key=lambda s: s.id
        )
        for start in range(0, len(due), size):
            yield [s.copy() for s in due[start : start + size]]


class AsyncMemorySessionStorage:
    """The asyncio twin of :class:`MemorySessionStorage` (same behaviour, awaited)."""

    __slots__ = ("_locks", "_storage")

    def __init__(self) -> None:
        self._storage = MemorySessionStorage()
        self._locks = AsyncKeyedLocks()

    async def store_session(self, session: Session) -> bool:
        """Store a copy of ``session``, replacing any session with its id."""
        return self._storage.store_session(session)

    async def load_session(self, id: str) -> Session | None:
        """A copy of the session with this id, or ``None``."""
        return self._storage.load_session(id)

    async def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Store a copy of ``session`` only if the stored one still holds ``previous``'s tokens."""
        return self._storage.replace_session(session, previous=previous)

    async def delete_session(self, id: str) -> bool:
        """Delete the session with this id, if any."""
        return self._storage.delete_session(id)

    async def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Delete every session in ``ids``."""
        return self._storage.delete_sessions(ids)

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Copies of every session of ``shop``, in :func:`~shopify_sessions.session_order`."""
        return self._storage.find_sessions_by_shop(shop)

    async def delete_expired_sessions(
        self,
        *,
        grace: timedelta = timedelta(0),
        now: datetime | None = None,
        batch_size: int = 500,
    ) -> int:
        """Delete sessions expired more than ``grace`` ago that no refresh token can renew."""
        return self._storage.delete_expired_sessions(grace=grace, now=now, batch_size=batch_size)

    @asynccontextmanager
    async def lock_session(
        self, id: str, *, timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> AsyncIterator[None]:
        """Hold the lock of session ``id`` (among the tasks of this event loop).

        Raises:
            LockTimeoutError: it was not free within ``timeout`` seconds.
        """
        async with self._locks.hold(check_id(id), check_timeout(timeout)):
            yield

    async def sessions(self, *, batch_size: int = 500) -> AsyncIterator[list[Session]]:
        """Copies of every session, ``batch_size`` at a time, in id order."""
        for batch in self._storage.sessions(batch_size=batch_size):
            yield batch

    async def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = 100
    ) -> AsyncIterator[list[Session]]:
        """Copies of the offline sessions whose refresh token expires before ``before``,
        ``batch_size`` at a time, in id order."""
        for batch in self._storage.sessions_due_for_refresh(before, batch_size=batch_size):
            yield batch
