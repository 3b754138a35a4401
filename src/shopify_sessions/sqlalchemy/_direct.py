"""The hot statements on the pooled driver connection, as SQLAlchemy's execute would run them.

A load through SQLAlchemy's ``Connection.execute`` costs more than the query on a fast
server: a ``Connection``, an execution context, the result's metadata and rows (psycopg
131 µs on the cursor, 225 µs through ``execute``; sqlite3 7 and 21 µs). The storages
therefore run their hot statements (``HotStatement``: compiled once, with SQLAlchemy's bind
and result processors) on a connection of their engine's pool (their own, or an app's),
straight through the driver, and do what SQLAlchemy's ``Connection`` would do around them:

- the pool is used as ``Engine.connect`` uses it: its events, its reset on return, its
  LIFO order, pre-ping and recycling, whatever the engine was built with;
- a failure is wrapped in the same ``sqlalchemy.exc.DBAPIError`` subclass, with the same
  ``connection_invalidated``, and a lost connection invalidates the connection and the
  pool's older ones, as ``Connection`` does; an interrupted statement (a cancelled task,
  ``KeyboardInterrupt``) invalidates its connection. The storage's translation into typed
  errors and its retries see what they always saw;
- on asyncio (``_direct_async``), the driver's own call is awaited (one thread hop on
  aiosqlite instead of four) and the pool is used inside SQLAlchemy's greenlet, as
  ``AsyncEngine`` uses it; driver errors are first translated by SQLAlchemy's adapter,
  as its cursor would.

On a SQLite file, the sync engine the storage builds from a URL keeps one connection checked
out between hot statements (:class:`HeldConnection`): its pool's checkout and return cost
more than the statement (sqlite3: 6 µs against 4 µs for a load), and a connection to a
local file has nothing the pool's checks would find (no server to lose it, nothing to
recycle). An app's own engine is always used through its pool.

Only where nothing would see the difference: :func:`quiet` is checked on every call, so
an app that adds an event listener (``before_cursor_execute``, OpenTelemetry's SQLAlchemy
instrumentation, ``handle_error``) or turns on SQL logging gets every later statement
through SQLAlchemy's execute, where its listener sees it.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, exc
from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from ._core import FETCH_ALL, FETCH_NONE, FETCH_ONE, HotCall
from ._sqlite import is_file_database

logger = logging.getLogger("shopify_sessions")


#: How a connection of the engine runs a hot statement. AUTOCOMMIT: it commits each
#: statement by itself (the engine the storage builds from a URL, or an app's engine in
#: autocommit). SWITCH: the driver's autocommit is a flag in the client, switched on for
#: the call and off again (psycopg; asyncpg is in autocommit outside a transaction), as
#: the storage does on an app's engine through SQLAlchemy. COMMIT: the connection is in a
#: transaction, and a write commits after its statement (a read is ended by the pool's
#: reset on return), as a transaction of the storage's own does through SQLAlchemy.
AUTOCOMMIT, SWITCH, COMMIT = 0, 1, 2

#: The asyncio drivers whose own calls ``_direct_async.async_execute`` knows.
ASYNC_DRIVERS = frozenset({"asyncpg", "aiomysql", "aiosqlite", "psycopg"})


def quiet(engine: Any) -> bool:
    """Whether nothing listens to ``engine``'s statements (an ``Engine``, or an
    ``AsyncEngine``'s): no connection or dialect event listener, on the engine or on every
    engine, ever (SQLAlchemy keeps the mark when one is removed), and no SQL logging."""
    sync: Engine = getattr(engine, "sync_engine", engine)
    return not (sync._has_events or sync.dialect._has_events or sync._should_log_info())


class HeldConnection:
    """The one pooled connection that a storage's own engine on a SQLite file keeps
    checked out between its hot statements.

    A hot call takes it (:meth:`take`) or, when another call has it, checks one out of
    the pool as usual; after a statement that succeeded it offers its connection back
    (:meth:`keep`). A connection whose statement failed, or one offered while another is
    held, goes back to the pool as before. :meth:`close` ends the holding, before the
    engine is disposed of. A connection held when the engine's pool was disposed of (and
    replaced) belongs to a pool that nothing uses any more: it is closed, not given back
    there, where it would stay open until the old pool is collected. A process forked with
    it held leaves it alone: it is the parent's (SQLite connections must not cross a
    fork), and is never used, closed or collected in the child.
    """

    __slots__ = ("__weakref__", "_closed", "_connection", "_engine", "_guard", "_parents")

    def __init__(self, engine: Any) -> None:
        self._engine: Engine = getattr(engine, "sync_engine", engine)
        self._guard = threading.Lock()
        self._connection: PoolProxiedConnection | None = None
        self._closed = False
        self._parents: list[PoolProxiedConnection] = []
        _HELD.add(self)

    def take(self) -> PoolProxiedConnection | None:
        """The held connection, now the caller's; ``None`` when no connection is held."""
        with self._guard:
            connection, self._connection = self._connection, None
        return self._current(connection)

    def keep(self, connection: PoolProxiedConnection) -> bool:
        """Hold ``connection`` for the next call; ``False`` when it can't be (one is held
        already, the holding has ended, or the connection is no longer valid): the caller
        gives it back to the pool."""
        with self._guard:
            if self._closed or self._connection is not None or not connection.is_valid:
                return False
            self._connection = connection
            return True

    def close(self) -> PoolProxiedConnection | None:
        """End the holding: the connection held, for the caller to give back, or ``None``."""
        with self._guard:
            self._closed = True
            connection, self._connection = self._connection, None
        return self._current(connection)

    def _current(self, connection: PoolProxiedConnection | None) -> PoolProxiedConnection | None:
        """``connection`` if it is of the engine's pool; else closed, and ``None``."""
        if connection is None or getattr(connection, "_pool", None) is self._engine.pool:
            return connection
        connection.invalidate()  # closes the driver's connection, as the old pool won't
        connection.close()
        return None

    def _forget_after_fork(self) -> None:
        self._guard = threading.Lock()  # another thread may have held it at the fork
        if self._connection is not None:
            self._parents.append(self._connection)
            self._connection = None


_HELD: weakref.WeakSet[HeldConnection] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for held in list(_HELD):
        held._forget_after_fork()


if hasattr(os, "register_at_fork"):  # POSIX: nothing forks elsewhere
    os.register_at_fork(after_in_child=_after_fork_in_child)


def holds_a_connection(engine: Any, *, owned: bool) -> bool:
    """Whether the storage keeps a :class:`HeldConnection` on ``engine`` (an ``Engine`` or
    an ``AsyncEngine``): one it built (``owned``) on a SQLite file, with a queue pool (not
    one a caller chose instead, which may mean no pooling, or a connection per thread)
    that can hand out a second connection to everything else.

    Not on asyncio: of a storage never closed, the garbage collector would find the
    connection checked out, which SQLAlchemy can't give back there (it warns)."""
    sync: Engine = getattr(engine, "sync_engine", engine)
    dialect = sync.dialect
    if not owned or dialect.is_async or dialect.name != "sqlite" or not is_file_database(sync.url):
        return False
    pool = sync.pool
    if not isinstance(pool, QueuePool):
        return False
    overflow: int = pool._max_overflow
    return overflow < 0 or pool.size() + overflow >= 2


# --------------------------------------------------------------------------- sync


def checkout(engine: Engine, held: HeldConnection | None = None) -> PoolProxiedConnection:
    """The connection ``held`` keeps, if it has one; else a connection of the engine's
    pool, as ``Engine.connect`` gets one (a driver error wrapped as SQLAlchemy wraps it)."""
    if held is not None and (connection := held.take()) is not None:
        return connection
    try:
        return engine.pool.connect()
    except engine.dialect.loaded_dbapi.Error as error:
        Connection._handle_dbapi_exception_noconnection(error, engine.dialect, engine)
        raise  # not reached: the call above raises


def execute(engine: Engine, connection: PoolProxiedConnection, call: HotCall, mode: int) -> Any:
    """Run ``call`` on ``connection`` in ``mode``: ``None``, its first row or its rows,
    processed. (A hot statement that fetches nothing is a write.)"""
    sql, arguments, fetch, results = call
    dbapi: Any = connection.dbapi_connection
    if mode == SWITCH:
        dbapi.autocommit = True
    cursor = None
    try:
        cursor = dbapi.cursor()
        cursor.execute(sql, arguments)
        if fetch == FETCH_NONE:
            rows: Sequence[Any] = ()
            if mode == COMMIT:
                dbapi.commit()
        elif fetch == FETCH_ONE:
            row = cursor.fetchone()
            rows = () if row is None else (row,)
        else:
            rows = cursor.fetchall()
    except BaseException as error:
        failure = failed(engine, connection, cursor, sql, arguments, error)
        if failure is error:
            raise
        raise failure from error
    finally:
        if mode == SWITCH and connection.is_valid:
            switch_back(connection, dbapi)
    cursor.close()
    return answer(rows, fetch, results)


def switch_back(connection: PoolProxiedConnection, dbapi: Any) -> None:
    """The driver's autocommit off again, as the pool's return would set it; a connection
    that can't is never pooled again."""
    try:
        dbapi.autocommit = False
    except Exception as error:
        connection.invalidate(error)


def release(connection: PoolProxiedConnection, held: HeldConnection | None = None) -> None:
    """Give the connection back to the pool (its reset on return, as after ``close``),
    unless ``held`` keeps it for the next call (pass ``held`` after a statement that
    succeeded only)."""
    if held is None or not held.keep(connection):
        connection.close()


# ------------------------------------------------------------------------- shared


def answer(rows: Sequence[Any], fetch: int, results: Any) -> Any:
    """What the storage's work functions return: ``None``, the first row (or ``None``),
    or the rows; each row a tuple with SQLAlchemy's result processors applied."""
    if results:
        processed = []
        for row in rows:
            values = list(row)
            for index, process in results:
                values[index] = process(values[index])
            processed.append(tuple(values))
        rows = processed
    if fetch == FETCH_NONE:
        return None
    if fetch == FETCH_ONE:
        return rows[0] if rows else None
    assert fetch == FETCH_ALL
    return rows


def failed(
    engine: Engine,
    connection: PoolProxiedConnection,
    cursor: Any,
    sql: str,
    arguments: Any,
    error: BaseException,
) -> BaseException:
    """What ``Connection`` raises for ``error`` from a statement, after doing what it does
    with the connection (``Connection._handle_dbapi_exception``, without event hooks,
    which :func:`quiet` ruled out): a driver error is wrapped in SQLAlchemy's class for
    it; a lost connection invalidates the connection and the pool's older ones; an
    interruption (not an ``Exception``) invalidates the connection alone."""
    dialect = engine.dialect
    driver_error = dialect.loaded_dbapi.Error
    exiting = not isinstance(error, Exception)
    is_driver_error = isinstance(error, driver_error)
    lost = exiting or (
        is_driver_error and dialect.is_disconnect(cast(Any, error), connection, cursor)
    )
    failure: BaseException = error
    if is_driver_error:
        failure = exc.DBAPIError.instance(
            sql,
            arguments,
            cast(Exception, error),
            driver_error,
            hide_parameters=engine.hide_parameters,
            connection_invalidated=lost,
            dialect=dialect,
        )
    if lost:
        if not exiting:
            engine.pool._invalidate(connection, error)
        if connection.is_valid:
            connection.invalidate(error)
    elif cursor is not None:
        try:
            cursor.close()
        except Exception:
            logger.debug("closing a cursor after a failed statement failed too", exc_info=True)
    return failure
