"""In-process locks by key, with a timeout: the memory storages' session lock, and the
gate in front of the SQL and Redis storages' shared locks (one waiter per key per
process); the pauses between tries of a shared lock; and the heartbeat that keeps a lock's
lease alive while it is held."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from ._errors import LockTimeoutError

logger = logging.getLogger("shopify_sessions")

DEFAULT_LOCK_TIMEOUT = 15.0
"""Seconds a session lock is waited for by default: longer than a token refresh takes
(Shopify answers in well under a second), short enough to fail a web request cleanly."""


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


DEFAULT_LOCK_LEASE = 10.0
"""Seconds a session lock's lease lasts unless its holder renews it (every third of it,
while held): the longest a dead (or frozen) holder keeps the others waiting."""


def check_lease(seconds: object) -> float:
    """Return ``seconds`` if it is a lease length the heartbeat can keep (at least 1 s)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 1:
        raise ValueError(f"lock_lease must be a number of seconds, 1 or more, not {seconds!r}")
    if seconds == float("inf"):
        raise ValueError("lock_lease must be finite: a dead holder's lease must run out")
    return float(seconds)


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


class Heartbeat:
    """Renews what is held, from one thread for all of it: each beat registered with
    :meth:`keep` is called every ``interval`` seconds while its ``with`` block lasts.

    What keeps a storage's leases alive while their holders work. A beat returns ``False``
    once there is nothing left to keep alive (the lease was lost), which ends its beats;
    an exception is logged and its beats go on (the next may succeed). The thread starts
    with the first beat and ends when none is left, so an idle storage holds no thread.
    """

    __slots__ = ("_beats", "_guard", "_interval", "_running")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        #: Each kept beat, by a token of its own: (the beat, when it is due).
        self._beats: dict[object, tuple[Callable[[], bool], float]] = {}
        self._guard = threading.Lock()
        self._running = False

    @contextmanager
    def keep(self, beat: Callable[[], bool]) -> Iterator[None]:
        """Call ``beat`` every ``interval`` seconds until the block ends."""
        token = object()
        with self._guard:
            self._beats[token] = (beat, time.monotonic() + self._interval)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="shopify-sessions", daemon=True).start()
        try:
            yield
        finally:
            with self._guard:
                self._beats.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._guard:
                if not self._beats:
                    self._running = False
                    return
                now = time.monotonic()
                due = [(token, beat) for token, (beat, at) in self._beats.items() if at <= now]
                wake = min(at for _, at in self._beats.values())
            for token, beat in due:
                alive = _beat(beat)
                with self._guard:
                    if token in self._beats:
                        if alive:
                            self._beats[token] = (beat, time.monotonic() + self._interval)
                        else:
                            del self._beats[token]
            time.sleep(max(0.0, wake - time.monotonic()))


class AsyncHeartbeat:
    """The asyncio twin of :class:`Heartbeat`: one task of the running event loop."""

    __slots__ = ("_beats", "_interval", "_task")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._beats: dict[object, tuple[Callable[[], Awaitable[bool]], float]] = {}
        self._task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def keep(self, beat: Callable[[], Awaitable[bool]]) -> AsyncIterator[None]:
        """Await ``beat()`` every ``interval`` seconds until the block ends."""
        token = object()
        self._beats[token] = (beat, time.monotonic() + self._interval)
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._task = asyncio.create_task(self._run(), name="shopify-sessions")
        try:
            yield
        finally:
            self._beats.pop(token, None)

    async def _run(self) -> None:
        while self._beats:
            now = time.monotonic()
            due = [(token, beat) for token, (beat, at) in self._beats.items() if at <= now]
            wake = min(at for _, at in self._beats.values())
            for token, beat in due:
                alive = await _async_beat(beat)
                if token in self._beats:
                    if alive:
                        self._beats[token] = (beat, time.monotonic() + self._interval)
                    else:
                        del self._beats[token]
            await asyncio.sleep(max(0.0, wake - time.monotonic()))


def _beat(beat: Callable[[], bool]) -> bool:
    try:
        return beat()
    except Exception as error:
        logger.warning("keeping a session lock's lease: %s", error)
        return True


async def _async_beat(beat: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await beat()
    except Exception as error:
        logger.warning("keeping a session lock's lease: %s", error)
        return True
