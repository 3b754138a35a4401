"""Concurrent reads by key that share one query: the SQL storages' ``load_session``.

A read that finds no other read of its storage in flight runs alone, at once, as it
always did. One that finds a read in flight waits for it to end, then goes with every
read that arrived meanwhile in one query (``WHERE id IN (...)``): many workers loading
sessions at once make a query per batch instead of a query each, which is where the
time of a busy app goes (a round trip, a pooled connection's checkout and return, the
statement's execution in SQLAlchemy and the driver). Prisma's client does the same with
``findUnique`` calls made in the same tick.

Each read's query is sent after the read began, so it sees every write committed before
it began, as its own query would. A batch answers for a key only with a row whose key is
exactly that key; a key it has no such row for (absent, or matched by a case- or
pad-insensitive collation only), and every key of a batch that failed, is read again
alone, so that what each read returns, or raises, is what its own query gives.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

#: A key the batch has no answer for: read it alone.
AGAIN: object = object()

#: The read of one key alone, and of several keys at once (their rows by exact key).
ReadOne = Callable[[str], T]
ReadMany = Callable[[Sequence[str]], Mapping[str, T]]
AsyncReadOne = Callable[[str], Awaitable[T]]
AsyncReadMany = Callable[[Sequence[str]], Awaitable[Mapping[str, T]]]


class _Waiter:
    """A read waiting for the batch it joined: its key, its answer, and whether it must
    run that batch (the first of a batch does, on its own thread).

    ``done`` is a lock taken at once and released by the thread that answers: the
    cheapest way to wake one thread (an ``Event`` adds a condition and a second lock)."""

    __slots__ = ("answer", "batch", "done", "key")

    def __init__(self, key: str) -> None:
        self.key = key
        self.answer: object = AGAIN
        self.batch: list[_Waiter] | None = None
        self.done = threading.Lock()
        self.done.acquire()


class ReadBatcher(Generic[T]):
    """Reads from threads that share queries, one query in flight at a time."""

    __slots__ = ("_busy", "_guard", "_many", "_one", "_waiting")

    def __init__(self, one: ReadOne[T], many: ReadMany[T]) -> None:
        self._one = one
        self._many = many
        self._guard = threading.Lock()
        self._busy = False
        self._waiting: list[_Waiter] = []

    def read(self, key: str) -> T:
        """What ``one(key)`` gives, alone or in a batch."""
        with self._guard:
            if self._busy:
                waiter = _Waiter(key)
                self._waiting.append(waiter)
            else:
                self._busy = True
                waiter = None
        if waiter is None:
            try:
                return self._one(key)
            finally:
                self._next()
        waiter.done.acquire()
        if waiter.batch is not None:  # this thread runs the batch it leads
            self._run(waiter.batch)
        answer = waiter.answer
        return self._one(key) if answer is AGAIN else answer  # type: ignore[return-value]

    def _run(self, batch: list[_Waiter]) -> None:
        found: Mapping[str, object] = {}
        try:
            keys = list(dict.fromkeys(waiter.key for waiter in batch))
            found = {keys[0]: self._one(keys[0])} if len(keys) == 1 else self._many(keys)
        except Exception:
            found = {}  # each reads alone, and gets its own outcome
        finally:
            self._next()
            for waiter in batch:
                waiter.answer = found.get(waiter.key, AGAIN)
                if waiter.batch is None:
                    waiter.done.release()

    def _next(self) -> None:
        """The read in flight has ended: the waiting reads go next, led by the first."""
        with self._guard:
            if not self._waiting:
                self._busy = False
                return
            batch, self._waiting = self._waiting, []
        batch[0].batch = batch
        batch[0].done.release()


class AsyncReadBatcher(Generic[T]):
    """The asyncio twin of :class:`ReadBatcher`: reads from tasks of one event loop; a
    batch runs in a task of its own, so that cancelling a reader cancels no one else's."""

    __slots__ = ("_busy", "_loop", "_many", "_one", "_tasks", "_waiting")

    def __init__(self, one: AsyncReadOne[T], many: AsyncReadMany[T]) -> None:
        self._one = one
        self._many = many
        self._busy = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[str, asyncio.Future[object]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: str) -> T:
        """What ``one(key)`` gives, alone or in a batch."""
        loop = asyncio.get_running_loop()
        if not self._busy:
            self._busy, self._loop = True, loop
            try:
                return await self._one(key)
            finally:
                self._next()
        if loop is not self._loop:  # another event loop's reads are in flight: go alone
            return await self._one(key)
        future: asyncio.Future[object] = loop.create_future()
        self._waiting.append((key, future))
        answer = await future
        return await self._one(key) if answer is AGAIN else answer  # type: ignore[return-value]

    def _next(self) -> None:
        if not self._waiting:
            self._busy = False
            return
        batch, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[str, asyncio.Future[object]]]) -> None:
        found: Mapping[str, object] = {}
        try:
            keys = list(dict.fromkeys(key for key, future in batch if not future.done()))
            if len(keys) == 1:
                found = {keys[0]: await self._one(keys[0])}
            elif keys:
                found = await self._many(keys)
        except Exception:
            found = {}  # each reads alone, and gets its own outcome
        finally:
            for key, future in batch:
                if not future.done():
                    future.set_result(found.get(key, AGAIN))
            self._next()
