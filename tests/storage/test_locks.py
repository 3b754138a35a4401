"""The session lock on every backend: exclusive across storages, threads, tasks and
processes; bounded; released by the server (or the kernel) when its holder dies."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from conftest import BACKENDS, Awaited, Harness
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


def _hold(storage: Any, id: str) -> Any:
    return storage.target.lock_session(id) if isinstance(storage, Awaited) else None


async def test_the_lock_is_exclusive_and_bounded(harness: Harness) -> None:
    """Two storages on one database (one storage for memory) exclude each other."""
    first = harness.storage(table=harness.default_table())
    second = (
        first if harness.backend.server == "memory" else harness.storage(table=harness.table_name)
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
    """Eight workers increment one counter under the lock; none is lost."""
    storage = harness.storage(table=harness.default_table())
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

        def work() -> None:
            for _ in range(10):
                with storage.target.lock_session("offline_c.myshopify.com"):
                    critical()

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join)
    else:

        async def work_async() -> None:
            for _ in range(10):
                async with storage.lock_session("offline_c.myshopify.com"):
                    counter["inside"] += 1
                    counter["overlaps"] += counter["inside"] > 1
                    value = counter["value"]
                    await asyncio.sleep(0.002)
                    counter["value"] = value + 1
                    counter["inside"] -= 1

        await asyncio.gather(*(work_async() for _ in range(8)))
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
    from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage
    url, table, is_async = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    async def main():
        storage = AsyncSQLAlchemySessionStorage(url, table=table)
        async with storage.lock_session("offline_dead.myshopify.com"):
            print("held", flush=True)
            await asyncio.sleep(120)
    if is_async:
        asyncio.run(main())
    else:
        storage = SQLAlchemySessionStorage(url, table=table)
        with storage.lock_session("offline_dead.myshopify.com"):
            print("held", flush=True)
            time.sleep(120)
    """
)


async def test_a_dead_holder_releases_the_lock(sql_harness: Harness) -> None:
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    url = sql_harness.backend.url(sql_harness.sqlite_path)
    flag = "1" if sql_harness.backend.is_async else "0"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, sql_harness.table_name, flag],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert not await _try_lock(storage, "offline_dead.myshopify.com", 0.3)
        holder.kill()  # SIGKILL: no finally, no release
        holder.wait(10)
        assert await _try_lock(storage, "offline_dead.myshopify.com", 15)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


@pytest.mark.parametrize(
    "backend",
    [b for b in BACKENDS if b.server == "postgresql"],
    ids=lambda b: b.name,
    indirect=True,
)
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
