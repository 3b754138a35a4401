"""Through a transaction pooler (the tests' PgBouncer in transaction mode, pool of 4) and on
servers whose locks can't be trusted: nothing lost, every lock exclusive, whether or not the
user said there is a pooler; and what breaks without that care.

The battery, lock and lifecycle tests also run through PgBouncer (conftest.POOLED_BACKENDS)
and on a Galera pair (conftest.GALERA_BACKENDS); this file holds what is particular to
poolers and to telling servers apart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import URL, MetaData, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from conftest import (
    POSTGRESQL_URL,
    galera_pair,
    pgbouncer,
    require_server,
    unique_table_name,
)
from pgbouncer import PgBouncer
from shopify_sessions import (
    ConnectionPoolerError,
    DatabaseURLError,
    LockTimeoutError,
    Session,
)
from shopify_sessions.sqlalchemy import (
    AsyncSQLAlchemySessionStorage,
    SQLAlchemySessionStorage,
    pooler_engine_options,
    session_table,
)
from shopify_sessions.sqlalchemy._pooler import take_pooler
from shopify_sessions.sqlalchemy._translate import statement_failure

SESSIONS = 20


@pytest.fixture
def table() -> Iterator[str]:
    """A fresh table name on the test PostgreSQL; the table and its lock table dropped after."""
    require_server("postgresql")
    name = unique_table_name("p")
    yield name
    engine = create_engine(make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg"))
    with engine.begin() as connection:
        for each in (name, f"{name}_locks"):
            connection.execute(text(f'DROP TABLE IF EXISTS "{each}"'))
    engine.dispose()


def pooled_url(driver: str, *, flagged: bool, mode: str = "transaction") -> str:
    url = pgbouncer(mode).url_for(driver)
    return f"{url}?pooler=transaction" if flagged else url


def sessions() -> list[Session]:
    return [
        Session(f"offline_{n}.myshopify.com", f"{n}.myshopify.com", "", False, access_token="t")
        for n in range(SESSIONS)
    ]


def create_direct(table: str) -> SQLAlchemySessionStorage:
    """A storage on the same table, straight to PostgreSQL: the table made and filled."""
    direct = SQLAlchemySessionStorage(
        make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg"),
        table=session_table(MetaData(), table),
    )
    direct.create_table()
    for session in sessions():
        direct.store_session(session)
    return direct


# --- the data-loss case: loads and deletes of other ids, at once, through the pooler ----


def _loads_and_deletes_sync(storage: Any) -> tuple[int, list[str]]:
    """4 threads load the stored sessions while 4 delete absent ids: (Nones, errors)."""
    nones, errors = [0], []

    def load() -> None:
        for _ in range(40):
            for session in sessions()[:5]:
                try:
                    if storage.load_session(session.id) is None:
                        nones[0] += 1
                except Exception as error:
                    errors.append(f"{type(error).__name__}: {error}")

    def delete() -> None:
        for n in range(200):
            try:
                storage.delete_session(f"absent_{n}")
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=load) for _ in range(4)]
    threads += [threading.Thread(target=delete) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return nones[0], errors


async def _loads_and_deletes_async(storage: Any) -> tuple[int, list[str]]:
    nones, errors = [0], []

    async def load() -> None:
        for _ in range(40):
            for session in sessions()[:5]:
                try:
                    if await storage.load_session(session.id) is None:
                        nones[0] += 1
                except Exception as error:
                    errors.append(f"{type(error).__name__}: {error}")

    async def delete() -> None:
        for n in range(200):
            try:
                await storage.delete_session(f"absent_{n}")
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")

    await asyncio.gather(*(load() for _ in range(4)), *(delete() for _ in range(4)))
    return nones[0], errors


@pytest.mark.parametrize("flagged", [True, False], ids=["flagged", "unflagged"])
@pytest.mark.parametrize("driver", ["psycopg", "psycopg-async", "asyncpg"])
async def test_concurrent_loads_and_deletes_through_the_pooler_lose_nothing(
    table: str, driver: str, flagged: bool, caplog: Any
) -> None:
    """The issue's case: no load answers None for a stored session, nothing fails, every
    row stays, with ?pooler=transaction or without it (found at first use)."""
    direct = create_direct(table)
    url = pooled_url(driver.removesuffix("-async"), flagged=flagged)
    with caplog.at_level(logging.WARNING, logger="shopify_sessions"):
        if driver == "psycopg":
            storage: Any = SQLAlchemySessionStorage(url, table=table)
            nones, errors = await asyncio.to_thread(_loads_and_deletes_sync, storage)
            server = storage.server
            storage.close()
        else:
            storage = AsyncSQLAlchemySessionStorage(url, table=table)
            nones, errors = await _loads_and_deletes_async(storage)
            server = storage.server
            await storage.close()
    assert (nones, errors[:3]) == (0, [])
    assert [direct.load_session(s.id) for s in sessions()] == sessions()
    assert server is not None and server.pooled and server.product == "PostgreSQL"
    warned = [r for r in caplog.records if "connection pooler" in r.getMessage()]
    assert len(warned) == (0 if flagged else 1)  # unflagged: found, and said so once
    direct.close()


async def test_an_engine_that_prepares_statements_breaks_through_the_pooler(table: str) -> None:
    """Why all this: the same work through PgBouncer on a plain psycopg engine (prepared
    statements on, as psycopg does by default) fails, or worse, runs another client's
    statement. The storage refuses such an engine (next test) or builds its own without."""
    direct = create_direct(table)
    engine = create_engine(pooled_url("psycopg", flagged=False), isolation_level="AUTOCOMMIT")
    nones, errors = [0], []

    def load() -> None:
        for _ in range(40):
            for session in sessions()[:5]:
                try:
                    with engine.connect() as connection:
                        row = connection.execute(
                            text(f'SELECT id FROM "{table}" WHERE id = :id'), {"id": session.id}
                        ).first()
                    nones[0] += row is None
                except Exception as error:  # a DELETE run for the SELECT returns no rows
                    errors.append(f"{type(error).__name__}: {error}")

    def delete() -> None:
        for n in range(200):
            try:
                with engine.connect() as connection:
                    connection.execute(
                        text(f'DELETE FROM "{table}" WHERE id = :id'), {"id": f"absent_{n}"}
                    )
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=load) for _ in range(4)]
    threads += [threading.Thread(target=delete) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    engine.dispose()
    left = sum(direct.load_session(s.id) is not None for s in sessions())
    print(f"plain psycopg through PgBouncer: {len(errors)} errors, {nones[0]} Nones, {left} left")
    assert errors and any("prepared statement" in e for e in errors)
    assert nones[0] > 0 or left < SESSIONS or len(errors) > 10
    direct.close()


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_an_app_engine_that_prepares_statements_is_refused_before_any_session(
    table: str, driver: str
) -> None:
    direct = create_direct(table)
    url = pooled_url(driver, flagged=False)
    with pytest.raises(ConnectionPoolerError) as raised:
        if driver == "psycopg":
            engine = create_engine(url)
            try:
                SQLAlchemySessionStorage(engine, table=table).load_session(sessions()[0].id)
            finally:
                engine.dispose()
        else:
            async_engine = create_async_engine(url)
            try:
                storage = AsyncSQLAlchemySessionStorage(async_engine, table=table)
                await storage.load_session(sessions()[0].id)
            finally:
                await async_engine.dispose()
    assert "?pooler=transaction" in str(raised.value)
    assert "pooler_engine_options(url)" in str(raised.value)
    assert [direct.load_session(s.id) for s in sessions()] == sessions()
    direct.close()


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_an_app_engine_built_with_pooler_engine_options_works(
    table: str, driver: str
) -> None:
    direct = create_direct(table)
    url = pooled_url(driver, flagged=False)
    if driver == "psycopg":
        engine = create_engine(url, **pooler_engine_options(url))
        storage = SQLAlchemySessionStorage(engine, table=table)
        nones, errors = await asyncio.to_thread(_loads_and_deletes_sync, storage)
        engine.dispose()
    else:
        async_engine = create_async_engine(url, **pooler_engine_options(url))
        async_storage = AsyncSQLAlchemySessionStorage(async_engine, table=table)
        nones, errors = await _loads_and_deletes_async(async_storage)
        assert async_storage.server is not None and async_storage.server.pooled
        await async_engine.dispose()
    assert (nones, errors[:3]) == (0, [])
    assert [direct.load_session(s.id) for s in sessions()] == sessions()
    direct.close()


def test_the_tell_tale_errors_name_the_url_parameter(table: str) -> None:
    """Two clients preparing statements on one server connection (a pool of one): the
    driver's error becomes a ConnectionPoolerError that says what to change."""
    bouncer = PgBouncer(POSTGRESQL_URL, "transaction", pool_size=1)
    engines = [
        create_engine(
            bouncer.url_for("psycopg"),
            connect_args={"prepare_threshold": 0},  # prepare at once
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        for _ in range(2)
    ]
    try:
        with engines[0].connect() as first:
            first.execute(text("SELECT 1"))
            with pytest.raises(DBAPIError) as raised, engines[1].connect() as second:
                second.execute(text("SELECT 2"))  # the same name, _pg3_0
    finally:
        for engine in engines:
            engine.dispose()
        bouncer.close()
    error = statement_failure("load_session", f'"{table}"', raised.value)
    assert isinstance(error, ConnectionPoolerError)
    assert "already exists" in str(error) and "?pooler=transaction" in str(error)


def test_a_direct_connection_is_not_taken_for_a_pooler(table: str) -> None:
    storage = SQLAlchemySessionStorage(
        make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg"),
        table=session_table(MetaData(), table),
    )
    storage.create_table()
    storage.check_table()
    assert storage.server is not None
    assert (storage.server.product, storage.server.pooled) == ("PostgreSQL", False)
    storage.close()


# --- how a URL says it: ?pooler=, pooler=, and the hosts that imply it ------------------


@pytest.mark.parametrize(
    ("url", "pooler", "pooled"),
    [
        ("postgresql://u@aws-0-eu-west-1.pooler.supabase.com:6543/postgres", None, True),
        ("postgresql://u@aws-0-eu-west-1.pooler.supabase.com:5432/postgres", None, False),
        ("postgresql://u@db.abcdefgh.supabase.co:5432/postgres", None, False),
        ("postgresql://u@ep-cool-name-123456-pooler.us-east-2.aws.neon.tech/db", None, True),
        ("postgresql://u@ep-cool-name-123456.us-east-2.aws.neon.tech/db", None, False),
        ("postgresql://u@ep-x-pooler.us-east-2.aws.neon.tech/db?pooler=none", None, False),
        ("postgresql://u@ep-x-pooler.us-east-2.aws.neon.tech/db", "none", False),
        ("postgresql://u@localhost:6432/db?pooler=transaction", None, True),
        ("postgresql://u@localhost:6432/db", "transaction", True),
        ("postgresql://u@localhost:6432/db?pooler=transaction", "transaction", True),
        ("mysql://u@localhost/db", None, False),
    ],
)
def test_which_urls_go_through_a_transaction_pooler(
    url: str, pooler: str | None, pooled: bool
) -> None:
    stripped, found = take_pooler(make_url(url), pooler)
    assert found is pooled
    assert "pooler" not in stripped.query  # never passed on to the driver


@pytest.mark.parametrize(
    ("url", "pooler", "message"),
    [
        ("postgresql://u@h/db?pooler=yes", None, "takes one of transaction, none"),
        ("postgresql://u@h/db?pooler=none", "transaction", r"the URL says \?pooler=none"),
        ("mysql://u@h/db?pooler=transaction", None, "for PostgreSQL"),
    ],
)
def test_a_bad_pooler_setting_is_refused_at_construction(
    url: str, pooler: str | None, message: str
) -> None:
    with pytest.raises(DatabaseURLError, match=message):
        SQLAlchemySessionStorage(url.replace("postgresql:", "postgresql+psycopg:"), pooler=pooler)  # type: ignore[arg-type]


def test_pooler_must_be_a_known_mode() -> None:
    with pytest.raises(ValueError, match="pooler must be one of"):
        SQLAlchemySessionStorage("sqlite://", pooler="session")  # type: ignore[arg-type]


def test_pooler_engine_options_per_driver() -> None:
    psycopg = pooler_engine_options("postgresql+psycopg://u@h/db")
    assert psycopg == {"connect_args": {"prepare_threshold": None}}
    asyncpg = pooler_engine_options(URL.create("postgresql+asyncpg", host="h"))
    arguments = asyncpg["connect_args"]
    assert arguments["statement_cache_size"] == 0
    assert arguments["prepared_statement_cache_size"] == 0
    names = {arguments["prepared_statement_name_func"]() for _ in range(100)}
    assert len(names) == 100  # a name of its own for every statement
    assert pooler_engine_options("postgresql+psycopg2://u@h/db") == {}
    assert pooler_engine_options("mysql+pymysql://u@h/db") == {}
    with pytest.raises(DatabaseURLError):
        pooler_engine_options("not a url")


# --- the lock through the pooler: today's advisory lock breaks, the lease holds ---------


WORKERS, ROUNDS = 6, 30


def _count_overlaps(hold: Any) -> dict[str, int]:
    """WORKERS threads each enter ``hold(n)`` ROUNDS times; how often two were inside."""
    tally = {"entered": 0, "inside": 0, "overlaps": 0, "timeouts": 0}
    guard = threading.Lock()

    def work(n: int) -> None:
        for _ in range(ROUNDS):
            try:
                with hold(n):
                    with guard:
                        tally["entered"] += 1
                        tally["inside"] += 1
                        tally["overlaps"] += tally["inside"] > 1
                    time.sleep(0.002)
                    with guard:
                        tally["inside"] -= 1
            except LockTimeoutError:
                with guard:
                    tally["timeouts"] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def test_the_old_advisory_lock_breaks_through_a_transaction_pooler() -> None:
    """The lock this library had: pg_try_advisory_lock on a connection of its own, in
    autocommit, given back with pg_advisory_unlock. Through PgBouncer in transaction mode
    the lock and its release land on whichever server connection is free: not exclusive,
    and some locks leak (held by a server connection nobody releases them from)."""
    url = pgbouncer("transaction").url_for("psycopg")
    engines = [
        create_engine(url, isolation_level="AUTOCOMMIT", **pooler_engine_options(url))
        for _ in range(WORKERS)
    ]
    key = uuid.uuid4().int >> 65

    class AdvisoryLock:
        def __init__(self, n: int) -> None:
            self.engine = engines[n]

        def __enter__(self) -> None:
            deadline = time.monotonic() + 2
            with self.engine.connect() as connection:
                while not connection.execute(text(f"SELECT pg_try_advisory_lock({key})")).scalar():
                    if time.monotonic() > deadline:
                        raise LockTimeoutError("offline_x", 2)
                    time.sleep(0.002)
            self.connection = self.engine.connect()

        def __exit__(self, *exc: object) -> None:
            self.connection.execute(text(f"SELECT pg_advisory_unlock({key})"))
            self.connection.close()

    try:
        tally = _count_overlaps(AdvisoryLock)
    finally:
        for engine in engines:
            engine.dispose()
        bare = create_engine(make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg"))
        with bare.connect() as connection:  # leaked locks go with PgBouncer's connections
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND objid = :key"
                ),
                {"key": key & 0xFFFFFFFF},
            )
        bare.dispose()
    print(f"the advisory lock through PgBouncer: {tally}")
    assert tally["overlaps"] > 0 or tally["timeouts"] > 0


@pytest.mark.parametrize("mode", ["transaction", "session"])
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_the_lease_is_exclusive_through_pgbouncer(table: str, driver: str, mode: str) -> None:
    """WORKERS workers, each with a storage of its own, built from the pooler's URL as a
    newcomer would, without ?pooler=: none inside together, none timed out."""
    create_direct(table).close()
    url = pooled_url(driver, flagged=False, mode=mode)
    if driver == "psycopg":
        storages: list[Any] = [SQLAlchemySessionStorage(url, table=table) for _ in range(WORKERS)]
        tally = await asyncio.to_thread(
            _count_overlaps, lambda n: storages[n].lock_session("offline_x", timeout=20)
        )
        for storage in storages:
            storage.close()
    else:
        tally = await _count_async_overlaps(url, table)
    print(f"the lease through PgBouncer ({mode} mode, {driver}): {tally}")
    assert tally == {"entered": WORKERS * ROUNDS, "inside": 0, "overlaps": 0, "timeouts": 0}


async def _count_async_overlaps(url: str, table: str) -> dict[str, int]:
    tally = {"entered": 0, "inside": 0, "overlaps": 0, "timeouts": 0}
    storages = [AsyncSQLAlchemySessionStorage(url, table=table) for _ in range(WORKERS)]

    async def work(storage: AsyncSQLAlchemySessionStorage) -> None:
        for _ in range(ROUNDS):
            async with storage.lock_session("offline_x", timeout=20):
                tally["entered"] += 1
                tally["inside"] += 1
                tally["overlaps"] += tally["inside"] > 1
                await asyncio.sleep(0.002)
                tally["inside"] -= 1

    try:
        await asyncio.gather(*(work(storage) for storage in storages))
    finally:
        for storage in storages:
            await storage.close()
    return tally


# --- servers whose own locks can't be trusted: found, and never relied on ---------------


@pytest.fixture
async def cockroach_disguise(table: str) -> AsyncIterator[str]:
    """A schema whose ``version()`` answers as CockroachDB does, put before pg_catalog on
    the search path: what the storage asks, a real PostgreSQL answers as CockroachDB."""
    schema = f"fake_{uuid.uuid4().hex[:8]}"
    engine = create_engine(make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg"))
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        connection.execute(
            text(
                f'CREATE FUNCTION "{schema}".version() RETURNS text LANGUAGE sql AS '
                "$$ SELECT 'CockroachDB CCL v25.4.0 (x86_64-pc-linux-gnu, built "
                "2026/10/01 00:00:00, go1.23.12)'::text $$"
            )
        )
    yield schema
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


async def test_cockroachdb_is_found_and_its_stub_advisory_locks_never_used(
    cockroach_disguise: str,
) -> None:
    schema = cockroach_disguise
    url = make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg")
    # Its connections named after the schema: the server is shared with other tests' workers,
    # whose advisory locks are theirs.
    options = {
        "connect_args": {
            "options": f"-c search_path={schema},pg_catalog",
            "application_name": schema,
        }
    }
    storage = SQLAlchemySessionStorage(url, table=session_table(MetaData(), "s", schema=schema))
    disguised = SQLAlchemySessionStorage(
        url, table=session_table(MetaData(), "s", schema=schema), engine_options=options
    )
    try:
        storage.create_table()
        with (
            disguised.lock_session("offline_c.myshopify.com"),
            disguised.engine.connect() as connection,
        ):
            leases = connection.execute(text(f'SELECT id FROM "{schema}"."s_locks"')).all()
            advisory = connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
                    "WHERE locktype = 'advisory' AND application_name = :name"
                ),
                {"name": schema},
            ).scalar()
        assert disguised.server is not None
        assert disguised.server.product == "CockroachDB"
        assert disguised.server.version.startswith("CockroachDB CCL v25.4.0")
        assert [tuple(row) for row in leases] == [("offline_c.myshopify.com",)]
        assert advisory == 0
    finally:
        disguised.close()
        storage.close()


async def test_the_old_named_lock_is_node_local_on_galera() -> None:
    """The lock this library had on MySQL, GET_LOCK(name, 0), on the tests' Galera pair:
    both nodes grant it at once. (The lease in its place: the lock tests and the hammer
    run across both nodes, conftest.GALERA_BACKENDS.)"""
    engines = [
        create_engine(make_url(url).set(drivername="mysql+pymysql"), poolclass=NullPool)
        for url in galera_pair().urls
    ]
    try:
        with engines[0].connect() as first, engines[1].connect() as second:
            taken = [
                connection.execute(text("SELECT GET_LOCK('shopify_sessions_test', 0)")).scalar()
                for connection in (first, second)
            ]
    finally:
        for engine in engines:
            engine.dispose()
    assert taken == [1, 1]


async def test_a_galera_node_is_found() -> None:
    storage = SQLAlchemySessionStorage(
        make_url(galera_pair().urls[1]).set(drivername="mysql+pymysql"),
        table=session_table(MetaData(), unique_table_name("g")),
    )
    storage.create_table()
    storage.check_table()
    assert storage.server is not None and storage.server.galera
    assert storage.server.product == "MariaDB Galera"
    with storage.engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {storage.table.name}, {storage.table.name}_locks"))
    storage.close()
