from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ._session import Session
from ._storage import (
    check_id,
    check_ids,
    check_session,
    check_shop,
    expiry_cutoff,
    is_purgeable,
    session_order,
)


class MemorySessionStorage:
    """A session storage in a dict, for tests and prototypes.

    It keeps copies: changing a session after storing it, or a session it returned,
    does not change what it holds. Nothing survives the process.
    """

    __slots__ = ("_sessions",)

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def store_session(self, session: Session) -> bool:
        """Store a copy of ``session``, replacing any session with its id."""
        session = check_session(session)
        self._sessions[session.id] = session.copy()
        return True

    def load_session(self, id: str) -> Session | None:
        """A copy of the session with this id, or ``None``."""
        session = self._sessions.get(check_id(id))
        return None if session is None else session.copy()

    def delete_session(self, id: str) -> bool:
        """Delete the session with this id, if any."""
        self._sessions.pop(check_id(id), None)
        return True

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Delete every session in ``ids``."""
        for id in check_ids(ids):
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
        doomed = [
            s.id
            for s in self._sessions.values()
            if is_purgeable(s.expires, s.refresh_token, s.refresh_token_expires, cutoff, now)
        ]
        for id in doomed:
            del self._sessions[id]
        return len(doomed)


class AsyncMemorySessionStorage:
    """The asyncio twin of :class:`MemorySessionStorage` (same behaviour, awaited)."""

    __slots__ = ("_storage",)

    def __init__(self) -> None:
        self._storage = MemorySessionStorage()

    async def store_session(self, session: Session) -> bool:
        """Store a copy of ``session``, replacing any session with its id."""
        return self._storage.store_session(session)

    async def load_session(self, id: str) -> Session | None:
        """A copy of the session with this id, or ``None``."""
        return self._storage.load_session(id)

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
