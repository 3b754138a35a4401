"""Failures are typed, carry their cause, and never pass for "no session"."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from conftest import Backend, Harness
from shopify_sessions import (
    AssociatedUser,
    InvalidSessionError,
    MissingSessionTableError,
    OnlineAccessInfo,
    Session,
    StorageAccessDeniedError,
    StorageOperationError,
    StorageUnavailableError,
    UnsupportedDialectError,
)
from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage

TOKEN = "shpat_SECRET_TOKEN_0123456789"


def session(**fields: Any) -> Session:
    fields.setdefault("access_token", TOKEN)
    fields.setdefault("refresh_token", "shprt_SECRET_REFRESH")
    return Session("offline_shop.myshopify.com", "shop.myshopify.com", "", False, **fields)


def unreachable_url(backend: Backend, tmp_path: Path) -> str:
    if backend.server == "sqlite":
        return backend.url(tmp_path / "no" / "such" / "directory" / "sessions.sqlite3")
    url = make_url(backend.url(tmp_path)).set(host="127.0.0.1", port=1)
    return url.render_as_string(hide_password=False)


def sync_engine(storage: Any) -> Engine:
    engine = storage.target.engine if hasattr(storage, "target") else storage.engine
    return engine if isinstance(engine, Engine) else engine.sync_engine


def count_statements(storage: Any) -> list[str]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(sync_engine(storage), "before_cursor_execute", record)
    return statements


async def test_a_refused_connection_is_access_denied_and_not_retried(
    server_backend: Backend, tmp_path: Path
) -> None:
    """An unknown database (or user) is the server refusing, not failing to answer; an
    unreachable server stays merely unavailable."""
    storage_type = (
        AsyncSQLAlchemySessionStorage if server_backend.is_async else SQLAlchemySessionStorage
    )
    base = make_url(server_backend.url(tmp_path))
    refused = [base.set(database="no_such_database"), base.set(username="no_such_user")]
    for url in [*refused, make_url(unreachable_url(server_backend, tmp_path))]:
        storage: Any = storage_type(url.render_as_string(hide_password=False))
        connects: list[int] = []
        event.listen(sync_engine(storage), "do_connect", lambda *_, seen=connects: seen.append(1))
        try:
            with pytest.raises(StorageUnavailableError) as raised:
                result = storage.load_session("any")
                if server_backend.is_async:
                    await result
        finally:
            closed = storage.close()
            if closed is not None:
                await closed
        assert isinstance(raised.value, StorageAccessDeniedError) == (url in refused)
        assert raised.value.__cause__ is not None
        assert len(connects) == (1 if url in refused else 2)  # a lost connection: tried again


async def test_unreachable_database_is_unavailable_not_missing(
    sql_backend: Backend, tmp_path: Path
) -> None:
    url = unreachable_url(sql_backend, tmp_path)
    storage_type = (
        AsyncSQLAlchemySessionStorage if sql_backend.is_async else SQLAlchemySessionStorage
    )
    storage: Any = storage_type(url)
    try:
        for call in (
            lambda: storage.load_session("any"),
            lambda: storage.store_session(session()),
            lambda: storage.find_sessions_by_shop("shop.myshopify.com"),
            lambda: storage.delete_sessions(["a"]),
        ):
            with pytest.raises(StorageUnavailableError) as raised:
                result = call()
                if sql_backend.is_async:
                    await result
            assert not isinstance(raised.value, MissingSessionTableError)
            assert raised.value.__cause__ is not None
            assert TOKEN not in str(raised.value)
    finally:
        closed = storage.close()
        if sql_backend.is_async:
            await closed
        join_aiosqlite_threads()


def join_aiosqlite_threads() -> None:
    """Let aiosqlite's worker threads of failed connects finish while the loop still runs.

    After a failed connect aiosqlite stops its thread, which then posts to the event
    loop; if the test's loop closed first, that thread raises "Event loop is closed".
    """
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            thread.join(timeout=5)


async def test_a_dropped_table_is_an_error_never_a_missing_session(sql_harness: Harness) -> None:
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    await storage.store_session(session())
    assert await storage.load_session(session().id) is not None
    sql_harness.sql(f"DROP TABLE {sql_harness.quote(sql_harness.table_name)}")

    with pytest.raises(StorageOperationError) as raised:
        await storage.load_session(session().id)
    assert raised.value.__cause__ is not None
    with pytest.raises(StorageOperationError):
        await storage.find_sessions_by_shop("shop.myshopify.com")
    with pytest.raises(StorageOperationError) as raised:
        await storage.store_session(session())
    assert TOKEN not in str(raised.value)
    assert "SECRET" not in str(raised.value)


def too_big_for_the_column(backend: Backend) -> list[Session]:
    cases = [
        session(online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=2**63))),
        Session("", "shop.myshopify.com", "", False),
    ]
    if backend.server == "postgresql":
        cases.append(session(scope="read_\x00products"))
    if backend.server == "mysql":
        cases.append(session(expires=datetime(999, 1, 1, tzinfo=timezone.utc)))
        cases.append(Session("x" * 256, "shop.myshopify.com", "", False))  # id is VARCHAR(255)
    return cases


async def test_invalid_input_never_reaches_the_database(sql_harness: Harness) -> None:
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    await storage.load_session("first use checks the table")
    statements = count_statements(storage)

    for bad in too_big_for_the_column(sql_harness.backend):
        with pytest.raises(InvalidSessionError) as raised:
            await storage.store_session(bad)
        assert TOKEN not in str(raised.value)
    for call, argument in [
        ("store_session", {"id": "x"}),
        ("load_session", None),
        ("delete_session", ""),
        ("delete_sessions", [1, 2]),
        ("find_sessions_by_shop", b"shop"),
    ]:
        with pytest.raises(InvalidSessionError):
            await getattr(storage, call)(argument)
    assert statements == []

    await storage.load_session("still works")
    assert len(statements) == 1


async def test_no_token_in_logs_at_any_level(
    sql_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    await storage.store_session(session())
    loaded = await storage.load_session(session().id)
    assert loaded.access_token == TOKEN
    assert TOKEN not in repr(loaded)
    assert TOKEN not in str(loaded)
    own_records = [r for r in caplog.records if r.name.startswith("shopify_sessions")]
    assert all(TOKEN not in r.getMessage() for r in own_records)


class FirebirdOverSQLite(SQLiteDialect_pysqlite):
    """A third-party dialect, as SQLAlchemy's registry loads them; no upsert is known for it."""

    name = "firebird"


def test_unsupported_dialect_is_refused_at_construction() -> None:
    registry.register("firebird.oversqlite", __name__, "FirebirdOverSQLite")
    engine = create_engine("firebird+oversqlite://")
    with pytest.raises(UnsupportedDialectError, match="firebird"):
        SQLAlchemySessionStorage(engine)
    engine.dispose()
