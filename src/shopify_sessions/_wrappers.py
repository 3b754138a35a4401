"""Storage wrappers: a locking storage that forwards every call to another, for an app's
own logging, metering or retries around some of them.

Why a base class rather than ``__getattr__``: since Python 3.12, ``isinstance`` against a
``runtime_checkable`` protocol looks members up with ``inspect.getattr_static``, which does
not see what ``__getattr__`` provides. A wrapper that forwards through ``__getattr__``
alone is no ``LockingSessionStorage`` there, and this package checks storages the same
way on every Python (:func:`is_locking_storage`), so that what works on 3.10 keeps working
on 3.13. These classes define each method of the protocol, so they are one everywhere.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import datetime
from typing import Any

from ._locks import DEFAULT_LOCK_TIMEOUT
from ._session import Session
from ._storage import (
    AsyncLockingSessionStorage,
    LockingSessionStorage,
    is_asyncio_storage,
)


def protocol_members(protocol: type) -> list[str]:
    """The methods a storage protocol of this package asks for (its own and those of the
    protocols it extends)."""
    names = {
        name
        for cls in protocol.__mro__
        if cls.__module__.partition(".")[0] == "shopify_sessions"
        for name in vars(cls)
        if not name.startswith("_")
    }
    if not names:  # a check that asks for nothing would take anything for a storage
        raise TypeError(f"{protocol!r} is not a storage protocol of this package")
    return sorted(names)


def is_locking_storage(storage: object, *, is_async: bool) -> bool:
    """Whether ``storage`` is a (sync, or asyncio) locking storage, judged as Python 3.12
    and later judge ``isinstance(storage, LockingSessionStorage)``, on every version: each
    method must be found on the object or its class, not through ``__getattr__``."""
    protocol = AsyncLockingSessionStorage if is_async else LockingSessionStorage
    return not _missing(storage, protocol)


def _missing(storage: object, protocol: type) -> list[str]:
    missing = []
    for name in protocol_members(protocol):
        found = inspect.getattr_static(storage, name, None)
        if found is None:
            missing.append(name)
    return missing


def wrapper_advice(storage: object, *, is_async: bool) -> str:
    """What to say of a storage that is not a locking one: which methods it lacks, and,
    for one that forwards them through ``__getattr__``, how to write a wrapper instead."""
    protocol = AsyncLockingSessionStorage if is_async else LockingSessionStorage
    missing = _missing(storage, protocol)
    if not missing:
        return ""
    dynamic = [name for name in missing if getattr(storage, name, None) is not None]
    if not dynamic:
        return f"; it has no {', '.join(missing)}"
    base = "AsyncSessionStorageWrapper" if is_async else "SessionStorageWrapper"
    return (
        f"; {type(storage).__name__} provides {', '.join(dynamic)} only through __getattr__, "
        "which isinstance() does not see since Python 3.12 (and this package does not "
        f"either, on any Python): subclass shopify_sessions.{base}, which defines every "
        "method and forwards it, and override the ones to change"
    )


class SessionStorageWrapper:
    """A synchronous locking storage that forwards every call to ``wrapped``: subclass
    it to log, meter or retry some calls, and override only those.

    ::

        class CountedStorage(SessionStorageWrapper):
            def load_session(self, id: str) -> Session | None:
                LOADS.inc()
                return super().load_session(id)

        tokens = OfflineTokens(CountedStorage(SQLAlchemySessionStorage(url)), ...)

    It is a :class:`~shopify_sessions.LockingSessionStorage` on every Python, as
    ``OfflineTokens``, the webhooks and the framework integrations require. A wrapper that
    forwards through ``__getattr__`` alone is refused (since Python 3.12, ``isinstance``
    does not see what ``__getattr__`` provides; this package checks the same way on every
    version). Any other attribute (``close``, ``create_table``, ``table``...) is read from
    ``wrapped``.

    Args:
        wrapped: the synchronous locking storage to forward to.

    Raises:
        TypeError: ``wrapped`` is an asyncio storage (use
            :class:`AsyncSessionStorageWrapper`), or not a locking storage.
    """

    __slots__ = ("_wrapped",)

    def __init__(self, wrapped: LockingSessionStorage) -> None:
        if is_asyncio_storage(wrapped):
            raise TypeError(
                f"{wrapped!r} is an asyncio storage: wrap it with AsyncSessionStorageWrapper"
            )
        if not is_locking_storage(wrapped, is_async=False):
            raise TypeError(
                f"SessionStorageWrapper wraps a synchronous locking storage, not {wrapped!r}"
                + wrapper_advice(wrapped, is_async=False)
            )
        self._wrapped = wrapped

    @property
    def wrapped(self) -> LockingSessionStorage:
        """The storage every call is forwarded to."""
        return self._wrapped

    def __getattr__(self, name: str) -> Any:
        # Only for what the class does not define: the storage's own extras.
        if name == "_wrapped":  # not set yet: __init__ failed, or __new__ without it
            raise AttributeError(name)
        return getattr(self._wrapped, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.wrapped!r})"

    def store_session(self, session: Session) -> bool:
        """Forwarded: :meth:`~shopify_sessions.SessionStorage.store_session`."""
        return self.wrapped.store_session(session)

    def load_session(self, id: str) -> Session | None:
        """Forwarded: :meth:`~shopify_sessions.SessionStorage.load_session`."""
        return self.wrapped.load_session(id)

    def delete_session(self, id: str) -> bool:
        """Forwarded: :meth:`~shopify_sessions.SessionStorage.delete_session`."""
        return self.wrapped.delete_session(id)

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Forwarded: :meth:`~shopify_sessions.SessionStorage.delete_sessions`."""
        return self.wrapped.delete_sessions(ids)

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Forwarded: :meth:`~shopify_sessions.SessionStorage.find_sessions_by_shop`."""
        return self.wrapped.find_sessions_by_shop(shop)

    def lock_session(
        self, id: str, *, timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> AbstractContextManager[None]:
        """Forwarded: :meth:`~shopify_sessions.LockingSessionStorage.lock_session`."""
        return self.wrapped.lock_session(id, timeout=timeout)

    def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Forwarded: :meth:`~shopify_sessions.LockingSessionStorage.replace_session`."""
        return self.wrapped.replace_session(session, previous=previous)

    def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = 100
    ) -> Iterator[list[Session]]:
        """Forwarded: :meth:`~shopify_sessions.LockingSessionStorage.sessions_due_for_refresh`."""
        return self.wrapped.sessions_due_for_refresh(before, batch_size=batch_size)


class AsyncSessionStorageWrapper:
    """The asyncio twin of :class:`SessionStorageWrapper`: an asyncio locking storage that
    forwards every call to ``wrapped``.

    ::

        class CountedStorage(AsyncSessionStorageWrapper):
            async def load_session(self, id: str) -> Session | None:
                LOADS.inc()
                return await super().load_session(id)

    Args:
        wrapped: the asyncio locking storage to forward to.

    Raises:
        TypeError: ``wrapped`` is a synchronous storage (use
            :class:`SessionStorageWrapper`), or not a locking storage.
    """

    __slots__ = ("_wrapped",)

    def __init__(self, wrapped: AsyncLockingSessionStorage) -> None:
        if getattr(wrapped, "load_session", None) is not None and not is_asyncio_storage(wrapped):
            raise TypeError(
                f"{wrapped!r} is a synchronous storage: wrap it with SessionStorageWrapper"
            )
        if not is_locking_storage(wrapped, is_async=True):
            raise TypeError(
                f"AsyncSessionStorageWrapper wraps an asyncio locking storage, not {wrapped!r}"
                + wrapper_advice(wrapped, is_async=True)
            )
        self._wrapped = wrapped

    @property
    def wrapped(self) -> AsyncLockingSessionStorage:
        """The storage every call is forwarded to."""
        return self._wrapped

    def __getattr__(self, name: str) -> Any:
        if name == "_wrapped":
            raise AttributeError(name)
        return getattr(self._wrapped, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.wrapped!r})"

    async def store_session(self, session: Session) -> bool:
        """Forwarded: :meth:`~shopify_sessions.AsyncSessionStorage.store_session`."""
        return await self.wrapped.store_session(session)

    async def load_session(self, id: str) -> Session | None:
        """Forwarded: :meth:`~shopify_sessions.AsyncSessionStorage.load_session`."""
        return await self.wrapped.load_session(id)

    async def delete_session(self, id: str) -> bool:
        """Forwarded: :meth:`~shopify_sessions.AsyncSessionStorage.delete_session`."""
        return await self.wrapped.delete_session(id)

    async def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Forwarded: :meth:`~shopify_sessions.AsyncSessionStorage.delete_sessions`."""
        return await self.wrapped.delete_sessions(ids)

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Forwarded: :meth:`~shopify_sessions.AsyncSessionStorage.find_sessions_by_shop`."""
        return await self.wrapped.find_sessions_by_shop(shop)

    def lock_session(
        self, id: str, *, timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> AbstractAsyncContextManager[None]:
        """Forwarded: :meth:`~shopify_sessions.AsyncLockingSessionStorage.lock_session`."""
        return self.wrapped.lock_session(id, timeout=timeout)

    async def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Forwarded: :meth:`~shopify_sessions.AsyncLockingSessionStorage.replace_session`."""
        return await self.wrapped.replace_session(session, previous=previous)

    def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = 100
    ) -> AsyncIterator[list[Session]]:
        """Forwarded:
        :meth:`~shopify_sessions.AsyncLockingSessionStorage.sessions_due_for_refresh`."""
        return self.wrapped.sessions_due_for_refresh(before, batch_size=batch_size)
