"""The journal mode and sync level of SQLite databases (sqlalchemy/_sqlite.py).

An engine the storage builds from a URL puts a database it creates in WAL mode, and writes
to a WAL database with ``synchronous=NORMAL``; it leaves a database in another mode as
its owner made it, and never touches an engine the app passes. docs/performance.md has
the measurements (fsyncs per write) and the durability argument.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from shopify_sessions import Session
from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage

FULL, NORMAL = 2, 1
SESSION = Session("offline_journal.myshopify.com", "journal.myshopify.com", "", False, scope="x")
SESSION.access_token = "shpat_journal"
DRIVERS = ["pysqlite", "aiosqlite"]


def journal_mode(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


async def use(storage: Any) -> int:
    """Store and load through ``storage``; the ``synchronous`` level of its connections."""
    is_async = isinstance(storage, AsyncSQLAlchemySessionStorage)
    if is_async:
        await storage.create_table()
        await storage.store_session(SESSION)
        assert await storage.load_session(SESSION.id) == SESSION
        async with storage.engine.connect() as connection:
            level = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar_one()
        await storage.close()
    else:
        storage.create_table()
        storage.store_session(SESSION)
        assert storage.load_session(SESSION.id) == SESSION
        with storage.engine.connect() as connection:
            level = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
        storage.close()
    return int(level)


def url_storage(driver: str, path: Path) -> Any:
    url = f"sqlite+{driver}:///{path}"
    if driver == "aiosqlite":
        return AsyncSQLAlchemySessionStorage(url)
    return SQLAlchemySessionStorage(url)


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_database_the_storage_creates_is_in_wal_mode(driver: str, tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    assert await use(url_storage(driver, path)) == NORMAL
    assert journal_mode(path) == "wal"
    # Its session locks still live in files beside it.
    storage = SQLAlchemySessionStorage(f"sqlite:///{path}")
    with storage.lock_session(SESSION.id):
        assert list((tmp_path / "new.sqlite3.locks").iterdir())
    storage.close()


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_database_in_another_mode_is_left_as_it_is(driver: str, tmp_path: Path) -> None:
    """The app (or a Node app) chose the rollback journal: the storage keeps it, and keeps
    SQLite's FULL sync level with it."""
    path = tmp_path / "theirs.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE their_table (x INTEGER)")
    connection.close()
    assert await use(url_storage(driver, path)) == FULL
    assert journal_mode(path) == "delete"


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_wal_database_of_the_apps_gets_normal_sync(driver: str, tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE their_table (x INTEGER)")
    connection.close()
    assert await use(url_storage(driver, path)) == NORMAL
    assert journal_mode(path) == "wal"
    other = sqlite3.connect(path)  # a setting of the storage's connections, not of the file
    assert other.execute("PRAGMA synchronous").fetchone()[0] == FULL
    other.close()


@pytest.mark.parametrize("driver", DRIVERS)
async def test_an_engine_the_app_passes_is_never_changed(driver: str, tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    url = f"sqlite+{driver}:///{path}"
    if driver == "aiosqlite":
        engine: Any = create_async_engine(url)
        assert await use(AsyncSQLAlchemySessionStorage(engine)) == FULL
        await engine.dispose()
    else:
        engine = create_engine(url)
        assert await use(SQLAlchemySessionStorage(engine)) == FULL
        engine.dispose()
    assert journal_mode(path) == "delete"  # a new file, but the app's engine made it


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
async def test_an_in_memory_database_is_left_alone(url: str) -> None:
    storage = SQLAlchemySessionStorage(url)
    storage.create_table()
    storage.store_session(SESSION)
    with storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "memory"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar_one() == FULL
    storage.close()
