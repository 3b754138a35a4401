"""The hot path: a storage runs its hot statements on the pooled driver connection
(``sqlalchemy/_direct.py``) while nothing listens to its engine.

- each operation makes the round trips that test_round_trips.py lists for its engine (one
  on the storage's own engine), counted at the wire (SQLite: by SQLite's trace), and no
  SQLAlchemy ``Connection`` is made for it;
- an event listener added at any time (``before_cursor_execute``, OpenTelemetry's
  SQLAlchemy instrumentation) sees every later statement, on the storage's own engine and
  on an app's;
- failures are what they are through SQLAlchemy's execute: the same typed error, message
  and causes; a connection lost between calls is invalidated and replaced by the retry; a
  cancelled statement's connection is invalidated, never pooled again.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool
from test_round_trips import PATHS, SHOP, Counted, expected, sample

from conftest import Harness
from shopify_sessions import Session, StorageOperationError, session_order
from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage
from shopify_sessions.sqlalchemy._direct import quiet

OPERATIONS = ("store", "load", "find", "delete", "delete_many")


class CountedConnection(Connection):
    """SQLAlchemy's own Connection, counting how many the engine makes."""

    made = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).made += 1
        super().__init__(*args, **kwargs)


def sync_engine_of(storage: Any) -> Engine:
    engine = storage.engine
    return engine if isinstance(engine, Engine) else engine.sync_engine


async def call(storage: Any, method: str, *args: Any) -> Any:
    result = getattr(storage, method)(*args)
    return await result if asyncio.iscoroutine(result) else result


async def run(storage: Any, operation: str, session: Session) -> Any:
    """One operation of the hot path on ``session`` (stored first by ``store``)."""
    if operation == "store":
        return await call(storage, "store_session", session)
    if operation == "load":
        return await call(storage, "load_session", session.id)
    if operation == "find":
        return await call(storage, "find_sessions_by_shop", session.shop)
    if operation == "delete":
        return await call(storage, "delete_session", session.id)
    return await call(storage, "delete_sessions", [session.id, "absent"])


@pytest.fixture(params=(*PATHS, "autocommit"))
async def quiet_storage(
    request: pytest.FixtureRequest, sql_harness: Harness
) -> AsyncIterator[Counted]:
    """A storage built from a URL, or on an app's engine (SQLAlchemy's defaults, or in
    autocommit), its round trips counted, nothing listening."""
    counted = Counted(sql_harness, request.param, listen=False)
    await sql_harness.storage(table=sql_harness.default_table()).create_table()
    yield counted
    await counted.close()


async def test_each_operation_is_one_round_trip_without_sqlalchemys_connection(
    quiet_storage: Counted,
) -> None:
    storage = quiet_storage.storage
    engine = sync_engine_of(storage)
    sessions = [sample(index) for index in range(3)]
    for _ in range(6):  # warm: the table check, the pool, prepared statements
        for session in sessions:
            await quiet_storage.call("store_session", session)
            await quiet_storage.call("load_session", session.id)
        await quiet_storage.call("find_sessions_by_shop", SHOP)
        await quiet_storage.call("delete_session", "absent")
        await quiet_storage.call("delete_sessions", ["absent", "also-absent"])
    quiet_storage.take()
    assert storage._direct and quiet(storage.engine)
    engine._connection_cls = CountedConnection
    CountedConnection.made = 0

    def trips(kind: str, statement: str) -> list[str]:
        return expected(quiet_storage.harness.backend, quiet_storage.path, kind, [statement])

    await quiet_storage.call("store_session", sessions[0])
    assert quiet_storage.take() == trips("write", "INSERT")
    assert await quiet_storage.call("load_session", sessions[0].id) == sessions[0]
    assert quiet_storage.take() == trips("read", "SELECT")
    assert await quiet_storage.call("load_session", "absent") is None
    assert quiet_storage.take() == trips("read", "SELECT")
    assert await quiet_storage.call("find_sessions_by_shop", SHOP) == sorted(
        sessions, key=session_order
    )
    assert quiet_storage.take() == trips("read", "SELECT")
    await quiet_storage.call("delete_session", sessions[2].id)
    assert quiet_storage.take() == trips("write", "DELETE")
    await quiet_storage.call("delete_sessions", [sessions[0].id, sessions[1].id])
    assert quiet_storage.take() == trips("write", "DELETE")
    assert await quiet_storage.call("find_sessions_by_shop", SHOP) == []
    assert quiet_storage.take() == trips("read", "SELECT")
    assert CountedConnection.made == 0, "a hot operation went through SQLAlchemy's Connection"


async def test_a_listener_added_later_sees_every_statement(quiet_storage: Counted) -> None:
    storage = quiet_storage.storage
    engine = sync_engine_of(storage)
    session = sample(1)
    await quiet_storage.call("store_session", session)  # on the hot path, nothing listening
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", listener)
    for operation in OPERATIONS:
        await run(storage, operation, session)
    assert seen == ["INSERT", "SELECT", "SELECT", "DELETE", "DELETE"]


@pytest.mark.parametrize("path", ["url", "engine"])
async def test_opentelemetry_sees_every_statement(sql_harness: Harness, path: str) -> None:
    """OpenTelemetry's SQLAlchemy instrumentation, on the storage's engine or the app's."""
    table = sql_harness.default_table()
    storage = sql_harness.storage(table=table)
    await storage.create_table()
    if path == "engine":
        storage = sql_harness.engine_storage(table=table)
    session = sample(1)
    await run(storage, "store", session)  # before the instrumentation
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    target: Any = storage.target if hasattr(storage, "target") else storage
    # (Its declared range ends before SQLAlchemy 2.1, which it instruments all the same.)
    instrumentor = SQLAlchemyInstrumentor()  # one per process: instrumented once at a time
    instrumentor.instrument(
        engine=sync_engine_of(target), tracer_provider=provider, skip_dep_check=True
    )
    try:
        for operation in OPERATIONS:
            await run(storage, operation, session)
    finally:
        instrumentor.uninstrument()
    statements = [  # one span per statement (and one per connection, without a statement)
        str(span.attributes["db.statement"]).split(None, 1)[0].upper()
        for span in exporter.get_finished_spans()
        if span.attributes and "db.statement" in span.attributes
    ]
    assert statements == ["INSERT", "SELECT", "SELECT", "DELETE", "DELETE"]


async def test_failures_are_typed_as_through_sqlalchemy(sql_harness: Harness) -> None:
    """The table dropped under a storage that checked it: each hot operation fails with the
    error, message and causes it gets through SQLAlchemy's execute."""
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    session = sample(1)
    await run(storage, "store", session)
    sql_harness.sql(f"DROP TABLE {sql_harness.quote(sql_harness.table_name)}")
    engine = sync_engine_of(storage.target if hasattr(storage, "target") else storage)

    async def failure(operation: str) -> Any:
        with pytest.raises(StorageOperationError) as raised:
            await run(storage, operation, session)
        error = raised.value
        cause = error.__cause__
        return type(error), str(error), type(cause), type(getattr(cause, "orig", None))

    for operation in OPERATIONS:
        hot = await failure(operation)
        event.listen(engine, "before_cursor_execute", _ignore)
        try:
            through_sqlalchemy = await failure(operation)
        finally:
            event.remove(engine, "before_cursor_execute", _ignore)
        assert hot == through_sqlalchemy, operation


def _ignore(*args: Any) -> None:
    pass


async def test_a_connection_lost_between_calls_is_replaced(server_harness: Harness) -> None:
    """The server ends the pooled connection; the next hot call fails on it, invalidates it
    (as SQLAlchemy's Connection does) and its retry succeeds on a new one: without the
    invalidation the pool would hand the dead connection back to the retry."""
    storage = server_harness.storage(table=server_harness.default_table())
    await storage.create_table()
    target: Any = storage.target if hasattr(storage, "target") else storage
    engine = sync_engine_of(target)
    session = sample(1)
    await run(storage, "store", session)
    invalidated: list[BaseException | None] = []
    event.listen(engine.pool, "invalidate", lambda dbapi, record, error: invalidated.append(error))
    postgresql = server_harness.backend.server == "postgresql"
    ask = "SELECT pg_backend_pid()" if postgresql else "SELECT CONNECTION_ID()"
    if server_harness.backend.is_async:
        async with target.engine.connect() as connection:
            backend = (await connection.exec_driver_sql(ask)).scalar_one()
    else:
        with target.engine.connect() as connection:
            backend = connection.exec_driver_sql(ask).scalar_one()
    server_harness.sql(
        f"SELECT pg_terminate_backend({backend})" if postgresql else f"KILL {backend}"
    )
    assert await run(storage, "load", session) == session
    assert len(invalidated) == 1 and invalidated[0] is not None


async def test_a_cancelled_statement_never_returns_its_connection_to_the_pool(
    server_harness: Harness,
) -> None:
    """A store waiting on a row lock is cancelled: its connection is invalidated (its
    state is unknown), as through SQLAlchemy's execute."""
    if not server_harness.backend.is_async:
        pytest.skip("cancelling a task is asyncio's")
    storage = server_harness.storage(table=server_harness.default_table())
    await storage.create_table()
    engine = sync_engine_of(storage)
    session = sample(1)
    await run(storage, "store", session)
    invalidated: list[BaseException | None] = []
    event.listen(engine.pool, "invalidate", lambda dbapi, record, error: invalidated.append(error))
    assert server_harness.raw is not None
    table = server_harness.quote(server_harness.table_name)
    with server_harness.raw.connect() as blocker:
        blocker.exec_driver_sql(f"SELECT * FROM {table} FOR UPDATE")  # holds the row
        store = asyncio.ensure_future(run(storage, "store", session))
        await _until(lambda: _waiting_on_locks(server_harness) > 0)  # the store's INSERT
        store.cancel()
        with pytest.raises(asyncio.CancelledError):
            await store
        blocker.rollback()
    assert len(invalidated) == 1
    assert await run(storage, "load", session) == session


def _waiting_on_locks(harness: Harness) -> int:
    """Statements on the test's table waiting for a lock (the server is shared)."""
    if harness.backend.server == "postgresql":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE :pattern"
        )
    else:
        query = (
            "SELECT count(*) FROM information_schema.processlist "
            "WHERE command = 'Query' AND info LIKE :pattern AND info NOT LIKE '%processlist%'"
        )
    return int(harness.sql(query, pattern=f"INSERT INTO %{harness.table_name}%")[0][0])


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_subclass_with_its_own_attempt_gets_every_operation(sql_harness: Harness) -> None:
    """A storage subclass that runs operations through an ``_attempt`` of its own (as the
    Django storage does, on Django's connection) never has it bypassed by the hot path."""
    backend = sql_harness.backend
    base: Any = AsyncSQLAlchemySessionStorage if backend.is_async else SQLAlchemySessionStorage
    seen: list[str] = []

    class Own(base):  # type: ignore[misc, valid-type]
        __slots__ = ()

        def _attempt(self, operation: str, *args: Any) -> Any:
            seen.append(operation)
            return super()._attempt(operation, *args)

    storage = Own(backend.url(sql_harness.sqlite_path), table=sql_harness.default_table())
    try:
        await call(storage, "create_table")
        session = sample(1)
        seen.clear()
        for operation in OPERATIONS:
            await run(storage, operation, session)
        assert not storage._direct
        assert [name for name in seen if name != "check_table"] == [
            "store_session",
            "load_session",
            "find_sessions_by_shop",
            "delete_session",
            "delete_sessions",
        ]
    finally:
        await call(storage, "close")


def _counting_checkouts(engine: Engine) -> list[object]:
    checkouts: list[object] = []
    event.listen(engine.pool, "checkout", lambda *args: checkouts.append(args[0]))
    return checkouts


def _hot_calls(storage: SQLAlchemySessionStorage, session: Session) -> None:
    storage.store_session(session)
    assert storage.load_session(session.id) == session
    assert storage.find_sessions_by_shop(SHOP) == [session]


def _checkouts_of_five_rounds(storage: SQLAlchemySessionStorage, session: Session) -> list[object]:
    """The table made and one round of hot calls (warm), then the pool's checkouts during
    five more rounds, as they go on (the list keeps growing after)."""
    storage.create_table()
    _hot_calls(storage, session)
    checkouts = _counting_checkouts(storage.engine)
    for _ in range(5):
        _hot_calls(storage, session)
    return checkouts


def test_its_own_engine_on_a_sqlite_file_keeps_one_connection_between_hot_calls(
    tmp_path: Path,
) -> None:
    """The storage built from a URL of a SQLite file takes a connection from its pool for
    its first hot call and keeps it for the next ones (the pool's checkout and return cost
    more than the statement); a statement that fails gives it back, and so does close."""
    path = tmp_path / "sessions.sqlite3"
    storage = SQLAlchemySessionStorage(f"sqlite:///{path}")
    pool = storage.engine.pool
    try:
        session = sample(1)
        checkouts = _checkouts_of_five_rounds(storage, session)
        assert checkouts == [] and pool.checkedout() == 1  # type: ignore[attr-defined]

        _rename(path, "session", PARKED)
        with pytest.raises(StorageOperationError):
            storage.load_session(session.id)
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        _rename(path, PARKED, "session")
        _hot_calls(storage, session)
        assert len(checkouts) == 1 and pool.checkedout() == 1  # type: ignore[attr-defined]
    finally:
        storage.close()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("then", ["a call", "close"])
def test_a_connection_kept_when_the_engine_is_disposed_of_is_closed(
    tmp_path: Path, then: str
) -> None:
    """``engine.dispose()`` (after a fork, say) replaces the pool: the connection kept from
    the old one is closed by the next call or by close, not given back to a pool nothing
    uses, where it would stay open (and Python 3.13 would warn when it is collected)."""
    storage = SQLAlchemySessionStorage(f"sqlite:///{tmp_path / 'sessions.sqlite3'}")
    opened: list[sqlite3.Connection] = []
    event.listen(storage.engine.pool, "checkout", lambda dbapi, *args: opened.append(dbapi))
    try:
        storage.create_table()
        session = sample(1)
        _hot_calls(storage, session)
        storage.engine.dispose()
        if then == "a call":
            _hot_calls(storage, session)
    finally:
        storage.close()
    assert opened and all(_is_closed(dbapi) for dbapi in opened)


def _is_closed(connection: sqlite3.Connection) -> bool:
    try:
        connection.execute("SELECT 1")
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return True
    return False


def _rename(path: Path, table: str, to: str) -> None:
    # closing(): sqlite3's own context manager ends the transaction, not the connection.
    with closing(sqlite3.connect(path)) as raw:
        raw.execute(f"ALTER TABLE {table} RENAME TO {to}")


PARKED = "session_parked"


@pytest.mark.parametrize("built", ["app engine", "NullPool", "in memory"])
def test_other_engines_give_every_connection_back(tmp_path: Path, built: str) -> None:
    """An app's own engine, a pool a caller chose (here: none) and an in-memory database
    (a connection per thread) get every connection back after each call."""
    url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    if built == "app engine":
        storage = SQLAlchemySessionStorage(create_engine(url))
    elif built == "NullPool":
        storage = SQLAlchemySessionStorage(url, engine_options={"poolclass": NullPool})
    else:
        storage = SQLAlchemySessionStorage("sqlite://")
    try:
        assert len(_checkouts_of_five_rounds(storage, sample(1))) == 15
    finally:
        storage.close()
        storage.engine.dispose()


async def test_an_asyncio_storage_gives_every_connection_back(tmp_path: Path) -> None:
    """On asyncio the storage keeps no connection: SQLAlchemy could not give it back from
    the garbage collector if the storage were never closed."""
    storage = AsyncSQLAlchemySessionStorage(f"sqlite+aiosqlite:///{tmp_path / 'sessions.sqlite3'}")
    try:
        await storage.create_table()
        session = sample(1)
        await storage.store_session(session)
        checkouts = _counting_checkouts(storage.engine.sync_engine)
        for _ in range(5):
            await storage.store_session(session)
            assert await storage.load_session(session.id) == session
        assert len(checkouts) == 10
    finally:
        await storage.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX's")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_never_uses_the_parents_kept_connection(tmp_path: Path) -> None:
    """SQLite connections must not cross a fork: in a child, the connection the parent
    kept is left alone, and the child's first hot call checks one out of the pool."""
    storage = SQLAlchemySessionStorage(f"sqlite:///{tmp_path / 'sessions.sqlite3'}")
    try:
        storage.create_table()
        session = sample(1)
        _hot_calls(storage, session)
        assert storage.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        checkouts = _counting_checkouts(storage.engine)
        pid = os.fork()
        if pid == 0:  # the child: nothing but the check, then out without any cleanup
            code = 1
            try:
                storage.engine.dispose(close=False)  # as SQLAlchemy says a child must
                code = 0 if storage.load_session(session.id) == session and checkouts else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert checkouts == []  # the parent's own calls still use its kept connection
        _hot_calls(storage, session)
        assert checkouts == []
    finally:
        storage.close()
