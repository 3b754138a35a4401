"""Fleet runs: ``refresh_expiring`` and ``migrate_all_legacy`` with ``concurrency`` above 1,
several copies at once (each with a storage of its own, as a process of its own has),
against FakeShopify in strict mode (a refresh token used twice locks the shop out, a
legacy token exchanged twice is refused), on memory, SQLite, PostgreSQL and Redis, sync
(threads) and asyncio (tasks). Then the same without the lock, which must fail; an
interrupted run and the run after it; and Shopify's 429s, which slow the whole run.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    BACKENDS,
    Awaited,
    Backend,
    Harness,
    close_harness,
    new_harness,
    redis_url_of,
    require_backend,
)
from lifecycle_hammer import AsyncWithoutLock, WithoutLock
from shopify_sessions import InvalidShopError
from shopify_sessions.testing import FakeShopify
from shopify_sessions.testing._transport import AsyncRoutingTransport, RoutingTransport, route
from shopify_sessions.tokens import AsyncOfflineTokens, OfflineTokens, RefreshReport
from shopify_sessions.tokens._fleet import PerTaskRun

FLEET_BACKENDS = [
    b
    for b in BACKENDS
    if b.name
    in {
        "memory",
        "memory-async",
        "sqlite3",
        "aiosqlite",
        "psycopg",
        "asyncpg",
        "redis",
        "redis-async",
    }
]
MEMORY_BACKENDS = [b for b in BACKENDS if b.server == "memory"]
COPIES, CONCURRENCY, SHOPS, BATCH = 3, 4, 24, 5
LATENCY = 0.02  # the network between an app and Shopify, shortened


@pytest.fixture(params=FLEET_BACKENDS, ids=lambda b: b.name)
async def fleet_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    backend: Backend = request.param
    require_backend(backend)
    harness = new_harness(backend, tmp_path, redis_url_of(backend, request))
    yield harness
    await close_harness(harness)


@pytest.fixture(params=MEMORY_BACKENDS, ids=lambda b: b.name)
async def memory_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = new_harness(request.param, tmp_path)
    yield harness
    await close_harness(harness)


async def _storages(harness: Harness, copies: int) -> list[Any]:
    """One storage per copy of the run (the sync ones unwrapped), on the test's table:
    each with its own engine or client; in memory, one storage for all (a process's)."""
    backend = harness.backend
    if backend.is_sql:
        options: dict[str, Any] = {}
        if backend.server == "sqlite":
            options = {"engine_options": {"connect_args": {"timeout": 30}}}
        first = harness.storage(table=harness.default_table(), **options)
        await first.create_table()
        if backend.server == "sqlite":
            harness.sql("PRAGMA journal_mode=WAL")
        others = [harness.storage(table=harness.table_name, **options) for _ in range(copies - 1)]
        storages = [first, *others]
    elif backend.is_redis:
        storages = [harness.storage() for _ in range(copies)]
    else:
        storages = [harness.storage()] * copies
    return [s.target if isinstance(s, Awaited) else s for s in storages]


class PerTaskTokens(OfflineTokens):
    """OfflineTokens whose fleet runs back off per shop, not together."""

    __slots__ = ()

    @staticmethod
    def _new_run(client: Any) -> Any:
        return PerTaskRun(client)


class AsyncPerTaskTokens(AsyncOfflineTokens):
    __slots__ = ()

    @staticmethod
    def _new_run(client: Any) -> Any:
        return PerTaskRun(client)


class Fleet:
    """Copies of the run's OfflineTokens (or AsyncOfflineTokens), each on its storage and
    HTTP client, run all at once: threads for the sync ones, tasks for the asyncio ones."""

    def __init__(
        self, fake: FakeShopify, storages: list[Any], is_async: bool, per_task: bool = False
    ) -> None:
        self.is_async, self._closers = is_async, []
        self.copies = []
        for storage in storages:
            if is_async:
                client = fake.async_http_client()
                self._closers.append(client.aclose)
                kind: Any = AsyncPerTaskTokens if per_task else AsyncOfflineTokens
            else:
                client = fake.http_client()
                self._closers.append(client.close)
                kind = PerTaskTokens if per_task else OfflineTokens
            self.copies.append(
                kind(
                    storage,
                    client_id=fake.client_id,
                    client_secret=fake.client_secret,
                    http_client=client,
                )
            )

    async def run(self, method: str, **arguments: Any) -> list[RefreshReport]:
        """Each copy's ``method(**arguments)``, all started at once."""
        if self.is_async:
            calls = [getattr(tokens, method)(**arguments) for tokens in self.copies]
        else:
            calls = [
                asyncio.to_thread(getattr(tokens, method), **arguments) for tokens in self.copies
            ]
        return list(await asyncio.gather(*calls))

    async def close(self) -> None:
        for close in self._closers:
            result = close()
            if result is not None:
                await result


async def _seed(
    harness: Harness, fake: FakeShopify, storage: Any, *, legacy: bool = False, n: int = SHOPS
) -> list[str]:
    shops = [f"fleet-{harness.table_name[-8:]}-{i:03}.myshopify.com" for i in range(n)]
    for shop in shops:
        session = fake.seed_offline(shop, legacy=legacy, refresh_token_expires_in=86400)
        result = storage.store_session(session)
        if asyncio.iscoroutine(result):
            await result
    return shops


async def _load(storage: Any, id: str) -> Any:
    result = storage.load_session(id)
    return await result if asyncio.iscoroutine(result) else result


async def _fleet(
    harness: Harness,
    fake: FakeShopify,
    *,
    legacy: bool = False,
    locked: bool = True,
    copies: int = COPIES,
    n: int = SHOPS,
    per_task: bool = False,
) -> tuple[Fleet, list[Any], list[str]]:
    storages = await _storages(harness, copies)
    shops = await _seed(harness, fake, storages[0], legacy=legacy, n=n)
    if not locked:
        without = AsyncWithoutLock if harness.backend.is_async else WithoutLock
        storages = [without(storage) for storage in storages]
    return Fleet(fake, storages, harness.backend.is_async, per_task), storages, shops


async def test_copies_at_once_refresh_each_shop_once(
    fleet_harness: Harness, fake_shopify: FakeShopify
) -> None:
    fake_shopify.reset(latency=LATENCY)
    fleet, storages, shops = await _fleet(fleet_harness, fake_shopify)
    try:
        reports = await fleet.run(
            "refresh_expiring",
            within=timedelta(days=7),
            batch_size=BATCH,
            concurrency=CONCURRENCY,
        )
    finally:
        await fleet.close()
    counters = {shop: fake_shopify.counters(shop) for shop in shops}
    print(
        f"{fleet_harness.backend.name}: refreshed per copy {[len(r.refreshed) for r in reports]},"
        f" found done elsewhere {[len(r.done_elsewhere) for r in reports]}"
    )
    assert all(report.ok for report in reports)
    for shop, counter in counters.items():
        assert (counter.refresh_requests, counter.refreshes) == (1, 1), (shop, counter)
        assert (counter.reuses, counter.lockouts) == (0, 0), (shop, counter)
    # Each shop refreshed by one copy, and listed so in that copy's report only.
    assert sorted(s for r in reports for s in r.refreshed) == shops
    for report in reports:
        assert set(report.outcomes) <= set(shops)
        assert set(report.outcomes.values()) <= {"refreshed", "done_elsewhere"}
    for shop in shops:
        stored = await _load(storages[0], f"offline_{shop}")
        assert fake_shopify.accepts(shop, stored.access_token)


async def test_without_the_lock_copies_refresh_twice(
    fleet_harness: Harness, fake_shopify: FakeShopify
) -> None:
    """The test above can fail: without the session lock, copies refresh the same shops
    with the same refresh token, and the strict FakeShopify locks them out."""
    fake_shopify.reset(latency=LATENCY * 2)
    fleet, _, shops = await _fleet(fleet_harness, fake_shopify, locked=False)
    try:
        reports = await fleet.run(
            "refresh_expiring",
            within=timedelta(days=7),
            batch_size=BATCH,
            concurrency=CONCURRENCY,
        )
    finally:
        await fleet.close()
    counters = [fake_shopify.counters(shop) for shop in shops]
    reuses = sum(c.reuses for c in counters)
    print(f"{fleet_harness.backend.name} without the lock: {reuses} reuses")
    assert reuses > 0
    assert sum(c.refresh_requests for c in counters) > len(shops)
    assert not all(report.ok for report in reports)


async def test_copies_at_once_exchange_each_legacy_token_once(
    fleet_harness: Harness, fake_shopify: FakeShopify
) -> None:
    fake_shopify.reset(latency=LATENCY)
    fleet, storages, shops = await _fleet(fleet_harness, fake_shopify, legacy=True)
    legacy = {shop: (await _load(storages[0], f"offline_{shop}")).access_token for shop in shops}
    try:
        reports = await fleet.run("migrate_all_legacy", batch_size=BATCH, concurrency=CONCURRENCY)
    finally:
        await fleet.close()
    assert all(report.ok for report in reports)
    for shop in shops:
        counter = fake_shopify.counters(shop)
        assert (counter.exchange_requests, counter.exchanges) == (1, 1), (shop, counter)
        assert counter.exchange_repeats == 0
        stored = await _load(storages[0], f"offline_{shop}")
        assert stored.refresh_token and stored.expires is not None
        assert fake_shopify.accepts(shop, stored.access_token)
        assert not fake_shopify.accepts(shop, legacy[shop])
    assert sorted(s for r in reports for s in r.refreshed) == shops


async def test_without_the_lock_copies_exchange_twice(
    fleet_harness: Harness, fake_shopify: FakeShopify
) -> None:
    fake_shopify.reset(latency=LATENCY * 2)
    fleet, _, shops = await _fleet(fleet_harness, fake_shopify, legacy=True, locked=False)
    try:
        await fleet.run("migrate_all_legacy", shops=shops, concurrency=CONCURRENCY)
    finally:
        await fleet.close()
    repeats = sum(fake_shopify.counters(shop).exchange_repeats for shop in shops)
    print(f"{fleet_harness.backend.name} without the lock: {repeats} repeated exchanges")
    assert repeats > 0


class Stop(Exception):
    """What stops a run halfway (as a Ctrl-C would)."""


async def test_a_run_stopped_halfway_and_run_again_refreshes_each_shop_once(
    fleet_harness: Harness, fake_shopify: FakeShopify
) -> None:
    fake_shopify.reset(latency=LATENCY)
    fleet, _, shops = await _fleet(fleet_harness, fake_shopify, copies=1)
    done = 0

    def stop_at_ten(rows: int) -> None:
        nonlocal done
        done += rows
        if done == 10:
            raise Stop

    try:
        with pytest.raises(Stop):
            await fleet.run(
                "refresh_expiring",
                within=timedelta(days=7),
                batch_size=BATCH,
                concurrency=CONCURRENCY,
                progress=stop_at_ten,
            )
        stopped = sum(fake_shopify.counters(shop).refreshes for shop in shops)
        (report,) = await fleet.run(
            "refresh_expiring", within=timedelta(days=7), concurrency=CONCURRENCY
        )
    finally:
        await fleet.close()
    # The shops in flight when it stopped finished; none started after.
    assert 10 <= stopped <= 10 + CONCURRENCY - 1
    assert done == stopped
    assert report.ok and len(report.refreshed) == len(shops) - stopped
    for shop in shops:
        counter = fake_shopify.counters(shop)
        assert (counter.refreshes, counter.reuses) == (1, 0), (shop, counter)


async def test_named_shops_absent_or_not_legacy_are_skipped(
    memory_harness: Harness, fake_shopify: FakeShopify
) -> None:
    fleet, storages, shops = await _fleet(memory_harness, fake_shopify, legacy=True, n=3, copies=1)
    expiring = fake_shopify.seed_offline(f"expiring-{memory_harness.table_name[-8:]}")
    result = storages[0].store_session(expiring)
    if asyncio.iscoroutine(result):
        await result
    absent = f"absent-{memory_harness.table_name[-8:]}.myshopify.com"
    try:
        (report,) = await fleet.run(
            "migrate_all_legacy", shops=[*shops, expiring.shop, absent], batch_size=2
        )
    finally:
        await fleet.close()
    assert sorted(report.refreshed) == shops
    assert sorted(report.skipped) == sorted([expiring.shop, absent])
    assert report.outcomes[absent] == "skipped" and report.ok
    assert fake_shopify.counters(expiring.shop).token_requests == 0


async def test_bad_fleet_input_is_refused_before_anything_runs(
    memory_harness: Harness, fake_shopify: FakeShopify
) -> None:
    fleet, _, _ = await _fleet(memory_harness, fake_shopify, n=1, copies=1)
    try:
        for concurrency in (0, 257, True, 1.5):
            with pytest.raises(ValueError, match="concurrency"):
                await fleet.run("refresh_expiring", concurrency=concurrency)
            with pytest.raises(ValueError, match="concurrency"):
                await fleet.run("migrate_all_legacy", concurrency=concurrency)
        with pytest.raises(TypeError, match="iterable"):
            await fleet.run("migrate_all_legacy", shops="my-shop")
        with pytest.raises(InvalidShopError):
            await fleet.run("migrate_all_legacy", shops=["not a shop"])
    finally:
        await fleet.close()
    assert fake_shopify.totals().token_requests == 0


# --- Shopify's 429s ------------------------------------------------------------------

RATE, RATE_SHOPS, RATE_CONCURRENCY = 25, 150, 16
#: The 429s of the first second, then a few in each second after.
RATE_BOUND = RATE_CONCURRENCY + 3 * (RATE_SHOPS // RATE)


async def _rate_limited_run(
    harness: Harness, fake: FakeShopify, *, per_task: bool = False
) -> tuple[RefreshReport, list[str]]:
    fake.reset(latency=0.01)
    fleet, _, shops = await _fleet(harness, fake, copies=1, n=RATE_SHOPS, per_task=per_task)
    fake.limit_rate(RATE)
    try:
        (report,) = await fleet.run(
            "refresh_expiring", within=timedelta(days=7), concurrency=RATE_CONCURRENCY
        )
    finally:
        await fleet.close()
    return report, shops


@pytest.mark.serial  # counts 429s a second: a loaded machine sends fewer a second
async def test_a_429_slows_the_whole_run_and_every_shop_is_refreshed_once(
    memory_harness: Harness, fake_shopify: FakeShopify
) -> None:
    report, shops = await _rate_limited_run(memory_harness, fake_shopify)
    totals = fake_shopify.totals()
    print(
        f"{memory_harness.backend.name}: {totals.rate_limited} 429s for {len(shops)} shops"
        f" at {RATE}/s, concurrency {RATE_CONCURRENCY}"
    )
    assert report.ok and sorted(report.refreshed) == shops
    assert (totals.refreshes, totals.reuses) == (len(shops), 0)
    assert totals.rate_limited > 0  # the limit was met
    assert report.rate_limited == totals.rate_limited
    # The first 429 closes the gate for every worker, and the pace learnt from it keeps
    # the later seconds under the limit: the 429s of the first second, and a few after
    # (each worker on a backoff of its own meets one every second: the test below).
    assert totals.rate_limited <= RATE_BOUND


@pytest.mark.serial  # counts 429s a second: a loaded machine sends fewer a second
async def test_with_a_backoff_per_task_the_429s_pile_up(
    memory_harness: Harness, fake_shopify: FakeShopify
) -> None:
    """The bound above can fail: when each task backs off alone, every worker meets a
    429 in every second of the run."""
    report, shops = await _rate_limited_run(memory_harness, fake_shopify, per_task=True)
    totals = fake_shopify.totals()
    print(f"{memory_harness.backend.name}, backoff per task: {totals.rate_limited} 429s")
    assert report.ok and totals.refreshes == len(shops)
    assert totals.rate_limited > RATE_BOUND


# --- network errors ----------------------------------------------------------------


def _closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Refusing:
    """Sends the first ``refusals`` requests to a closed port (the OS refuses the
    connection: the request never leaves), the rest to FakeShopify."""

    def __init__(self, refusals: int) -> None:
        self.refusals, self.sent, self._guard = refusals, 0, threading.Lock()
        self.closed = httpx.URL(f"http://127.0.0.1:{_closed_port()}")

    def refused(self, request: httpx.Request) -> bool:
        with self._guard:
            self.sent += 1
            if self.sent > self.refusals:
                return False
        route(request, self.closed)
        return True


class RefusingTransport(RoutingTransport):
    def __init__(self, url: str, refusing: Refusing) -> None:
        super().__init__(url)
        self.refusing = refusing

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.refusing.refused(request):
            return httpx.HTTPTransport.handle_request(self, request)
        return super().handle_request(request)


class AsyncRefusingTransport(AsyncRoutingTransport):
    def __init__(self, url: str, refusing: Refusing) -> None:
        super().__init__(url)
        self.refusing = refusing

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refusing.refused(request):
            return await httpx.AsyncHTTPTransport.handle_async_request(self, request)
        return await super().handle_async_request(request)


async def _refused_run(
    harness: Harness, fake: FakeShopify, refusals: int, *, timeout: float = 10.0
) -> tuple[RefreshReport, list[str], Refusing]:
    (storage,) = await _storages(harness, 1)
    shops = await _seed(harness, fake, storage, n=4)
    refusing = Refusing(refusals)
    options: dict[str, Any] = {"client_id": fake.client_id, "client_secret": fake.client_secret}
    if harness.backend.is_async:
        async with httpx.AsyncClient(
            transport=AsyncRefusingTransport(fake.url, refusing), timeout=timeout
        ) as client:
            tokens = AsyncOfflineTokens(storage, http_client=client, **options)
            report = await tokens.refresh_expiring(concurrency=2)
    else:
        with httpx.Client(
            transport=RefusingTransport(fake.url, refusing), timeout=timeout
        ) as sync_client:
            sync_tokens = OfflineTokens(storage, http_client=sync_client, **options)
            report = await asyncio.to_thread(sync_tokens.refresh_expiring, concurrency=2)
    return report, shops, refusing


async def test_a_refused_connection_is_tried_again(
    memory_harness: Harness, fake_shopify: FakeShopify
) -> None:
    report, shops, refusing = await _refused_run(memory_harness, fake_shopify, refusals=3)
    assert report.ok and sorted(report.refreshed) == shops
    assert refusing.sent == len(shops) + 3
    for shop in shops:
        counter = fake_shopify.counters(shop)
        assert (counter.refreshes, counter.reuses) == (1, 0)


async def test_connections_refused_every_time_fail_the_shop_after_six_tries(
    memory_harness: Harness, fake_shopify: FakeShopify
) -> None:
    report, shops, refusing = await _refused_run(memory_harness, fake_shopify, refusals=10**6)
    assert sorted(report.failed) == shops
    assert {error.code for error in report.failed.values()} == {"network_error"}
    assert refusing.sent == 6 * len(shops)
    assert fake_shopify.totals().token_requests == 0


async def test_a_request_that_may_have_reached_shopify_is_not_tried_again(
    memory_harness: Harness, fake_shopify: FakeShopify
) -> None:
    """A read timeout: Shopify may have renewed the pair (here it did), and a refresh token
    is spent once used, so the run does not send it again: the shop is reported failed."""
    fake_shopify.reset(latency=0.5)
    report, shops, _ = await _refused_run(memory_harness, fake_shopify, refusals=0, timeout=0.2)
    assert sorted(report.failed) == shops
    assert {error.code for error in report.failed.values()} == {"network_error"}
    await asyncio.sleep(1.0)  # the fake answers (to nobody) after its latency
    for shop in shops:
        assert fake_shopify.counters(shop).refresh_requests == 1
