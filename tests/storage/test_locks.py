"""The session lock on every backend: exclusive across storages, threads, tasks, processes
and Galera nodes; bounded; freed when its holder dies (the lease runs out, or the kernel
releases the flock); and fenced: a holder that outlived its lease can't store over a newer
pair."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    BACKENDS,
    GALERA_BACKENDS,
    POOLED_BACKENDS,
    SESSION_POOLED_BACKENDS,
    SQL_BACKENDS,
    Awaited,
    Backend,
    Harness,
    close_harness,
    new_harness,
    require_backend,
)
from shopify_sessions import (
    AssociatedUser,
    InvalidSessionError,
    LockTimeoutError,
    OnlineAccessInfo,
    Session,
)
from shopify_sessions._time import utc_now


async def _try_lock(storage: Any, id: str, timeout: float) -> bool:
    """Whether ``storage`` could take the lock of ``id`` within ``timeout`` (from a thread
    of its own for sync storages, so the in-process lock does not decide alone)."""
    if isinstance(storage, Awaited):
        outcome: list[bool] = []

        def take() -> None:
            try:
                with storage.target.lock_session(id, timeout=timeout):
                    outcome.append(True)
            except LockTimeoutError:
                outcome.append(False)

        thread = threading.Thread(target=take)
        thread.start()
        await asyncio.to_thread(thread.join)
        return outcome[0]
    try:
        async with storage.lock_session(id, timeout=timeout):
            return True
    except LockTimeoutError:
        return False


#: Through PgBouncer in both modes, and on the two nodes of a Galera cluster.
ELSEWHERE = [*POOLED_BACKENDS, *SESSION_POOLED_BACKENDS, *GALERA_BACKENDS]
#: The backends whose lock is a lease in the database.
LEASE_BACKENDS = [*(b for b in SQL_BACKENDS if b.server != "sqlite"), *ELSEWHERE]


@pytest.fixture(
    params=[*BACKENDS, *SESSION_POOLED_BACKENDS, *GALERA_BACKENDS], ids=lambda b: b.name
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The battery's backends, PgBouncer in session mode, and a Galera pair's two nodes."""
    backend: Backend = request.param
    require_backend(backend)
    return backend


@pytest.fixture(params=LEASE_BACKENDS, ids=lambda b: b.name)
async def lease_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    backend: Backend = request.param
    require_backend(backend)
    harness = new_harness(backend, tmp_path)
    yield harness
    await close_harness(harness)


async def test_the_lock_is_exclusive_and_bounded(harness: Harness) -> None:
    """Two storages on one database (one storage for memory; one per node on Galera)
    exclude each other."""
    first = harness.storage(table=harness.default_table())
    second = (
        first
        if harness.backend.server == "memory"
        else harness.storage(table=harness.table_name, node=1)
    )
    if isinstance(first, Awaited):
        with first.target.lock_session("offline_a.myshopify.com"):
            started = time.monotonic()
            assert not await _try_lock(second, "offline_a.myshopify.com", 0.3)
            assert time.monotonic() - started >= 0.3
            assert await _try_lock(second, "offline_b.myshopify.com", 0.3)
    else:
        async with first.lock_session("offline_a.myshopify.com"):
            started = time.monotonic()
            with pytest.raises(LockTimeoutError) as raised:
                async with second.lock_session("offline_a.myshopify.com", timeout=0.3):
                    pass
            assert raised.value.id == "offline_a.myshopify.com"
            assert time.monotonic() - started >= 0.3
            assert await _try_lock(second, "offline_b.myshopify.com", 0.3)
    assert await _try_lock(second, "offline_a.myshopify.com", 0.3)


async def test_the_lock_serialises_many_workers(harness: Harness) -> None:
    """Eight workers on two storages (two Galera nodes; two DynamoDB clients) increment one
    counter under the lock; none is lost."""
    storage = harness.storage(table=harness.default_table())
    storages = [storage, storage]
    if harness.backend.is_sql:  # memory storages are each on their own
        await storage.create_table()
        storages[1] = harness.storage(table=harness.table_name, node=1)
    if harness.backend.is_dynamodb:  # excluding each other through the table alone
        storages[1] = harness.storage()
    counter = {"value": 0, "inside": 0, "overlaps": 0}

    def critical() -> None:
        counter["inside"] += 1
        if counter["inside"] > 1:
            counter["overlaps"] += 1
        value = counter["value"]
        time.sleep(0.002)
        counter["value"] = value + 1
        counter["inside"] -= 1

    if isinstance(storage, Awaited):

        def work(n: int) -> None:
            for _ in range(10):
                with storages[n % 2].target.lock_session("offline_c.myshopify.com"):
                    critical()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join)
    else:

        async def work_async(n: int) -> None:
            for _ in range(10):
                async with storages[n % 2].lock_session("offline_c.myshopify.com"):
                    counter["inside"] += 1
                    counter["overlaps"] += counter["inside"] > 1
                    value = counter["value"]
                    await asyncio.sleep(0.002)
                    counter["value"] = value + 1
                    counter["inside"] -= 1

        await asyncio.gather(*(work_async(n) for n in range(8)))
    assert counter == {"value": 80, "inside": 0, "overlaps": 0}


async def test_bad_lock_arguments_are_refused(harness: Harness) -> None:
    storage = harness.storage(table=harness.default_table())
    target = storage.target if isinstance(storage, Awaited) else storage
    for timeout in (0, -1, float("nan"), "5"):
        with pytest.raises(ValueError, match="timeout"):
            await _enter(target, "offline_a.myshopify.com", timeout)
    with pytest.raises(InvalidSessionError):
        await _enter(target, "", 1.0)


async def _enter(target: Any, id: str, timeout: Any) -> None:
    manager = target.lock_session(id, timeout=timeout)
    if hasattr(manager, "__aenter__"):
        async with manager:
            pass
    else:
        with manager:
            pass


HOLDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from shopify_sessions import Session
    from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage
    url, table, is_async = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    # A pair renewed from the pair it loaded under the lock, stored once stdin says so.
    ID, SHOP = "offline_held.myshopify.com", "held.myshopify.com"
    RENEWED = Session(ID, SHOP, "", False, access_token="shpat_holder", refresh_token="shprt_h")
    async def main():
        storage = AsyncSQLAlchemySessionStorage(url, table=table, lock_lease=2)
        async with storage.lock_session(ID):
            previous = await storage.load_session(ID)
            print("held", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            print(await storage.replace_session(RENEWED, previous=previous), flush=True)
    if is_async:
        asyncio.run(main())
    else:
        storage = SQLAlchemySessionStorage(url, table=table, lock_lease=2)
        with storage.lock_session(ID):
            previous = storage.load_session(ID)
            print("held", flush=True)
            sys.stdin.readline()
            print(storage.replace_session(RENEWED, previous=previous), flush=True)
    """
)
HELD_ID = "offline_held.myshopify.com"


def _holder(harness: Harness) -> subprocess.Popen[str]:
    """A process holding the lock of ``HELD_ID`` (on the second Galera node, if any)."""
    url = harness.backend.url(harness.sqlite_path, node=1)
    flag = "1" if harness.backend.is_async else "0"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, harness.table_name, flag],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def _stop(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait(10)
    for stream in (holder.stdin, holder.stdout):
        if stream is not None:
            stream.close()


async def _stored(harness: Harness, storage: Any) -> Any:
    session = Session(HELD_ID, "held.myshopify.com", "", False, access_token="shpat_0")
    await storage.store_session(session)
    return session


@pytest.fixture(params=[*SQL_BACKENDS, *ELSEWHERE], ids=lambda b: b.name)
async def any_sql_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    backend: Backend = request.param
    require_backend(backend)
    harness = new_harness(backend, tmp_path)
    yield harness
    await close_harness(harness)


async def test_a_dead_holder_releases_the_lock(any_sql_harness: Harness) -> None:
    """A holder killed with SIGKILL (no finally, no release): the kernel frees its flock at
    once on SQLite, its lease runs out on the servers (lock_lease=2 here)."""
    harness = any_sql_harness
    storage = harness.storage(table=harness.default_table(), lock_lease=2)
    await storage.create_table()
    await _stored(harness, storage)
    holder = _holder(harness)
    try:
        assert not await _try_lock(storage, HELD_ID, 0.3)
        holder.kill()
        holder.wait(10)
        assert await _try_lock(storage, HELD_ID, 15)
    finally:
        _stop(holder)


async def test_a_holder_that_outlived_its_lease_cannot_store_over_a_newer_pair(
    lease_harness: Harness,
) -> None:
    """The fence: a holder frozen (SIGSTOP) past its lease loses the lock to another
    worker, which stores a newer pair; thawed, the holder's replace_session finds the
    row changed and writes nothing."""
    harness = lease_harness
    storage = harness.storage(table=harness.default_table(), lock_lease=2)
    await storage.create_table()
    old = await _stored(harness, storage)
    holder = _holder(harness)
    try:
        assert not await _try_lock(storage, HELD_ID, 0.3)
        holder.send_signal(signal.SIGSTOP)  # heartbeat and all
        newer = Session(HELD_ID, old.shop, "", False, access_token="shpat_newer")
        target = storage.target if isinstance(storage, Awaited) else storage
        if isinstance(storage, Awaited):
            await asyncio.to_thread(_replace_locked, target, newer, old)
        else:
            async with target.lock_session(HELD_ID, timeout=15):
                assert await target.replace_session(newer, previous=old)
        holder.send_signal(signal.SIGCONT)
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("store\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "False"
        assert holder.wait(30) == 0
        assert await storage.load_session(HELD_ID) == newer
    finally:
        _stop(holder)


def _replace_locked(storage: Any, session: Session, previous: Session) -> None:
    with storage.lock_session(HELD_ID, timeout=15):
        assert storage.replace_session(session, previous=previous)


async def test_a_held_lease_is_a_row_of_the_lock_table(lease_harness: Harness) -> None:
    """The lock is the lock table's row while held (no advisory or named lock, which a
    pooler or a Galera node would not keep), and no row once given back."""
    harness = lease_harness
    storage = harness.storage(table=harness.default_table())
    await storage.create_table()
    locks = harness.quote(f"{harness.table_name}_locks")
    query = f"SELECT {harness.quote('id')} FROM {locks}"
    if isinstance(storage, Awaited):
        with storage.target.lock_session("offline_row.myshopify.com"):
            held = harness.sql(query)
    else:
        async with storage.lock_session("offline_row.myshopify.com"):
            held = await asyncio.to_thread(harness.sql, query)
    assert [tuple(row) for row in held] == [("offline_row.myshopify.com",)]
    assert harness.sql(query) == []


async def test_a_missing_lock_table_is_created_at_first_lock(
    lease_harness: Harness, caplog: Any
) -> None:
    """A sessions table created before lock tables existed (an upgrade): the first lock
    creates the lock table, and says so."""
    harness = lease_harness
    storage = harness.storage(table=harness.default_table())
    await storage.create_table()
    harness.sql(f"DROP TABLE {harness.quote(f'{harness.table_name}_locks')}")
    with caplog.at_level(logging.WARNING, logger="shopify_sessions"):
        assert await _try_lock(storage, "offline_new.myshopify.com", 5)
    assert any("created the lock table" in r.getMessage() for r in caplog.records)
    assert await _try_lock(storage, "offline_new.myshopify.com", 5)


@pytest.mark.parametrize(
    "backend",
    [b for b in BACKENDS if b.server == "postgresql"],
    ids=lambda b: b.name,
    indirect=True,
)
@pytest.mark.serial  # it counts the whole database's idle transactions: others' would count
async def test_a_held_lock_keeps_no_transaction_open(harness: Harness) -> None:
    """On the app's own (transactional) engine too, the lock's connection is idle, not
    idle in a transaction, while it is held: the HTTP call runs outside any transaction.

    PostgreSQL only: it is where an idle transaction costs (it pins the xmin horizon and
    meets idle_in_transaction_session_timeout), and where the server shows it; MariaDB
    lists no InnoDB transaction for a connection that read no table either way.
    """
    table = harness.default_table()
    owner = harness.storage(table=table)
    await owner.create_table()
    storage = harness.engine_storage(table=table)
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        " AND datname = current_database() AND pid <> pg_backend_pid()"
    )
    before = harness.sql(query)[0][0]
    if isinstance(storage, Awaited):
        with storage.target.lock_session("offline_t.myshopify.com"):
            during = await asyncio.to_thread(harness.sql, query)
    else:
        async with storage.lock_session("offline_t.myshopify.com"):
            during = await asyncio.to_thread(harness.sql, query)
    assert during[0][0] == before


async def test_sessions_due_for_refresh(storage: Any) -> None:
    now = utc_now()

    def offline(shop: str, refresh_in: timedelta | None, token: str | None = "shprt") -> Session:
        return Session(
            f"offline_{shop}",
            shop,
            "",
            False,
            access_token="shpat",
            expires=now + timedelta(hours=1),
            refresh_token=token,
            refresh_token_expires=None if refresh_in is None else now + refresh_in,
        )

    due = [offline(f"due-{n}.myshopify.com", timedelta(days=n)) for n in range(1, 6)]
    others = [
        offline("later.myshopify.com", timedelta(days=30)),
        offline("unknown.myshopify.com", None),
        offline("none.myshopify.com", timedelta(days=1), token=None),
        Session(
            "online_1",
            "due-1.myshopify.com",
            "",
            True,
            refresh_token="shprt",
            refresh_token_expires=now + timedelta(days=1),
            online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=1)),
        ),
    ]
    for session in [*due, *others]:
        await storage.store_session(session)
    target = storage.target if isinstance(storage, Awaited) else storage
    batches = target.sessions_due_for_refresh(now + timedelta(days=7), batch_size=2)
    found = [b async for b in batches] if hasattr(batches, "__aiter__") else list(batches)
    assert all(0 < len(batch) <= 2 for batch in found)
    assert [s for batch in found for s in batch] == due
    with pytest.raises(InvalidSessionError, match="batch_size"):
        batches = target.sessions_due_for_refresh(now, batch_size=0)
        if hasattr(batches, "__aiter__"):
            await batches.__anext__()
        else:
            next(batches)
