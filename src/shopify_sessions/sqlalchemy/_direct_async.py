"""The hot statements on the pooled asyncio driver connection: ``_direct`` for asyncio.

The driver's own call is awaited (one hop to aiosqlite's thread instead of four), and the
pool is used inside SQLAlchemy's greenlet, as ``AsyncEngine`` uses it; a driver error is
first translated by SQLAlchemy's adapter, as its cursor would. Imported by the asyncio
storage only, so that the sync one needs no greenlet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from ._core import FETCH_NONE, FETCH_ONE, HotCall
from ._direct import COMMIT, SWITCH, HeldConnection, answer, checkout, failed, release


async def async_checkout(
    engine: AsyncEngine, held: HeldConnection | None = None
) -> PoolProxiedConnection:
    """:func:`checkout` for an ``AsyncEngine``: in SQLAlchemy's greenlet, where the pool
    may open a connection."""
    return await greenlet_spawn(checkout, engine.sync_engine, held)


async def async_execute(
    engine: AsyncEngine, connection: PoolProxiedConnection, call: HotCall, mode: int
) -> Any:
    """:func:`execute` through the asyncio driver's own calls."""
    sql, arguments, fetch, results = call
    driver: Any = connection.driver_connection
    name = engine.dialect.driver
    switch = mode == SWITCH and name == "psycopg"  # asyncpg: autocommit already
    try:
        if switch:
            await driver.set_autocommit(True)
        if name == "asyncpg":
            assert isinstance(arguments, tuple)
            if fetch == FETCH_NONE:
                await driver.execute(sql, *arguments)
                rows: Sequence[Any] = ()
            elif fetch == FETCH_ONE:
                row = await driver.fetchrow(sql, *arguments)
                rows = () if row is None else (tuple(row),)
            else:
                rows = [tuple(row) for row in await driver.fetch(sql, *arguments)]
        elif name == "aiosqlite":
            # One hop to aiosqlite's thread: execute and fetch there (the cursor is done
            # with when the rows are read, and closed with the call).
            rows = await driver.execute_fetchall(sql, arguments)
        elif name == "aiomysql":  # with the cursor class SQLAlchemy's adapter uses
            cursor_class = engine.dialect.loaded_dbapi.Cursor
            async with driver.cursor(cursor_class) as cursor:
                await cursor.execute(sql, arguments)
                rows = () if fetch == FETCH_NONE else await cursor.fetchall()
        else:
            assert name == "psycopg"
            async with driver.cursor() as cursor:
                await cursor.execute(sql, arguments)
                rows = () if fetch == FETCH_NONE else await cursor.fetchall()
        if mode == COMMIT and fetch == FETCH_NONE:
            await driver.commit()
    except BaseException as error:
        translated = error
        if isinstance(error, Exception):
            try:  # as SQLAlchemy's adapted cursor would raise it
                connection.dbapi_connection._handle_exception(error)  # type: ignore[union-attr]
            except Exception as adapted:
                translated = adapted
        failure = await greenlet_spawn(
            failed, engine.sync_engine, connection, None, sql, arguments, translated
        )
        if failure is error:
            raise
        raise failure from translated
    finally:
        if switch and connection.is_valid:
            try:
                await driver.set_autocommit(False)
            except Exception as error:  # never pooled again
                await greenlet_spawn(connection.invalidate, error)
    if fetch == FETCH_ONE:
        rows = rows[:1]
    return answer(rows, fetch, results)


async def async_release(
    connection: PoolProxiedConnection, held: HeldConnection | None = None
) -> None:
    """:func:`release` in SQLAlchemy's greenlet (a reset or a close may talk to the server)."""
    await greenlet_spawn(release, connection, held)
