"""Concurrent loads of one storage share queries, and each still gets what its own query
would give (shopify_sessions/_batch.py).

A load that finds another in flight waits for it, then goes with the others that arrived
meanwhile in one ``SELECT ... WHERE id IN (...)`` (``= ANY(...)`` on PostgreSQL). The
statements are counted with the engine's own event listener, which also proves that an
app's tracing sees them. Without the batching, 16 concurrent loads send 16 SELECTs, as
they do on sqlite3, which doesn't batch (``shares_reads`` in sqlalchemy/_base.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import event

from conftest import SQL_BACKENDS, Harness
from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session

SHOP = "batching.myshopify.com"
WORKERS = 16


def sample(index: int) -> Session:
    return Session(
        f"offline_batching-{index}.myshopify.com",
        SHOP,
        "",
        index % 2 == 0,
        scope="read_products",
        access_token=f"shpat_{index}",
        online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=index + 1))
        if index % 2 == 0
        else None,
    )


def shares_reads(harness: Harness) -> bool:
    return harness.backend.name != "sqlite3"


#: The backends whose loads share queries: all but sqlite3.
batching_backends = pytest.mark.parametrize(
    "sql_backend",
    [b for b in SQL_BACKENDS if b.name != "sqlite3"],
    ids=lambda b: b.name,
    indirect=True,
)


class Loads:
    """A storage of the harness's backend, its SELECTs counted as the engine sees them."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.storage = harness.storage(table=harness.default_table())
        self.target = getattr(self.storage, "target", self.storage)  # the sync storage itself
        self.selects: list[str] = []
        #: Called with each statement before it is sent (to slow it, or fail it).
        self.before: Callable[[str], None] = lambda statement: None
        sync_engine = getattr(self.target.engine, "sync_engine", self.target.engine)
        event.listen(sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and self.harness.table_name in statement:
            self.selects.append(statement)
            self.before(statement)

    async def setup(self, sessions: Sequence[Session]) -> None:
        await self.storage.create_table()
        for session in sessions:
            await self.storage.store_session(session)
        await self.storage.load_session("warm-up")  # the table check, a pooled connection
        self.selects.clear()

    async def alone(self, ids: Sequence[str]) -> list[Session | None]:
        return [await self.storage.load_session(id) for id in ids]

    async def at_once(self, ids: Sequence[str]) -> list[Session | None]:
        """Every id loaded at the same time: one task or one thread each."""
        if self.harness.backend.is_async:
            return list(await asyncio.gather(*(self.target.load_session(id) for id in ids)))
        return await asyncio.to_thread(self._threads, ids)

    def _threads(self, ids: Sequence[str]) -> list[Session | None]:
        results: list[Any] = [None] * len(ids)
        errors: list[BaseException] = []
        start = threading.Barrier(len(ids))

        def load(index: int) -> None:
            start.wait()
            try:
                results[index] = self.target.load_session(ids[index])
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=load, args=(i,)) for i in range(len(ids))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    def slow_first(self, seconds: float = 0.3) -> None:
        """Hold the first SELECT sent for a while, so the other loads arrive during it
        (sync storages: an asyncio storage's tasks all start before its first await)."""
        held = threading.Event()

        def hold(statement: str) -> None:
            if not held.is_set() and not self.harness.backend.is_async:
                held.set()
                time.sleep(seconds)

        self.before = hold


async def test_concurrent_loads_share_queries(sql_harness: Harness) -> None:
    loads = Loads(sql_harness)
    sessions = [sample(index) for index in range(WORKERS)]
    await loads.setup(sessions)
    loads.slow_first()
    got = await loads.at_once([session.id for session in sessions])
    assert got == sessions
    if not shares_reads(sql_harness):  # each load its own query, at once
        assert len(loads.selects) == WORKERS
        assert not any(" IN (" in select for select in loads.selects), loads.selects
        return
    # The first load alone, the other 15 together (a straggler thread may make a third).
    assert 2 <= len(loads.selects) <= 3, loads.selects


@batching_backends
async def test_a_batch_gives_each_load_what_its_own_query_gives(sql_harness: Harness) -> None:
    """Absent ids, ids that differ in case or trailing spaces (which MySQL's collations
    match), and the same id twice: concurrent loads return what sequential ones do."""
    loads = Loads(sql_harness)
    sessions = [sample(index) for index in range(4)]
    await loads.setup(sessions)
    first = sessions[0].id
    ids = [
        *(session.id for session in sessions),
        first,
        first.upper(),
        first + " ",
        "offline_absent.myshopify.com",
        "OFFLINE_ABSENT.myshopify.com",
    ]
    expected = await loads.alone(ids)
    loads.slow_first()
    got = await loads.at_once(ids)
    assert got == expected
    assert got[0] is not got[4]  # the same id twice: a Session each
    assert expected[:4] == sessions
    # MySQL's utf8mb4_bin pads with spaces: the id with a trailing space finds the row
    # alone, through the collation, and so in a batch too (by a query of its own).
    assert expected[6] == (sessions[0] if sql_harness.backend.server == "mysql" else None)
    assert expected[5] is None


@batching_backends
async def test_a_failed_batch_leaves_each_load_its_own_query(sql_harness: Harness) -> None:
    loads = Loads(sql_harness)
    sessions = [sample(index) for index in range(8)]
    await loads.setup(sessions)
    slow = loads.slow_first
    slow()
    hold = loads.before

    def fail_batches(statement: str) -> None:
        hold(statement)
        if " IN (" in statement or "ANY (" in statement:
            raise RuntimeError("the batch failed")

    loads.before = fail_batches
    assert await loads.at_once([session.id for session in sessions]) == sessions
    batches = [s for s in loads.selects if " IN (" in s or "ANY (" in s]
    assert batches, "no batch was tried"
    assert len(loads.selects) == 1 + len(batches) + 7  # alone, the batch, then each alone


@pytest.mark.parametrize(
    "sql_backend",
    [b for b in SQL_BACKENDS if b.is_async],
    ids=lambda b: b.name,
    indirect=True,
)
async def test_a_cancelled_load_cancels_no_one_else(sql_harness: Harness) -> None:
    loads = Loads(sql_harness)
    sessions = [sample(index) for index in range(6)]
    await loads.setup(sessions)
    tasks = [asyncio.ensure_future(loads.storage.load_session(s.id)) for s in sessions]
    await asyncio.sleep(0)  # each task has started: the first is in flight, the rest wait
    tasks[0].cancel()  # the one whose query is in flight
    tasks[3].cancel()  # one waiting for the batch
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError)
    assert isinstance(done[3], asyncio.CancelledError)
    assert [done[i] for i in (1, 2, 4, 5)] == [sessions[i] for i in (1, 2, 4, 5)]
    assert await loads.storage.load_session(sessions[0].id) == sessions[0]  # not stuck
