"""Single flight under fire: processes x threads (or tasks) call ``get`` for a few shops for
several access-token lifetimes and use every token at once, against the strict stand-in
(a reused refresh token revokes the shop). Then the same without the lock, which must fail.
"""

from __future__ import annotations

import itertools
import multiprocessing
from typing import Any

import pytest

from conftest import (
    REDIS_BACKENDS,
    SQL_BACKENDS,
    Backend,
    Harness,
    close_harness,
    new_harness,
    redis_url_of,
    require_server,
)
from lifecycle_hammer import migrate_everywhere, run_async, run_sync
from standin_client import StandIn, admin_call

PROCESSES, WORKERS, SHOPS = 3, 4, 3
# Every storage with a shared lock: the SQL ones, Redis and the Redis Cluster.
LIFETIME, SKEW, SECONDS = 3, 1.0, 15.0  # access tokens of 3 s, refreshed 1 s before expiry


@pytest.fixture(params=[*SQL_BACKENDS, *REDIS_BACKENDS], ids=lambda b: b.name)
async def locking_harness(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A harness of a storage with a shared lock: SQL, Redis or the Redis Cluster."""
    backend: Backend = request.param
    require_server(backend.server)
    harness = new_harness(backend, tmp_path, redis_url_of(backend, request))
    yield harness
    await close_harness(harness)


async def _open(harness: Harness) -> tuple[Any, str, dict[str, Any]]:
    """The test's storage (its table created), the URL workers open, their engine options."""
    storage = harness.storage(table=harness.default_table())
    if harness.backend.is_redis:
        assert harness.redis_url is not None
        return storage, harness.redis_url, {}
    await storage.create_table()
    options: dict[str, Any] = {}
    if harness.backend.server == "sqlite":
        harness.sql("PRAGMA journal_mode=WAL")
        options = {"connect_args": {"timeout": 30}}
    return storage, harness.backend.url(harness.sqlite_path), options


async def _hammer(
    harness: Harness, standin: StandIn, *, locked: bool, seconds: float, latency: float = 0.0
) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
    backend = harness.backend
    storage, url, options = await _open(harness)
    standin.reset(access_lifetime=LIFETIME, latency=latency)
    shops = [f"hammer-{harness.table_name[-8:]}-{n}.myshopify.com" for n in range(SHOPS)]
    for shop in shops:
        await storage.store_session(standin.seeded_session(shop, access_expires_in=0))
    run = run_async if backend.is_async else run_sync
    arguments = [
        (url, harness.table_name, standin.port, shops, p, WORKERS, seconds, SKEW, locked, options)
        for p in range(PROCESSES)
    ]
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.starmap(run, arguments)
    return shops, results, standin.stats()


async def test_one_refresh_per_lifetime_and_no_reuse(
    locking_harness: Harness, standin: StandIn
) -> None:
    shops, results, stats = await _hammer(locking_harness, standin, locked=True, seconds=SECONDS)
    errors = [e for r in results for e in r["errors"]]
    gets = sum(r["gets"] for r in results)
    calls: dict[int, int] = {}
    for r in results:
        for status, count in r["calls"].items():
            calls[status] = calls.get(status, 0) + count
    counts = [stats["counts"].get(shop, {}) for shop in shops]
    refreshes = [c.get("refreshes", 0) for c in counts]
    # A token is refreshed only once it is within SKEW of its expiry, and shopifyapp keeps
    # whole seconds (up to 1 s less than Shopify's expires_in): so one shop's refreshes are
    # at least LIFETIME - 1 - SKEW apart, on the stand-in's own clock: one per token.
    floor = LIFETIME - 1 - SKEW
    gaps = []
    for shop in shops:
        times = sorted(at for name, at in stats["issued"] if name == shop)
        gaps += [later - earlier for earlier, later in itertools.pairwise(times)]
    print(
        f"{locking_harness.backend.name}: {PROCESSES} processes x {WORKERS} workers, {SHOPS} shops,"
        f" {SECONDS:.0f} s = {SECONDS / LIFETIME:.0f} lifetimes: {gets} gets,"
        f" admin calls {calls}, refreshes {refreshes}, shortest gap {min(gaps):.2f} s"
        f" (floor {floor:.2f} s), reuses {sum(c.get('reuses', 0) for c in counts)},"
        f" lockouts {sum(c.get('lockouts', 0) for c in counts)}"
    )
    assert errors == []
    assert gets > 100
    assert set(calls) == {200}, calls  # not one 401
    for count in counts:
        assert count.get("reuses", 0) == 0
        assert count.get("lockouts", 0) == 0
        assert count.get("invalid_grant", 0) == 0
    assert all(n >= SECONDS / LIFETIME for n in refreshes), refreshes
    assert min(gaps) >= floor - 0.01, gaps


async def test_without_the_lock_the_hammer_fails(
    locking_harness: Harness, standin: StandIn
) -> None:
    """The hammer can fail: without single flight, workers reuse refresh tokens and the
    strict stand-in locks the shops out. (A little latency at the token endpoint stands
    for the network between an app and Shopify.)"""
    shops, results, stats = await _hammer(
        locking_harness, standin, locked=False, seconds=3.0, latency=0.05
    )
    counts = [stats["counts"].get(shop, {}) for shop in shops]
    reuses = sum(c.get("reuses", 0) for c in counts)
    lockouts = sum(c.get("lockouts", 0) for c in counts)
    errors = sum(len(r["errors"]) for r in results)
    print(
        f"{locking_harness.backend.name} without the lock: {reuses} reuses, {lockouts} lockouts,"
        f" {errors} errors"
    )
    assert reuses > 0 and lockouts > 0 and errors > 0


async def test_legacy_migration_from_many_processes_exchanges_once(
    locking_harness: Harness, standin: StandIn
) -> None:
    storage, url, options = await _open(locking_harness)
    standin.reset(latency=0.05)
    shops = [f"legacy-{locking_harness.table_name[-8:]}-{n}.myshopify.com" for n in range(SHOPS)]
    legacy = {shop: standin.seeded_session(shop, kind="legacy") for shop in shops}
    for session in legacy.values():
        await storage.store_session(session)
    arguments = [
        (
            url,
            locking_harness.table_name,
            standin.port,
            shops,
            p,
            WORKERS,
            locking_harness.backend.is_async,
            options,
        )
        for p in range(PROCESSES)
    ]
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.starmap(migrate_everywhere, arguments)
    assert [e for r in results for e in r["errors"]] == []
    counts = {shop: standin.counts(shop) for shop in shops}
    exchanges = [c.get("exchange_requests") for c in counts.values()]
    print(f"{locking_harness.backend.name}: legacy exchanges per shop {exchanges}")
    with standin.client() as client:
        for shop in shops:
            assert counts[shop]["exchange_requests"] == 1
            seen = {token for r in results for token in r["tokens"][shop]}
            assert len(seen) == 1  # every worker got the one migrated pair
            stored = await storage.load_session(legacy[shop].id)
            assert stored is not None and stored.access_token in seen
            assert admin_call(client, shop, stored.access_token) == 200
            assert admin_call(client, shop, legacy[shop].access_token) == 401
