"""Several processes, each with several threads or tasks, on the same few hot sessions."""

from __future__ import annotations

import json
import multiprocessing
from typing import Any

from conftest import Harness
from hammer import HOT_IDS, MIN_STEPS, SHOP, consistent, run_async, run_sync, session_for
from shopify_sessions.redis import RedisSessionStorage

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
    assert operations >= PROCESSES * WORKERS * MIN_STEPS  # no worker gave up early

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


async def test_redis_shop_list_under_concurrent_writers(redis_harness: Harness) -> None:
    """Stores, loads, finds and deletes of a few hot sessions from several processes: no
    error, no torn value, and the shop's list names every session that exists (the list is
    changed by one script per key, and a delete that races a store lists the stored session
    again)."""
    assert redis_harness.redis_url is not None
    prefix = redis_harness.table_name
    run = run_async if redis_harness.backend.is_async else run_sync
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(
            run,
            [(redis_harness.redis_url, prefix, p, WORKERS, SECONDS, {}) for p in range(PROCESSES)],
        )
    errors = [e for r in results for e in r["errors"]]
    assert errors == [], f"{sum(r['error_count'] for r in results)} errors, first: {errors[:5]}"
    assert [t for r in results for t in r["torn"]] == []
    assert sum(r["operations"] for r in results) >= PROCESSES * WORKERS * MIN_STEPS

    client = redis_harness.redis_client()
    listed = client.get(f"{prefix}_{SHOP}")
    existing = {f"{prefix}_{id}" for id in HOT_IDS if client.exists(f"{prefix}_{id}")}
    storage = RedisSessionStorage(redis_harness.redis_url, key_prefix=prefix)
    found = storage.find_sessions_by_shop(SHOP)
    storage.close()
    assert {f"{prefix}_{s.id}" for s in found} == existing
    assert all(consistent(s) for s in found)
    # Every stored session is listed. A store that lists its key after a delete of it has
    # finished leaves an entry without a key: find leaves it out, and takes it off.
    assert existing <= set(json.loads(listed or "[]"))
    assert set(json.loads(client.get(f"{prefix}_{SHOP}") or "[]")) == existing
    print(f"{redis_harness.backend.name}: {sum(r['operations'] for r in results)} operations")


async def test_a_delete_racing_a_store_leaves_the_stored_session_listed(
    redis_harness: Harness,
) -> None:
    """The interleaving that loses a listed session, played step by step: a delete takes the
    key away, a store writes it back and lists it (already listed: nothing to add), then
    the delete takes the entry off the list. The delete's second look lists it again."""
    from shopify_sessions.redis._scripts import DELETE

    assert redis_harness.redis_url is not None
    storage = RedisSessionStorage(redis_harness.redis_url, key_prefix=redis_harness.table_name)
    session = session_for("hot_0", "m")
    key = f"{redis_harness.table_name}_{session.id}"
    storage.store_session(session)
    old = storage._script("delete_session", DELETE, key, [])  # the delete, step 1
    storage.store_session(session)  # the store, between the delete's two steps
    storage._unlist({storage._core.shop_of(key, old): [key]})  # the delete, step 2
    assert storage.find_sessions_by_shop(SHOP) == [session]
    assert json.loads(storage.client.get(f"{redis_harness.table_name}_{SHOP}")) == [key]
    storage.close()
