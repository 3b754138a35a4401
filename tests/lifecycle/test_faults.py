"""Faults around a refresh, for real: the database connection dies while the new pair is
stored, the worker dies while it holds the lock mid-refresh."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, text

from conftest import Awaited, Harness
from shopify_sessions import ReauthorizationRequiredError, TokenPersistenceError
from shopify_sessions._time import utc_now
from shopify_sessions.testing import FakeShopify
from shopify_sessions.tokens import AsyncOfflineTokens, OfflineTokens


@asynccontextmanager
async def failing_writes(
    harness: Harness, storage: Any, times: int | None
) -> AsyncIterator[list[int]]:
    """The next ``times`` writes of a session (all, with None) fail for real: on PostgreSQL
    and MariaDB the connection's server process is killed from outside as the INSERT or
    UPDATE starts; on SQLite the connection is made read-only. Yields the list of failures
    so far."""
    engine = (storage.target if isinstance(storage, Awaited) else storage).engine
    sync_engine = getattr(engine, "sync_engine", engine)
    failures: list[int] = []
    server = harness.backend.server

    def before(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            return
        if f"{harness.table_name}_locks" in statement:  # the session lock's lease: not a write
            return
        failing = times is None or len(failures) < times
        if server == "sqlite":
            cursor.execute(f"PRAGMA query_only = {'ON' if failing else 'OFF'}")
        elif failing:
            cursor.execute(
                "SELECT pg_backend_pid()" if server == "postgresql" else "SELECT CONNECTION_ID()"
            )
            pid = cursor.fetchone()[0]
            kill = (
                "SELECT pg_terminate_backend(:pid)"
                if server == "postgresql"
                else f"KILL {int(pid)}"
            )
            assert harness.raw is not None
            with harness.raw.connect() as other:
                other.execute(text(kill), {"pid": pid})
                other.commit()
        if failing:
            failures.append(1)

    event.listen(sync_engine, "before_cursor_execute", before)
    try:
        yield failures
    finally:
        event.remove(sync_engine, "before_cursor_execute", before)
        if server == "sqlite":  # leave no pooled connection read-only
            disposed = engine.dispose()
            if disposed is not None:
                await disposed


@pytest.fixture
async def table_storage(sql_harness: Harness) -> Any:
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    return storage


@pytest.fixture
async def make_tokens(table_storage: Any, fake_shopify: FakeShopify) -> AsyncIterator[Any]:
    """Makes OfflineTokens on the test's SQL storage, routed to FakeShopify."""
    clients: list[Any] = []

    def make(**options: Any) -> Any:
        options = {
            "client_id": fake_shopify.client_id,
            "client_secret": fake_shopify.client_secret,
            **options,
        }
        if isinstance(table_storage, Awaited):
            clients.append(fake_shopify.http_client())
            return Awaited(OfflineTokens(table_storage.target, http_client=clients[-1], **options))
        clients.append(fake_shopify.async_http_client())
        return AsyncOfflineTokens(table_storage, http_client=clients[-1], **options)

    yield make
    for client in clients:
        closed = client.aclose() if hasattr(client, "aclose") else client.close()
        if closed is not None:
            await closed


async def test_a_store_that_fails_is_retried_and_nothing_is_lost(
    sql_harness: Harness,
    table_storage: Any,
    make_tokens: Any,
    fake_shopify: FakeShopify,
    shop: str,
    caplog: Any,
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    await table_storage.store_session(old)
    tokens = make_tokens()
    with caplog.at_level(logging.WARNING, logger="shopify_sessions"):
        async with failing_writes(sql_harness, table_storage, times=3) as failures:
            renewed = await tokens.get(shop)
    assert len(failures) == 3
    assert renewed is not None and renewed.access_token != old.access_token
    assert await table_storage.load_session(old.id) == renewed
    assert fake_shopify.counters(shop).refreshes == 1
    assert fake_shopify.accepts(shop, renewed.access_token)
    assert any("trying again" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        for token in (
            old.access_token,
            old.refresh_token,
            renewed.access_token,
            renewed.refresh_token,
        ):
            assert token and token not in record.getMessage()


@pytest.mark.parametrize("mode", ["grace", "strict"])
async def test_when_every_store_fails_the_old_pair_stays(
    sql_harness: Harness,
    table_storage: Any,
    make_tokens: Any,
    fake_shopify: FakeShopify,
    shop: str,
    mode: str,
) -> None:
    """Under Shopify's grace (since 2026-08-28) the next call recovers with the old pair;
    a strict server would need the merchant back, and says so as a typed error."""
    fake_shopify.reset(mode=mode)
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    await table_storage.store_session(old)
    tokens = make_tokens(store_attempts=3)
    async with failing_writes(sql_harness, table_storage, times=None):
        with pytest.raises(TokenPersistenceError) as raised:
            await tokens.get(shop)
    assert raised.value.shop == shop and raised.value.__cause__ is not None
    assert await table_storage.load_session(old.id) == old  # untouched
    if mode == "grace":
        recovered = await tokens.get(shop)
        assert recovered is not None and recovered.expires and recovered.expires > utc_now()
        assert fake_shopify.accepts(shop, recovered.access_token)
        assert fake_shopify.counters(shop).grace_reuses == 1
        assert fake_shopify.counters(shop).lockouts == 0
    else:
        with pytest.raises(ReauthorizationRequiredError):
            await tokens.get(shop)


HOLDER = textwrap.dedent(
    """
    import sys
    from shopify_sessions.tokens import OfflineTokens
    from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
    from shopify_sessions.testing import FakeShopify
    url, table, shopify = sys.argv[1], sys.argv[2], FakeShopify.attach(sys.argv[3])
    storage = SQLAlchemySessionStorage(url, table=table)
    tokens = OfflineTokens(storage, client_id=shopify.client_id,
                           client_secret=shopify.client_secret,
                           http_client=shopify.http_client(timeout=60))
    print("refreshing", flush=True)
    tokens.get(sys.argv[4])
    """
)


async def test_a_worker_killed_while_refreshing_frees_the_lock(
    sql_harness: Harness, table_storage: Any, make_tokens: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    """A worker is killed while it holds the lock, waiting on Shopify; the database (or the
    kernel, for SQLite) releases its lock, and the next worker recovers the shop: Shopify
    answered the dead worker's refresh, which was lost with it, and its grace keeps the old
    refresh token usable."""
    fake_shopify.reset(mode="grace", latency=1.0)
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    await table_storage.store_session(old)
    url = sql_harness.backend.url(sql_harness.sqlite_path).replace("+aiosqlite", "+pysqlite")
    url = url.replace("+asyncpg", "+psycopg").replace("+aiomysql", "+pymysql")
    worker = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, sql_harness.table_name, fake_shopify.url, shop],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "refreshing"
        for _ in range(200):  # until its refresh reached Shopify, which takes 1 s to answer
            if fake_shopify.counters(shop).token_requests:
                break
            time.sleep(0.05)
        worker.kill()
        worker.wait(10)
    finally:
        worker.kill()
        worker.wait(10)
        if worker.stdout is not None:
            worker.stdout.close()
    tokens = make_tokens(lock_timeout=20)
    recovered = await tokens.get(shop)
    assert recovered is not None and recovered.access_token != old.access_token
    assert fake_shopify.accepts(shop, recovered.access_token)
    counters = fake_shopify.counters(shop)
    assert counters.refresh_requests == 2 and counters.lockouts == 0


async def test_a_legacy_exchange_whose_store_fails_is_recovered_under_grace(
    sql_harness: Harness, table_storage: Any, make_tokens: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    """Shopify answers a repeated legacy exchange with the same pair (for 7 days, until the
    pair is used), so a pair lost to a failed store is fetched again, not lost."""
    fake_shopify.reset(mode="grace")
    legacy = fake_shopify.seed_offline(shop, legacy=True)
    await table_storage.store_session(legacy)
    tokens = make_tokens(store_attempts=2)
    async with failing_writes(sql_harness, table_storage, times=None):
        with pytest.raises(TokenPersistenceError):
            await tokens.migrate_legacy(shop)
    assert await table_storage.load_session(legacy.id) == legacy
    migrated = await tokens.migrate_legacy(shop)
    assert migrated is not None and migrated.refresh_token
    counters = fake_shopify.counters(shop)
    assert (counters.exchanges, counters.exchange_repeats) == (1, 1)
    assert fake_shopify.accepts(shop, migrated.access_token)
