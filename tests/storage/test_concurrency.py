"""Several processes, each with several threads or tasks, on the same few hot sessions."""

from __future__ import annotations

import multiprocessing
from typing import Any

from conftest import Harness
from hammer import HOT_IDS, SHOP, consistent, run_async, run_sync

PROCESSES, WORKERS, SECONDS = 3, 4, 2.0


async def test_hot_sessions_under_concurrent_writers(sql_harness: Harness) -> None:
    backend = sql_harness.backend
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    options: dict[str, Any] = {}
    if backend.server == "sqlite":
        sql_harness.sql("PRAGMA journal_mode=WAL")
        options = {"connect_args": {"timeout": 30}}  # SQLite's busy timeout, in seconds

    run = run_async if backend.is_async else run_sync
    context = multiprocessing.get_context("spawn")
    url = backend.url(sql_harness.sqlite_path)
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(
            run,
            [(url, sql_harness.table_name, p, WORKERS, SECONDS, options) for p in range(PROCESSES)],
        )

    operations = sum(r["operations"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    torn = [t for r in results for t in r["torn"]]
    written = {marker for r in results for marker in r["written"]}
    assert errors == [], f"{sum(r['error_count'] for r in results)} errors, first: {errors[:5]}"
    assert torn == []
    assert operations > 100

    q = sql_harness.quote
    duplicates = sql_harness.sql(
        f"SELECT {q('id')} FROM {q(sql_harness.table_name)} GROUP BY {q('id')} HAVING COUNT(*) > 1"
    )
    assert duplicates == []
    for session in await storage.find_sessions_by_shop(SHOP):
        assert session.id in HOT_IDS
        assert consistent(session)
        assert session.state in written
    print(f"{backend.name}: {operations} concurrent operations, {len(written)} writes, 0 errors")
