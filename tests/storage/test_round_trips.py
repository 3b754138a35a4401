"""Round trips per operation, as the server (or SQLite itself) saw them, on both engine paths.

On the engine a storage builds from a URL (autocommit), and on an Engine of the app's
own with SQLAlchemy's default settings, each operation must send what the list below
says and nothing more: no BEGIN, COMMIT, ROLLBACK or SET where the driver lets the
storage do without. tests/roundtrips.py explains how trips are counted.

- the URL-built engine, every driver: the statements, nothing else; several statements
  that must apply together (a delete_sessions call of more than 500 ids) inside
  BEGIN ... COMMIT, sent as statements: one commit per call;
- the app's engine on psycopg and asyncpg: a single statement alone (a read or a write);
  several statements inside BEGIN ... COMMIT;
- the app's engine on sqlite3 and aiosqlite: a read alone; writes inside BEGIN ... COMMIT;
- the app's engine on PyMySQL and aiomysql: a read, then ROLLBACK; writes, then COMMIT
  and ROLLBACK.

On psycopg and asyncpg, switching a pooled connection to autocommit and back is free
(a flag in the client), so single statements run in autocommit. On MySQL drivers the
switch costs SET AUTOCOMMIT both ways and a SET SESSION TRANSACTION on return (more
than it saves), and on SQLite a PRAGMA on return; the ROLLBACK after the COMMIT on MySQL
is the pool's reset on return, which SQLAlchemy always sends on a transactional engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from roundtrips import SQLiteTrace, WireCounter
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from conftest import SQL_BACKENDS, Backend, Harness
from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session
from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage
from shopify_sessions.sqlalchemy._core import IDS_PER_STATEMENT

SHOP = "round-trips.myshopify.com"
PATHS = ("url", "engine")


def sample(index: int) -> Session:
    return Session(
        f"{SHOP}_{index}",
        SHOP,
        "state",
        True,
        scope="read_products",
        access_token=f"shpua_{index}",
        online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=index + 1)),
    )


def expected(backend: Backend, path: str, kind: str, statements: list[str]) -> list[str]:
    """The first word of each round trip of an operation: a ``read``, a ``write``, or
    ``together`` (writes that commit together). (``autocommit``: the app's engine built
    with the storage's own settings, which docs/storage.md says make it one round trip.)"""
    if path in ("url", "autocommit"):
        return ["BEGIN", *statements, "COMMIT"] if kind == "together" else statements
    if kind == "read":
        return [*statements, "ROLLBACK"] if backend.server == "mysql" else statements
    if len(statements) == 1 and backend.driver in ("psycopg", "asyncpg"):
        return statements
    if backend.server == "mysql":
        return [*statements, "COMMIT", "ROLLBACK"]
    return ["BEGIN", *statements, "COMMIT"]


class Counted:
    """A storage on one path whose round trips are counted, and the engine it runs on."""

    def __init__(self, harness: Harness, path: str, *, listen: bool = True) -> None:
        backend = harness.backend
        self.harness = harness
        self.path = path
        self.wire: WireCounter | None = None
        url = backend.url(harness.sqlite_path)
        if backend.server != "sqlite":
            parsed = make_url(url)
            self.wire = WireCounter(backend.server, parsed.host or "127.0.0.1", parsed.port or 0)
            url = self.wire.url(url)
        table = harness.default_table()
        if path == "url":
            cls: Any = (
                AsyncSQLAlchemySessionStorage if backend.is_async else SQLAlchemySessionStorage
            )
            self.storage = cls(url, table=table)
            self.engine = self.storage.engine
        else:
            # The app's engine: SQLAlchemy's defaults, or in autocommit as the storage's own.
            options: dict[str, Any] = {}
            if path == "autocommit":
                options = {"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True}
            if backend.is_async:
                self.engine = create_async_engine(url, **options)
                self.storage = AsyncSQLAlchemySessionStorage(self.engine, table=table)
            else:
                self.engine = create_engine(url, **options)
                self.storage = SQLAlchemySessionStorage(self.engine, table=table)
        self.sqlite = SQLiteTrace(self.engine) if backend.server == "sqlite" else None
        #: What the engine's own event listeners saw (an app's tracing, say); with
        #: ``listen=False`` nothing listens, and the storage built from a URL runs its hot
        #: statements on the driver connection (tests/storage/test_hot_path.py).
        self.seen: list[str] = []
        if listen:
            sync_engine = getattr(self.engine, "sync_engine", self.engine)
            event.listen(sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement.split(None, 1)[0].upper())

    async def call(self, method: str, *args: Any) -> Any:
        result = getattr(self.storage, method)(*args)
        return await result if self.harness.backend.is_async else result

    def take(self) -> list[str]:
        """The first word of each round trip since the last call."""
        tracker: Any = self.sqlite or self.wire
        return [
            trip.split(None, 2)[1 if trip.startswith("COM_") else 0].upper().rstrip(";")
            for trip in tracker.take()
        ]

    async def close(self) -> None:
        if self.harness.backend.is_async:
            await self.storage.close()
            await self.engine.dispose()
        else:
            self.storage.close()
            self.engine.dispose()
        if self.wire is not None:
            self.wire.close()


@pytest.fixture(params=PATHS)
async def counted(request: pytest.FixtureRequest, sql_harness: Harness) -> AsyncIterator[Counted]:
    counted = Counted(sql_harness, request.param)
    await sql_harness.storage(table=sql_harness.default_table()).create_table()
    yield counted
    await counted.close()


async def test_each_operation_makes_only_the_round_trips_it_needs(counted: Counted) -> None:
    backend = counted.harness.backend
    sessions = [sample(index) for index in range(3)]
    many = [f"absent_{index}" for index in range(IDS_PER_STATEMENT + 1)]  # two statements
    # Warm up: the table check, the pool's first connection, prepared statements
    # (psycopg prepares a statement at its fifth execution).
    for _ in range(6):
        for session in sessions:
            await counted.call("store_session", session)
            await counted.call("load_session", session.id)
        await counted.call("find_sessions_by_shop", SHOP)
        await counted.call("delete_session", "absent")
        await counted.call("delete_sessions", ["absent", "also-absent"])
        await counted.call("delete_sessions", many)
    counted.take()
    counted.seen.clear()

    def trips(kind: str, *statements: str) -> list[str]:
        return expected(backend, counted.path, kind, list(statements))

    await counted.call("store_session", sessions[0])
    assert counted.take() == trips("write", "INSERT")
    assert await counted.call("load_session", sessions[0].id) == sessions[0]
    assert counted.take() == trips("read", "SELECT")
    assert len(await counted.call("find_sessions_by_shop", SHOP)) == 3
    assert counted.take() == trips("read", "SELECT")
    await counted.call("delete_session", sessions[2].id)
    assert counted.take() == trips("write", "DELETE")
    await counted.call("delete_sessions", [sessions[0].id, sessions[1].id])
    assert counted.take() == trips("write", "DELETE")
    await counted.call("delete_sessions", many)
    many_trips = counted.take()
    assert many_trips == trips("together", "DELETE", "DELETE")
    assert many_trips.count("COMMIT") == 1  # one commit for the call, on every path
    # The engine's own listeners saw every statement the storage sent.
    around = ["BEGIN", "DELETE", "DELETE", "COMMIT"] if counted.path == "url" else ["DELETE"] * 2
    assert counted.seen == ["INSERT", "SELECT", "SELECT", "DELETE", "DELETE", *around]


async def test_a_session_lock_takes_one_round_trip_and_gives_back_one(counted: Counted) -> None:
    """The lease: one statement to take it, one to give it back (a flock on SQLite: none)."""
    backend = counted.harness.backend

    async def lock_once() -> None:
        if backend.is_async:
            async with counted.storage.lock_session("offline_rt.myshopify.com"):
                pass
        else:
            with counted.storage.lock_session("offline_rt.myshopify.com"):
                pass

    await lock_once()  # warm up: the first use looks at the server
    counted.take()
    if backend.is_async:
        async with counted.storage.lock_session("offline_rt.myshopify.com"):
            taken = counted.take()
    else:
        with counted.storage.lock_session("offline_rt.myshopify.com"):
            taken = counted.take()
    given = counted.take()
    if backend.server == "sqlite":
        assert (taken, given) == ([], [])
        return
    assert taken == expected(backend, counted.path, "write", ["INSERT"])
    assert given == expected(backend, counted.path, "write", ["DELETE"])


async def test_the_apps_other_connections_stay_transactional(sql_harness: Harness) -> None:
    """After the storage used a pooled connection, the app gets it back as it was."""
    counted = Counted(sql_harness, "engine")
    try:
        await sql_harness.storage(table=sql_harness.default_table()).create_table()
        await counted.call("store_session", sample(1))
        await counted.call("load_session", sample(1).id)
        sync_engine = getattr(counted.engine, "sync_engine", counted.engine)
        assert sync_engine.pool.checkedin() == 1  # the app gets the storage's connection
        assert sync_engine.get_execution_options() == {}  # the engine is untouched
        table = sql_harness.quote(sql_harness.table_name)
        insert = text(f"DELETE FROM {table}")
        if sql_harness.backend.is_async:
            async with counted.engine.connect() as connection:
                await connection.execute(insert)
                await connection.rollback()
        else:
            with counted.engine.connect() as connection:
                connection.execute(insert)
                connection.rollback()
        assert sql_harness.sql(f"SELECT COUNT(*) FROM {table}") == [(1,)]
    finally:
        await counted.close()


@pytest.mark.parametrize(
    "sql_backend",
    [b for b in SQL_BACKENDS if b.server == "postgresql"],
    ids=lambda b: b.name,
    indirect=True,
)
async def test_sequential_calls_reuse_the_warm_connection(sql_harness: Harness) -> None:
    """On PostgreSQL, after a burst opened several connections, the URL-built engine's pool
    hands sequential calls the connection returned last, whose prepared statements are
    warm (LIFO), instead of rotating through them all. (PostgreSQL only: it is where the
    drivers prepare statements per connection.)"""
    backend = sql_harness.backend
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    engine = storage.engine
    sync_engine = getattr(engine, "sync_engine", engine)
    used: list[int] = []
    event.listen(sync_engine, "checkout", lambda dbapi, record, proxy: used.append(id(dbapi)))
    burst = [engine.connect() for _ in range(4)]  # four connections at once, as a burst would
    if backend.is_async:
        burst = [await connection for connection in burst]
        for connection in burst:
            await connection.close()
    else:
        for connection in burst:
            connection.close()
    used.clear()
    for _ in range(6):
        await storage.load_session("absent")
    assert len(set(used)) == 1, f"{len(set(used))} connections for 6 sequential calls"
