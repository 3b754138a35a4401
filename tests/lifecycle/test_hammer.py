"""Single flight under fire: processes x threads (or tasks) call ``get`` for a few shops for
several access-token lifetimes and use every token at once, against FakeShopify in strict
mode (a reused refresh token revokes the shop). Then the same without the lock, which must
fail.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import dynalite as dynalite_module
from conftest import (
    DYNAMODB_BACKENDS,
    GALERA_BACKENDS,
    POOLED_BACKENDS,
    REDIS_BACKENDS,
    SQL_BACKENDS,
    Backend,
    Harness,
    close_harness,
    dynalite,
    new_harness,
    redis_url_of,
    require_backend,
)
from lifecycle_hammer import migrate_everywhere, run_async, run_sync
from shopify_sessions.testing import FakeShopify

# 3 processes x 4 workers for 15 s on 3-second tokens: on a busy machine a token can outlive
# its second of slack (a 401), so the hammer runs with nothing else beside it.
pytestmark = pytest.mark.serial

PROCESSES, WORKERS, SHOPS = 3, 4, 3
LIFETIME, SKEW, SECONDS = 3, 1.0, 15.0  # access tokens of 3 s, refreshed 1 s before expiry


@pytest.fixture(
    params=[
        *SQL_BACKENDS,
        *POOLED_BACKENDS,
        *GALERA_BACKENDS,
        *REDIS_BACKENDS,
        *DYNAMODB_BACKENDS,
    ],
    ids=lambda b: b.name,
)
async def hammer_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """Every SQL backend, directly, through PgBouncer, and across a Galera pair (each
    process on one of its nodes, in turn); Redis and the Redis Cluster; DynamoDB (boto3 and
    aiobotocore, on the tests' dynalite)."""
    backend: Backend = request.param
    require_backend(backend)
    harness = new_harness(backend, tmp_path, redis_url_of(backend, request))
    yield harness
    await close_harness(harness)


@pytest.fixture(params=[*SQL_BACKENDS, *DYNAMODB_BACKENDS[:1]], ids=lambda b: b.name)
async def unlocked_harness(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The SQL backends, and DynamoDB: the hammer without the lock must fail on each."""
    backend: Backend = request.param
    require_backend(backend)
    harness = new_harness(backend, tmp_path)
    yield harness
    await close_harness(harness)


async def _open(harness: Harness) -> tuple[Any, dict[str, Any]]:
    """The test's storage (its table created) and the workers' engine options."""
    storage = harness.storage(table=harness.default_table())
    options: dict[str, Any] = {}
    if harness.backend.is_redis:
        return storage, options
    if harness.backend.is_dynamodb:  # the table exists; the workers sign for dynalite
        return storage, dict(dynalite_module.CREDENTIALS)
    await storage.create_table()
    if harness.backend.server == "sqlite":
        harness.sql("PRAGMA journal_mode=WAL")
        options = {"connect_args": {"timeout": 30}}
    return storage, options


def _url(harness: Harness, process: int) -> str:
    """The URL worker ``process`` opens (a Galera node of its own, in turn)."""
    if harness.redis_url is not None:
        return harness.redis_url
    if harness.backend.is_dynamodb:
        return dynalite().url(harness.table_name)
    return harness.backend.url(harness.sqlite_path, node=process)


async def _hammer(
    harness: Harness,
    fake_shopify: FakeShopify,
    *,
    locked: bool,
    seconds: float,
    latency: float = 0.0,
) -> tuple[list[str], list[dict[str, Any]]]:
    backend = harness.backend
    storage, options = await _open(harness)
    fake_shopify.reset(access_lifetime=LIFETIME, latency=latency)
    shops = [f"hammer-{harness.table_name[-8:]}-{n}.myshopify.com" for n in range(SHOPS)]
    for shop in shops:
        await storage.store_session(fake_shopify.seed_offline(shop, expires_in=0))
    run = run_async if backend.is_async else run_sync
    arguments = [
        (
            _url(harness, p),
            harness.table_name,
            fake_shopify,
            shops,
            p,
            WORKERS,
            seconds,
            SKEW,
            locked,
            options,
        )
        for p in range(PROCESSES)
    ]
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.starmap(run, arguments)
    return shops, results


async def test_one_refresh_per_lifetime_and_no_reuse(
    hammer_harness: Harness, fake_shopify: FakeShopify
) -> None:
    sql_harness = hammer_harness
    shops, results = await _hammer(sql_harness, fake_shopify, locked=True, seconds=SECONDS)
    errors = [e for r in results for e in r["errors"]]
    gets = sum(r["gets"] for r in results)
    calls: dict[int, int] = {}
    for r in results:
        for status, count in r["calls"].items():
            calls[status] = calls.get(status, 0) + count
    counters = [fake_shopify.counters(shop) for shop in shops]
    refreshes = [c.refreshes for c in counters]
    # A token is refreshed only once it is within SKEW of its expiry, and shopifyapp keeps
    # whole seconds (up to 1 s less than Shopify's expires_in): so one shop's refreshes are
    # at least LIFETIME - 1 - SKEW apart, on the stand-in's own clock: one per token.
    floor = LIFETIME - 1 - SKEW
    gaps = []
    for shop in shops:
        times = sorted(fake_shopify.refreshed_at(shop))
        gaps += [later - earlier for earlier, later in itertools.pairwise(times)]
    print(
        f"{sql_harness.backend.name}: {PROCESSES} processes x {WORKERS} workers, {SHOPS} shops,"
        f" {SECONDS:.0f} s = {SECONDS / LIFETIME:.0f} lifetimes: {gets} gets,"
        f" admin calls {calls}, refreshes {refreshes}, shortest gap {min(gaps):.2f} s"
        f" (floor {floor:.2f} s), reuses {sum(c.reuses for c in counters)},"
        f" lockouts {sum(c.lockouts for c in counters)}"
    )
    assert errors == []
    assert gets > 100
    assert set(calls) == {200}, calls  # not one 401
    for counter in counters:
        assert (counter.reuses, counter.lockouts, counter.invalid_grants) == (0, 0, 0)
    assert all(n >= SECONDS / LIFETIME for n in refreshes), refreshes
    assert min(gaps) >= floor - 0.01, gaps


async def test_without_the_lock_the_hammer_fails(
    unlocked_harness: Harness, fake_shopify: FakeShopify
) -> None:
    """The hammer can fail: without single flight, workers reuse refresh tokens and the
    strict FakeShopify locks the shops out. (A little latency at the token endpoint stands
    for the network between an app and Shopify.)"""
    sql_harness = unlocked_harness
    shops, results = await _hammer(
        sql_harness, fake_shopify, locked=False, seconds=3.0, latency=0.05
    )
    counters = [fake_shopify.counters(shop) for shop in shops]
    reuses = sum(c.reuses for c in counters)
    lockouts = sum(c.lockouts for c in counters)
    errors = sum(len(r["errors"]) for r in results)
    print(
        f"{sql_harness.backend.name} without the lock: {reuses} reuses, {lockouts} lockouts,"
        f" {errors} errors"
    )
    assert reuses > 0 and lockouts > 0 and errors > 0


async def test_legacy_migration_from_many_processes_exchanges_once(
    hammer_harness: Harness, fake_shopify: FakeShopify
) -> None:
    sql_harness = hammer_harness
    storage, options = await _open(sql_harness)
    fake_shopify.reset(latency=0.05)
    shops = [f"legacy-{sql_harness.table_name[-8:]}-{n}.myshopify.com" for n in range(SHOPS)]
    legacy = {shop: fake_shopify.seed_offline(shop, legacy=True) for shop in shops}
    for session in legacy.values():
        await storage.store_session(session)
    arguments = [
        (
            _url(sql_harness, p),
            sql_harness.table_name,
            fake_shopify,
            shops,
            p,
            WORKERS,
            sql_harness.backend.is_async,
            options,
        )
        for p in range(PROCESSES)
    ]
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.starmap(migrate_everywhere, arguments)
    assert [e for r in results for e in r["errors"]] == []
    exchanges = [fake_shopify.counters(shop).exchange_requests for shop in shops]
    print(f"{sql_harness.backend.name}: legacy exchanges per shop {exchanges}")
    assert exchanges == [1] * len(shops)
    for shop in shops:
        seen = {token for r in results for token in r["tokens"][shop]}
        assert len(seen) == 1  # every worker got the one migrated pair
        stored = await storage.load_session(legacy[shop].id)
        assert stored is not None and stored.access_token in seen
        assert fake_shopify.accepts(shop, stored.access_token)
        assert not fake_shopify.accepts(shop, legacy[shop].access_token)
