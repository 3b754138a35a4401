"""Database URLs as hosting platforms give them, resolved to a driver of the right kind.

Heroku, Render, Fly and Neon put ``postgres://`` or ``postgresql://...?sslmode=require``
in ``DATABASE_URL``; a MySQL host gives ``mysql://``. SQLAlchemy reads a URL without a
driver as its own default driver (psycopg2, MySQLdb), which is often not the one
installed, and knows no ``postgres`` scheme. Here a URL without a driver gets an
installed one of the kind the storage needs (sync or asyncio), and a URL naming a driver
of the other kind is refused at construction, naming the storage class to use.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from sqlalchemy import URL, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .._errors import DatabaseURLError, UnsupportedDialectError
from ._upsert import SUPPORTED_DIALECTS

SYNC_STORAGE = "SQLAlchemySessionStorage"
ASYNC_STORAGE = "AsyncSQLAlchemySessionStorage"

#: Scheme spellings that platforms use for a SQLAlchemy backend.
_BACKEND_ALIASES = {"postgres": "postgresql", "postgresql": "postgresql"}


@dataclass(frozen=True)
class Driver:
    """A SQLAlchemy driver name, the module it imports, and the extra that installs it."""

    name: str
    module: str
    extra: str


#: Drivers tried, in order, for a URL without one: (backend, asyncio) -> candidates.
DRIVERS: dict[tuple[str, bool], tuple[Driver, ...]] = {
    ("postgresql", False): (
        Driver("psycopg", "psycopg", "psycopg"),
        Driver("psycopg2", "psycopg2", "psycopg"),
    ),
    ("postgresql", True): (
        Driver("asyncpg", "asyncpg", "asyncpg"),
        Driver("psycopg", "psycopg", "asyncpg"),
    ),
    ("mysql", False): (
        Driver("pymysql", "pymysql", "pymysql"),
        Driver("mysqldb", "MySQLdb", "pymysql"),
    ),
    ("mysql", True): (
        Driver("aiomysql", "aiomysql", "aiomysql"),
        Driver("asyncmy", "asyncmy", "aiomysql"),
    ),
    ("sqlite", False): (Driver("pysqlite", "sqlite3", "sqlite"),),
    ("sqlite", True): (Driver("aiosqlite", "aiosqlite", "aiosqlite"),),
}
DRIVERS[("mariadb", False)] = DRIVERS[("mysql", False)]
DRIVERS[("mariadb", True)] = DRIVERS[("mysql", True)]

#: Known drivers named in a URL: what they import and the extra that installs them.
_KNOWN = {driver.name: driver for candidates in DRIVERS.values() for driver in candidates}


def resolve_url(url: str | URL, *, is_async: bool) -> URL:
    """The URL to build the engine of a sync (``is_async=False``) or asyncio storage from.

    - ``postgres://`` is read as ``postgresql://``;
    - a URL without a driver gets the first installed driver of the right kind
      (PostgreSQL: psycopg or psycopg2, asyncpg or psycopg; MySQL/MariaDB: PyMySQL or
      mysqlclient, aiomysql or asyncmy; SQLite: sqlite3, aiosqlite);
    - ``sslmode=`` on asyncpg, which does not take it, becomes its ``ssl=``.

    Raises:
        DatabaseURLError: not a URL; no installed driver of the right kind (names the
            extra to install); a driver of the other kind (names the storage class to use).
        UnsupportedDialectError: a database other than PostgreSQL, MySQL/MariaDB or SQLite.
        TypeError: neither a string nor a ``URL`` (an engine of the other kind, say).
    """
    storage = ASYNC_STORAGE if is_async else SYNC_STORAGE
    if not isinstance(url, (str, URL)):
        twin = SYNC_STORAGE if is_async else ASYNC_STORAGE
        hint = f"; use {twin}" if type(url).__name__ in ("Engine", "AsyncEngine") else ""
        raise TypeError(
            f"{storage} takes {'an AsyncEngine' if is_async else 'an Engine'} or a database "
            f"URL, not {type(url).__name__}{hint}"
        )
    parsed = parse_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    backend = _BACKEND_ALIASES.get(backend, backend)
    if backend not in SUPPORTED_DIALECTS:
        raise UnsupportedDialectError(
            f"{backend!r} databases are not supported; "
            f"supported: {', '.join(SUPPORTED_DIALECTS)} (postgres:// too)"
        )
    chosen = driver or _choose_driver(backend, is_async)
    parsed = parsed.set(drivername=f"{backend}+{chosen}")
    check_dialect_kind(_dialect_class(parsed, is_async), is_async)
    _check_installed(chosen)
    if chosen == "asyncpg":
        parsed = _asyncpg_ssl(parsed)
    return parsed


def parse_url(url: str | URL) -> URL:
    """``url`` as a ``URL``; :class:`DatabaseURLError` when it is not a database URL."""
    try:
        return make_url(url)
    except ArgumentError as error:
        raise DatabaseURLError(
            "not a database URL: expected a URL such as postgresql://user:password@host/db, "
            "mysql://user:password@host/db or sqlite:///path/to/file.sqlite3"
        ) from error


def check_dialect_kind(dialect: Dialect | type[Dialect], is_async: bool) -> None:
    """Refuse a dialect whose driver is of the other kind than the storage (sync or asyncio)."""
    if bool(dialect.is_async) == is_async:
        return
    name = f"{dialect.name}+{dialect.driver}"
    if is_async:
        raise DatabaseURLError(
            f"{name} is a synchronous driver: use {SYNC_STORAGE}, or give "
            f"{ASYNC_STORAGE} an asyncio driver ({_example(dialect.name, True)})"
        )
    raise DatabaseURLError(
        f"{name} is an asyncio driver: use {ASYNC_STORAGE}, or give "
        f"{SYNC_STORAGE} a synchronous driver ({_example(dialect.name, False)})"
    )


def _choose_driver(backend: str, is_async: bool) -> str:
    candidates = DRIVERS[(backend, is_async)]
    for driver in candidates:
        if _installed(driver.module):
            return driver.name
    kind = "asyncio" if is_async else "synchronous"
    names = " or ".join(driver.module for driver in candidates)
    raise DatabaseURLError(
        f"no {kind} {backend} driver is installed ({names}): "
        f"pip install 'shopify-sessions[{candidates[0].extra}]'"
    )


def _check_installed(driver: str) -> None:
    known = _KNOWN.get(driver)
    if known is None or _installed(known.module):
        return
    if known.extra == driver:  # one of this package's extras installs it
        install = f"pip install 'shopify-sessions[{known.extra}]'"
    else:
        install = (
            f"install its module {known.module}, or pip install "
            f"'shopify-sessions[{known.extra}]' and leave the driver out of the URL"
        )
    raise DatabaseURLError(f"the {driver} driver is not installed: {install}")


def _dialect_class(url: URL, is_async: bool) -> type[Dialect]:
    try:
        return url.get_dialect(_is_async=is_async)
    except NoSuchModuleError as error:
        backend = url.get_backend_name()
        drivers = sorted({d.name for (b, _), ds in DRIVERS.items() if b == backend for d in ds})
        raise DatabaseURLError(
            f"SQLAlchemy has no {url.drivername!r} dialect; drivers for {backend}: "
            f"{', '.join(drivers)}"
        ) from error


def _asyncpg_ssl(url: URL) -> URL:
    # asyncpg takes libpq's modes (disable ... verify-full) as ssl=, and fails on sslmode=.
    mode = url.query.get("sslmode")
    if mode is None:
        return url
    url = url.difference_update_query(["sslmode"])
    if "ssl" not in url.query:
        url = url.update_query_dict({"ssl": mode})
    return url


def _example(backend: str, is_async: bool) -> str:
    driver = DRIVERS[(backend, is_async)][0].name
    return f"{backend}+{driver}://" if backend != "sqlite" else f"sqlite+{driver}:///file"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
