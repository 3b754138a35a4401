"""In-process locks by key, with a timeout: the memory storages' session lock, and the
gate in front of the SQL and Redis storages' shared locks (one waiter per key per
process); and the pauses between tries of a shared lock."""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from ._errors import LockTimeoutError

#: Seconds a session lock is waited for by default: longer than a token refresh takes
#: (Shopify answers in well under a second), short enough to fail a web request cleanly.
DEFAULT_LOCK_TIMEOUT = 15.0


def check_timeout(timeout: object) -> float:
    """Return ``timeout`` if it is a positive, finite number of seconds."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def lock_pauses(deadline: float) -> Iterator[float]:
    """Seconds to sleep before each try of a shared lock: none before the first, then
    growing jittered pauses (2 ms to 50 ms) until ``deadline`` (``time.monotonic()``)."""
    yield 0.0
    pause = 0.002
    while (left := deadline - time.monotonic()) > 0:
        yield min(pause * (0.5 + random.random()), left)
        pause = min(pause * 2, 0.05)


class KeyedLocks:
    """One ``threading.Lock`` per key, kept only while someone holds or waits for it."""

    __slots__ = ("_guard", "_locks")

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}

    @contextmanager
    def hold(self, key: str, timeout: float) -> Iterator[None]:
        """Hold the lock of ``key``; :class:`LockTimeoutError` after ``timeout`` seconds."""
        with self._guard:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            if not lock.acquire(timeout=timeout):
                raise LockTimeoutError(key, timeout)
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._guard:
                users[0] -= 1
                if not users[0]:
                    del self._locks[key]


class AsyncKeyedLocks:
    """One ``asyncio.Lock`` per key, kept only while someone holds or waits for it."""

    __slots__ = ("_locks",)

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Hold the lock of ``key``; :class:`LockTimeoutError` after ``timeout`` seconds."""
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            try:
                await asyncio.wait_for(lock.acquire(), timeout)
            except asyncio.TimeoutError:
                raise LockTimeoutError(key, timeout) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]
