"""The timed phases, for a sync or an asyncio storage, and the checks after each.

Both sides (library and raw) are driven by this same code through the four methods
they share: ``store_session``, ``load_session``, ``find_sessions_by_shop`` and
``delete_sessions``. Only the calls are timed; checks run between phases.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from shopify_sessions import Session

from .data import Dataset

A = TypeVar("A")
R = TypeVar("R")

#: The order phases run in (``delete`` empties the table, so it runs last).
RUN_ORDER = ("store_insert", "store_update", "load", "find", "concurrent_load", "delete")
#: The order phases are reported in.
REPORT_ORDER = ("store_insert", "store_update", "load", "find", "delete", "concurrent_load")
DELETE_BATCH = 100
WORKERS = 16
#: An id no session has: loaded untimed to warm connections up before timing starts.
WARM_UP_ID = "warm-up-absent-id"


@dataclass
class PhaseResult:
    """One phase of one round on one side."""

    phase: str
    elapsed_ns: int
    latencies_ns: list[int]

    @property
    def ops(self) -> int:
        return len(self.latencies_ns)

    @property
    def ops_per_s(self) -> float:
        return self.ops / (self.elapsed_ns / 1e9)


class Checks(Protocol):
    """What the checks need from the table: its row count and its rows. It may also have a
    ``settle()``, run after each phase, to leave the database as the next side should find it."""

    def count(self) -> int: ...
    def dump(self) -> list[tuple[Any, ...]]: ...


class SyncStorage(Protocol):
    def store_session(self, session: Session) -> bool: ...
    def load_session(self, id: str) -> Session | None: ...
    def find_sessions_by_shop(self, shop: str) -> list[Session]: ...
    def delete_sessions(self, ids: Sequence[str]) -> bool: ...


class AsyncStorage(Protocol):
    async def store_session(self, session: Session) -> bool: ...
    async def load_session(self, id: str) -> Session | None: ...
    async def find_sessions_by_shop(self, shop: str) -> list[Session]: ...
    async def delete_sessions(self, ids: Sequence[str]) -> bool: ...


class CheckFailed(AssertionError):
    """A phase did not read back what was written."""


# ----------------------------------------------------------------------- timing


def time_each(phase: str, call: Callable[[A], R], args: Sequence[A]) -> tuple[PhaseResult, list[R]]:
    """Call ``call`` on each argument in turn, timing each call and the whole."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    results: list[R] = []
    start = clock()
    for arg in args:
        before = clock()
        result = call(arg)
        latencies.append(clock() - before)
        results.append(result)
    return PhaseResult(phase, clock() - start, latencies), results


async def time_each_async(
    phase: str, call: Callable[[A], Awaitable[R]], args: Sequence[A]
) -> tuple[PhaseResult, list[R]]:
    """:func:`time_each`, awaited."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    results: list[R] = []
    start = clock()
    for arg in args:
        before = clock()
        result = await call(arg)
        latencies.append(clock() - before)
        results.append(result)
    return PhaseResult(phase, clock() - start, latencies), results


def _split(args: Sequence[A], workers: int) -> list[Sequence[A]]:
    return [args[k::workers] for k in range(workers)]


def _merge(slices: list[Sequence[A]], results: list[list[R]]) -> list[tuple[A, R]]:
    pairs: list[tuple[A, R]] = []
    for part, got in zip(slices, results, strict=True):
        pairs.extend(zip(part, got, strict=True))
    return pairs


def time_threads(
    phase: str, call: Callable[[A], R], args: Sequence[A], workers: int, warm_up: A
) -> tuple[PhaseResult, list[tuple[A, R]]]:
    """``workers`` threads share ``args`` (round robin); the phase is the wall time.

    Each thread first makes one untimed call with ``warm_up``, so per-thread
    connections and pools are warm, as in a long-running app's worker threads.
    """
    clock = time.perf_counter_ns
    slices = _split(args, workers)
    latencies: list[list[int]] = [[] for _ in slices]
    results: list[list[R]] = [[] for _ in slices]
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers + 1)

    def work(k: int) -> None:
        try:
            call(warm_up)
        except BaseException as error:
            errors.append(error)
        barrier.wait()
        if errors:
            return
        try:
            for arg in slices[k]:
                before = clock()
                result = call(arg)
                latencies[k].append(clock() - before)
                results[k].append(result)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = clock()
    for thread in threads:
        thread.join()
    elapsed = clock() - start
    if errors:
        raise errors[0]
    merged = [latency for part in latencies for latency in part]
    return PhaseResult(phase, elapsed, merged), _merge(slices, results)


async def time_tasks(
    phase: str, call: Callable[[A], Awaitable[R]], args: Sequence[A], workers: int, warm_up: A
) -> tuple[PhaseResult, list[tuple[A, R]]]:
    """``workers`` asyncio tasks share ``args`` (round robin); the phase is the wall time.

    ``workers`` untimed concurrent calls with ``warm_up`` first fill the pool.
    """
    clock = time.perf_counter_ns
    slices = _split(args, workers)
    latencies: list[list[int]] = [[] for _ in slices]

    async def work(k: int) -> list[R]:
        got: list[R] = []
        for arg in slices[k]:
            before = clock()
            got.append(await call(arg))
            latencies[k].append(clock() - before)
        return got

    await asyncio.gather(*(call(warm_up) for _ in range(workers)))
    start = clock()
    results = await asyncio.gather(*(work(k) for k in range(workers)))
    elapsed = clock() - start
    merged = [latency for part in latencies for latency in part]
    return PhaseResult(phase, elapsed, merged), _merge(slices, list(results))


# ----------------------------------------------------------------------- checks


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Verifier:
    """Checks each phase's results and the table after it."""

    def __init__(self, data: Dataset, table: Checks, base_rows: int) -> None:
        self.data = data
        self.table = table
        self.base_rows = base_rows
        self.expected = {session.id: session for session in data.updated}
        #: The table's rows after each store phase, to compare library and raw.
        self.dumps: dict[str, list[tuple[Any, ...]]] = {}

    def stored(self, phase: str, results: list[bool]) -> None:
        _require(all(r is True for r in results), f"{phase}: a store did not return True")
        count = self.table.count()
        expected = self.base_rows + len(self.data.sessions)
        _require(count == expected, f"{phase}: {count} rows in {self.table}, expected {expected}")
        self.dumps[phase] = self.table.dump()

    def loaded(self, phase: str, pairs: list[tuple[str, Session | None]]) -> None:
        _require(len(pairs) == len(self.data.sessions), f"{phase}: {len(pairs)} loads")
        wrong = [id for id, got in pairs if got is None or got != self.expected[id]]
        _require(not wrong, f"{phase}: {len(wrong)} loads differ, e.g. {wrong[:3]}")

    def found(self, pairs: list[tuple[str, list[Session]]]) -> None:
        wrong = [
            shop
            for shop, got in pairs
            if [s.id for s in got] != self.data.expected_by_shop[shop]
            or any(s != self.expected[s.id] for s in got)
        ]
        _require(not wrong, f"find: {len(wrong)} shops differ, e.g. {wrong[:3]}")

    def settle(self) -> None:
        """After the phase's checks: let the table settle, where it has a way (``Checks.settle``,
        SQLite's WAL checkpoint); other checks (Redis keys) need none."""
        settle = getattr(self.table, "settle", None)
        if settle is not None:
            settle()

    def deleted(self, results: list[bool]) -> None:
        _require(all(r is True for r in results), "delete: a call did not return True")
        count = self.table.count()
        _require(count == self.base_rows, f"delete: {count} rows left, expected {self.base_rows}")


class FloorVerifier(Verifier):
    """The floor returns rows, not sessions: check that each load found its row."""

    def loaded(self, phase: str, pairs: list[tuple[str, Any]]) -> None:
        _require(len(pairs) == len(self.data.sessions), f"{phase}: {len(pairs)} loads")
        wrong = [id for id, row in pairs if row is None or row[0] != id]
        _require(not wrong, f"{phase}: {len(wrong)} loads missed, e.g. {wrong[:3]}")

    def found(self, pairs: list[tuple[str, Any]]) -> None:
        wrong = [shop for shop, rows in pairs if len(rows) != len(self.data.expected_by_shop[shop])]
        _require(not wrong, f"find: {len(wrong)} shops differ, e.g. {wrong[:3]}")


def delete_batches(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + DELETE_BATCH] for start in range(0, len(ids), DELETE_BATCH)]


# ----------------------------------------------------------------------- phases


def run_phase(phase: str, storage: SyncStorage, verify: Verifier) -> PhaseResult:
    """One phase on a sync storage, then its checks."""
    data = verify.data
    if phase in ("store_insert", "store_update"):
        sessions = data.sessions if phase == "store_insert" else data.updated
        result, stored = time_each(phase, storage.store_session, sessions)
        verify.stored(phase, stored)
    elif phase == "load":
        result, loaded = time_each(phase, storage.load_session, data.ids)
        verify.loaded(phase, list(zip(data.ids, loaded, strict=True)))
    elif phase == "find":
        result, found = time_each(phase, storage.find_sessions_by_shop, data.shops)
        verify.found(list(zip(data.shops, found, strict=True)))
    elif phase == "concurrent_load":
        result, pairs = time_threads(phase, storage.load_session, data.ids, WORKERS, WARM_UP_ID)
        verify.loaded(phase, pairs)
    elif phase == "delete":
        result, deleted = time_each(phase, storage.delete_sessions, delete_batches(data.ids))
        verify.deleted(deleted)
    else:
        raise ValueError(f"unknown phase {phase!r}")
    verify.settle()
    return result


async def run_phase_async(phase: str, storage: AsyncStorage, verify: Verifier) -> PhaseResult:
    """One phase on an asyncio storage, then its checks."""
    data = verify.data
    if phase in ("store_insert", "store_update"):
        sessions = data.sessions if phase == "store_insert" else data.updated
        result, stored = await time_each_async(phase, storage.store_session, sessions)
        verify.stored(phase, stored)
    elif phase == "load":
        result, loaded = await time_each_async(phase, storage.load_session, data.ids)
        verify.loaded(phase, list(zip(data.ids, loaded, strict=True)))
    elif phase == "find":
        result, found = await time_each_async(phase, storage.find_sessions_by_shop, data.shops)
        verify.found(list(zip(data.shops, found, strict=True)))
    elif phase == "concurrent_load":
        result, pairs = await time_tasks(phase, storage.load_session, data.ids, WORKERS, WARM_UP_ID)
        verify.loaded(phase, pairs)
    elif phase == "delete":
        result, deleted = await time_each_async(
            phase, storage.delete_sessions, delete_batches(data.ids)
        )
        verify.deleted(deleted)
    else:
        raise ValueError(f"unknown phase {phase!r}")
    verify.settle()
    return result
