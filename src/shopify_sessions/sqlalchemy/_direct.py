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

Only where nothing would see the difference: :func:`quiet` is checked on every call, so
an app that adds an event listener (``before_cursor_execute``, OpenTelemetry's SQLAlchemy
instrumentation, ``handle_error``) or turns on SQL logging gets every later statement
through SQLAlchemy's execute, where its listener sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, exc
from sqlalchemy.pool import PoolProxiedConnection

from ._core import FETCH_ALL, FETCH_NONE, FETCH_ONE, HotCall

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


# --------------------------------------------------------------------------- sync


def checkout(engine: Engine) -> PoolProxiedConnection:
    """A connection of the engine's pool, as ``Engine.connect`` gets one (a driver error
    wrapped as SQLAlchemy wraps it)."""
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


def release(connection: PoolProxiedConnection) -> None:
    """Give the connection back to the pool (its reset on return, as after ``close``)."""
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
