"""URLs as hosting platforms give them, on both storages and real databases.

Each form is used the way a user would: the storage is built from the URL and does a
round trip on the real server, and the driver it picked is the one expected.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from conftest import MYSQL_URL, POSTGRESQL_URL, require_server, unique_table_name
from shopify_sessions import (
    DatabaseURLError,
    Session,
    StorageUnavailableError,
    UnsupportedDialectError,
)
from shopify_sessions.sqlalchemy import (
    AsyncSQLAlchemySessionStorage,
    SQLAlchemySessionStorage,
    session_table,
)

SHOP = "urls.myshopify.com"


def bare(server: str, scheme: str | None = None) -> str:
    """The test server's URL with no driver, as a platform's DATABASE_URL has it."""
    url = make_url(POSTGRESQL_URL if server == "postgresql" else MYSQL_URL)
    scheme = scheme or ("postgresql" if server == "postgresql" else "mysql")
    return url.set(drivername=scheme).render_as_string(hide_password=False)


async def round_trip(storage: Any, is_async: bool) -> None:
    """Create a fresh table, store a session and load it back, then drop the table."""

    async def call(result: Any) -> Any:
        return await result if is_async else result

    session = Session(f"offline_{SHOP}", SHOP, "", False, access_token="shpat_x")
    try:
        await call(storage.create_table())
        await call(storage.store_session(session))
        assert await call(storage.load_session(session.id)) == session
    finally:
        if is_async:
            async with storage.engine.begin() as connection:
                await connection.run_sync(storage.table.drop, checkfirst=True)
            await storage.close()
        else:
            with storage.engine.begin() as connection:
                storage.table.drop(connection, checkfirst=True)
            storage.close()


def table() -> Any:
    from sqlalchemy import MetaData

    return session_table(MetaData(), unique_table_name("url"))


FORMS = [
    # (server, url scheme, is_async, driver the storage must pick)
    ("postgresql", "postgres", False, "psycopg"),
    ("postgresql", "postgres", True, "asyncpg"),
    ("postgresql", "postgresql", False, "psycopg"),
    ("postgresql", "postgresql", True, "asyncpg"),
    ("mysql", "mysql", False, "pymysql"),
    ("mysql", "mysql", True, "aiomysql"),
    ("mysql", "mariadb", False, "pymysql"),
    ("mysql", "mariadb", True, "aiomysql"),
]


@pytest.mark.parametrize(
    ("server", "scheme", "is_async", "driver"), FORMS, ids=lambda v: str(v).lower()
)
async def test_a_url_without_a_driver_gets_an_installed_one_of_the_right_kind(
    server: str, scheme: str, is_async: bool, driver: str
) -> None:
    require_server(server)
    cls = AsyncSQLAlchemySessionStorage if is_async else SQLAlchemySessionStorage
    storage = cls(bare(server, scheme), table=table())
    assert storage.engine.dialect.driver == driver
    assert storage.engine.dialect.is_async is is_async
    await round_trip(storage, is_async)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_sqlite_without_a_driver(tmp_path: Path, is_async: bool) -> None:
    cls = AsyncSQLAlchemySessionStorage if is_async else SQLAlchemySessionStorage
    storage = cls(f"sqlite:///{tmp_path / 'x.sqlite3'}", table=table())
    assert storage.engine.dialect.driver == ("aiosqlite" if is_async else "pysqlite")
    await round_trip(storage, is_async)


async def test_sslmode_is_translated_for_asyncpg() -> None:
    require_server("postgresql")
    # sslmode=disable works on this server (no SSL); asyncpg itself rejects `sslmode`.
    storage = AsyncSQLAlchemySessionStorage(
        bare("postgresql", "postgres") + "?sslmode=disable", table=table()
    )
    assert storage.engine.url.query == {"ssl": "disable"}
    await round_trip(storage, True)


async def test_sslmode_require_reaches_asyncpg_as_ssl() -> None:
    """The server here has no SSL: asyncpg refusing to connect proves it got ``ssl=require``."""
    require_server("postgresql")
    storage = AsyncSQLAlchemySessionStorage(bare("postgresql") + "?sslmode=require", table=table())
    with pytest.raises(StorageUnavailableError, match=r"(?i)ssl") as caught:
        await storage.create_table()
    assert "sslmode" not in str(caught.value)
    await storage.close()
    # psycopg takes sslmode itself and is left as it is.
    sync = SQLAlchemySessionStorage(bare("postgresql") + "?sslmode=disable", table=table())
    assert sync.engine.url.query == {"sslmode": "disable"}
    await round_trip(sync, False)


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Make modules look not installed (import machinery sees ``None`` in sys.modules)."""

    def hide(*modules: str) -> None:
        for module in modules:
            monkeypatch.setitem(sys.modules, module, None)

    yield hide


@pytest.mark.parametrize(
    ("url", "is_async", "hidden", "extra"),
    [
        ("mysql://root@127.0.0.1/test", False, ("pymysql", "MySQLdb"), "pymysql"),
        ("mysql://root@127.0.0.1/test", True, ("aiomysql", "asyncmy"), "aiomysql"),
        ("postgres://u@127.0.0.1/test", False, ("psycopg", "psycopg2"), "psycopg"),
        ("postgresql://u@127.0.0.1/test", True, ("asyncpg", "psycopg"), "asyncpg"),
        ("sqlite:///x.sqlite3", True, ("aiosqlite",), "aiosqlite"),
        ("mysql+mysqldb://root@127.0.0.1/test", False, ("MySQLdb",), "pymysql"),
        ("mysql+aiomysql://root@127.0.0.1/test", True, ("aiomysql",), "aiomysql"),
    ],
    ids=[
        "mysql-sync",
        "mysql-async",
        "postgres-sync",
        "postgresql-async",
        "sqlite-async",
        "mysqldb",
        "aiomysql",
    ],
)
def test_no_installed_driver_names_the_extra(
    without: Any, url: str, is_async: bool, hidden: tuple[str, ...], extra: str
) -> None:
    without(*hidden)
    cls = AsyncSQLAlchemySessionStorage if is_async else SQLAlchemySessionStorage
    with pytest.raises(DatabaseURLError, match=rf"pip install 'shopify-sessions\[{extra}\]'"):
        cls(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+asyncpg://u@127.0.0.1/test", "use AsyncSQLAlchemySessionStorage"),
        ("mysql+aiomysql://root@127.0.0.1/test", "use AsyncSQLAlchemySessionStorage"),
        ("sqlite+aiosqlite:///x.sqlite3", "use AsyncSQLAlchemySessionStorage"),
    ],
)
def test_sync_storage_refuses_an_asyncio_driver(url: str, message: str) -> None:
    with pytest.raises(DatabaseURLError, match=message):
        SQLAlchemySessionStorage(url)
    # An Engine built by hand on an asyncio driver is refused too.
    engine = create_engine(url)
    with pytest.raises(DatabaseURLError, match=message):
        SQLAlchemySessionStorage(engine)
    engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://u@127.0.0.1/test",
        "mysql+pymysql://root@127.0.0.1/test",
        "sqlite+pysqlite:///x.sqlite3",
    ],
)
def test_async_storage_refuses_a_sync_driver(url: str) -> None:
    with pytest.raises(DatabaseURLError, match="use SQLAlchemySessionStorage"):
        AsyncSQLAlchemySessionStorage(url)


async def test_an_engine_of_the_other_kind_names_the_class() -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    with pytest.raises(TypeError, match="use AsyncSQLAlchemySessionStorage"):
        SQLAlchemySessionStorage(engine)  # type: ignore[arg-type]
    await engine.dispose()
    sync_engine = create_engine("sqlite://")
    with pytest.raises(TypeError, match="use SQLAlchemySessionStorage"):
        AsyncSQLAlchemySessionStorage(sync_engine)  # type: ignore[arg-type]
    sync_engine.dispose()


@pytest.mark.parametrize(
    ("url", "error", "message"),
    [
        ("not a url", DatabaseURLError, "not a database URL"),
        ("oracle://u@h/db", UnsupportedDialectError, "'oracle' databases are not supported"),
        ("postgresql+nodriver://u@h/db", DatabaseURLError, "no 'postgresql\\+nodriver' dialect"),
    ],
)
def test_bad_urls_are_refused_before_any_connection(
    url: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SQLAlchemySessionStorage(url)


def test_password_stays_out_of_errors(without: Any) -> None:
    without("aiomysql", "asyncmy")
    with pytest.raises(DatabaseURLError) as caught:
        AsyncSQLAlchemySessionStorage("mysql://root:hunter2@127.0.0.1/test")
    assert "hunter2" not in str(caught.value)
