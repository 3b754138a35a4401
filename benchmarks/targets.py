"""The targets (database x driver, and PostgreSQL through PgBouncer), how to open each side,
and untimed admin work.

Admin work (creating and dropping tables, counting and dumping rows, bulk pre-fill,
EXPLAIN, server versions) always goes through the dialect's sync driver and is never
timed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import URL, MetaData, create_engine, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from shopify_sessions import Session
from shopify_sessions.sqlalchemy import (
    AsyncSQLAlchemySessionStorage,
    SQLAlchemySessionStorage,
    pooler_engine_options,
    session_table,
)

from . import raw
from .data import BENCH_SHOP_PREFIX, Dataset
from .phases import delete_batches

POSTGRESQL_URL = os.environ.get("TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


#: The Python sides of a SQL target: the library's storage built from a URL, the storage
#: on an app's own engine, SQLAlchemy Core's execute of the same statements on such an
#: engine, SQLAlchemy's floor, and hand-written driver code (raw, the baseline every
#: ratio divides by).
SQL_SIDES = ("library", "engine", "core", "floor", "raw")
#: Shopify's Node adapters for SQL databases (``node.py``, ``bench.mjs``).
SQL_PEERS = ("drizzle", "prisma")


@dataclass(frozen=True)
class Target:
    """One database and driver: the Python sides measured on it, and the Node peers run
    beside them on the same server (each side and peer a column of the report)."""

    name: str
    dialect: str  # "postgresql", "mysql" or "sqlite"
    driver: str  # the SQLAlchemy driver name
    is_async: bool
    #: Through PgBouncer in transaction mode (every side: the library with
    #: ``?pooler=transaction``, the app engine with ``pooler_engine_options``, the raw
    #: driver without server-side prepared statements).
    pooler: bool = False
    sides: tuple[str, ...] = SQL_SIDES
    #: Node adapters run in the same rounds, phase by phase (none through PgBouncer: they
    #: connect directly).
    peers: tuple[str, ...] = SQL_PEERS


TARGETS = (
    Target("postgresql-psycopg", "postgresql", "psycopg", False),
    Target("postgresql-asyncpg", "postgresql", "asyncpg", True),
    Target("mariadb-pymysql", "mysql", "pymysql", False),
    Target("mariadb-aiomysql", "mysql", "aiomysql", True),
    Target("sqlite-sqlite3", "sqlite", "pysqlite", False),
    Target("sqlite-aiosqlite", "sqlite", "aiosqlite", True),
    Target("pgbouncer-psycopg", "postgresql", "psycopg", False, pooler=True, peers=()),
    Target("pgbouncer-asyncpg", "postgresql", "asyncpg", True, pooler=True, peers=()),
)
SYNC_DRIVER = {"postgresql": "psycopg", "mysql": "pymysql", "sqlite": "pysqlite"}


class Servers:
    """Where the databases are: the test suite's server URLs and a SQLite file."""

    def __init__(self, sqlite_path: str, library_engine_options: dict[str, Any] | None = None):
        self.sqlite_path = sqlite_path
        #: Extra ``engine_options`` for the library's storages (none: the library's defaults).
        self.library_engine_options = library_engine_options or {}
        self.postgresql: URL = make_url(POSTGRESQL_URL)
        self.mysql: URL = make_url(MYSQL_URL)
        #: PostgreSQL through PgBouncer in transaction mode, once started.
        self.pgbouncer: URL | None = None

    def url(self, dialect: str, driver: str, *, pooler: bool = False) -> str:
        """The SQLAlchemy URL of ``dialect`` through ``driver`` (through PgBouncer, with
        the storages' ``?pooler=transaction``, when ``pooler``)."""
        if dialect == "sqlite":
            return f"sqlite+{driver}:///{self.sqlite_path}"
        if pooler:
            assert self.pgbouncer is not None
            url = self.pgbouncer.set(drivername=f"postgresql+{driver}")
            return url.render_as_string(hide_password=False) + "?pooler=transaction"
        base = self.postgresql if dialect == "postgresql" else self.mysql
        url = base.set(drivername=f"{base.get_backend_name()}+{driver}")
        return url.render_as_string(hide_password=False)

    def postgresql_dsn(self, *, pooler: bool = False) -> str:
        base = self.pgbouncer if pooler and self.pgbouncer is not None else self.postgresql
        return base.set(drivername="postgresql").render_as_string(hide_password=False)

    def mysql_args(self, database_key: str = "database") -> dict[str, Any]:
        url = self.mysql
        return {
            "host": url.host or "127.0.0.1",
            "port": url.port or 3306,
            "user": url.username or "root",
            "password": url.password or "",
            database_key: url.database,
        }


# ------------------------------------------------------------------ the two sides


def library_storage(target: Target, servers: Servers, table: str) -> Any:
    """The library's storage on ``table``, built from a URL as the README shows."""
    url = servers.url(target.dialect, target.driver, pooler=target.pooler)
    declared = session_table(MetaData(), table)
    options = servers.library_engine_options or None
    if target.is_async:
        return AsyncSQLAlchemySessionStorage(url, table=declared, engine_options=options)
    return SQLAlchemySessionStorage(url, table=declared, engine_options=options)


def engine_storage(target: Target, servers: Servers, table: str) -> Any:
    """The library's storage on an Engine of the app's own, with SQLAlchemy's defaults
    (and ``pooler_engine_options`` through PgBouncer)."""
    url = make_url(servers.url(target.dialect, target.driver, pooler=target.pooler))
    url = url.difference_update_query(["pooler"])
    options = pooler_engine_options(url) if target.pooler else {}
    declared = session_table(MetaData(), table)
    if target.is_async:
        engine = create_async_engine(url, **options)
        return OwnedEngine(AsyncSQLAlchemySessionStorage(engine, table=declared))
    return OwnedEngine(SQLAlchemySessionStorage(create_engine(url, **options), table=declared))


class OwnedEngine:
    """A storage on an app's engine, closed as the app would: by disposing of the engine."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def close(self) -> Any:
        return self._storage.engine.dispose()


def floor_storage(target: Target, servers: Servers, table: str, data: Dataset) -> Any:
    """SQLAlchemy running the library's statements on one held connection (no library code).

    The connection comes from the engine the library builds from a URL (autocommit),
    and the parameters are encoded before timing starts, so what is timed is
    SQLAlchemy's execute and result fetch, and the driver: the floor under the library.
    """
    library = library_storage(target, servers, table)
    if target.is_async:
        return AsyncFloor(library, data)
    return SyncFloor(library, data)


class _Floor:
    def __init__(self, library: Any, data: Dataset) -> None:
        self.library = library
        self.data = data
        self.parameters: dict[int, dict[str, Any]] = {}
        self.deletes: dict[tuple[str, ...], Any] = {}

    def prepare(self, core: Any) -> None:
        self.core = core
        #: An engine that isn't in autocommit (asyncpg through PgBouncer): each operation
        #: ends its transaction, as the library's do (writes commit, reads roll back).
        self.transactional = not self.library._autocommit
        for session in (*self.data.sessions, *self.data.updated):
            self.parameters[id(session)] = core.store_parameters(session)
        for batch in delete_batches(self.data.ids):
            self.deletes[tuple(batch)] = core.ids_deletes(batch)


class SyncFloor(_Floor):
    def _end(self, commit: bool) -> None:
        if self.transactional:
            (self.connection.commit if commit else self.connection.rollback)()

    def load_session(self, id: str) -> Any:
        if not hasattr(self, "connection"):
            self.library.check_table()
            self.prepare(self.library._core)
            self.connection = self.library.engine.connect()
        row = self.connection.execute(self.core.select_by_id, {"id": id}).first()
        self._end(commit=False)
        return row

    def store_session(self, session: Session) -> bool:
        self.connection.execute(self.core.upsert, self.parameters[id(session)])
        self._end(commit=True)
        return True

    def find_sessions_by_shop(self, shop: str) -> Any:
        rows = self.connection.execute(self.core.select_by_shop, {"shop": shop}).all()
        self._end(commit=False)
        return rows

    def delete_sessions(self, ids: list[str]) -> bool:
        for statement, parameters in self.deletes[tuple(ids)]:
            if isinstance(statement, str):  # the library's driver SQL
                self.connection.exec_driver_sql(statement, parameters)
            else:
                self.connection.execute(statement, parameters)
        self._end(commit=True)
        return True

    def close(self) -> None:
        if hasattr(self, "connection"):
            self.connection.close()
        self.library.close()


class AsyncFloor(_Floor):
    async def _end(self, commit: bool) -> None:
        if self.transactional:
            await (self.connection.commit if commit else self.connection.rollback)()

    async def load_session(self, id: str) -> Any:
        if not hasattr(self, "connection"):
            await self.library.check_table()
            self.prepare(self.library._core)
            self.connection = await self.library.engine.connect()
        row = (await self.connection.execute(self.core.select_by_id, {"id": id})).first()
        await self._end(commit=False)
        return row

    async def store_session(self, session: Session) -> bool:
        await self.connection.execute(self.core.upsert, self.parameters[id(session)])
        await self._end(commit=True)
        return True

    async def find_sessions_by_shop(self, shop: str) -> Any:
        rows = (await self.connection.execute(self.core.select_by_shop, {"shop": shop})).all()
        await self._end(commit=False)
        return rows

    async def delete_sessions(self, ids: list[str]) -> bool:
        for statement, parameters in self.deletes[tuple(ids)]:
            if isinstance(statement, str):  # the library's driver SQL
                await self.connection.exec_driver_sql(statement, parameters)
            else:
                await self.connection.execute(statement, parameters)
        await self._end(commit=True)
        return True

    async def close(self) -> None:
        if hasattr(self, "connection"):
            await self.connection.close()
        await self.library.close()


def core_storage(target: Target, servers: Servers, table: str, data: Dataset) -> Any:
    """SQLAlchemy Core on an app's own engine (``create_engine(url)``, SQLAlchemy's
    defaults): each operation a connection of the engine's pool and the library's statement
    through ``execute``, as an app writing it with Core would (a write in
    ``engine.begin()``); parameters encoded beforehand, rows not made into sessions. What
    the storage on the same engine is compared with ("within 10 % of Core")."""
    storage = engine_storage(target, servers, table)
    if target.is_async:
        return AsyncCore(storage, data)
    return SyncCore(storage, data)


class SyncCore(_Floor):
    def load_session(self, id: str) -> Any:
        if not hasattr(self, "core"):
            self.library.check_table()  # untimed (the warm-up): the table and statements
            self.prepare(self.library._core)
            self.engine = self.library.engine
        with self.engine.connect() as connection:
            return connection.execute(self.core.select_by_id, {"id": id}).first()

    def store_session(self, session: Session) -> bool:
        with self.engine.begin() as connection:
            connection.execute(self.core.upsert, self.parameters[id(session)])
        return True

    def find_sessions_by_shop(self, shop: str) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(self.core.select_by_shop, {"shop": shop}).all()

    def delete_sessions(self, ids: list[str]) -> bool:
        with self.engine.begin() as connection:
            for statement, parameters in self.deletes[tuple(ids)]:
                if isinstance(statement, str):  # the library's driver SQL
                    connection.exec_driver_sql(statement, parameters)
                else:
                    connection.execute(statement, parameters)
        return True

    def close(self) -> None:
        self.library.close()


class AsyncCore(_Floor):
    async def load_session(self, id: str) -> Any:
        if not hasattr(self, "core"):
            await self.library.check_table()
            self.prepare(self.library._core)
            self.engine = self.library.engine
        async with self.engine.connect() as connection:
            return (await connection.execute(self.core.select_by_id, {"id": id})).first()

    async def store_session(self, session: Session) -> bool:
        async with self.engine.begin() as connection:
            await connection.execute(self.core.upsert, self.parameters[id(session)])
        return True

    async def find_sessions_by_shop(self, shop: str) -> Any:
        async with self.engine.connect() as connection:
            return (await connection.execute(self.core.select_by_shop, {"shop": shop})).all()

    async def delete_sessions(self, ids: list[str]) -> bool:
        async with self.engine.begin() as connection:
            for statement, parameters in self.deletes[tuple(ids)]:
                if isinstance(statement, str):  # the library's driver SQL
                    await connection.exec_driver_sql(statement, parameters)
                else:
                    await connection.execute(statement, parameters)
        return True

    async def close(self) -> None:
        await self.library.close()


def raw_sync_storage(target: Target, servers: Servers, table: str) -> Any:
    """The hand-written sync storage of ``target``."""
    if target.dialect == "postgresql":
        return raw.PsycopgStorage(
            servers.postgresql_dsn(pooler=target.pooler), table, target.pooler
        )
    if target.dialect == "mysql":
        return raw.PyMySQLStorage(servers.mysql_args(), table)
    return raw.Sqlite3Storage(servers.sqlite_path, table)


async def raw_async_storage(target: Target, servers: Servers, table: str) -> Any:
    """The hand-written asyncio storage of ``target``."""
    if target.dialect == "postgresql":
        dsn = servers.postgresql_dsn(pooler=target.pooler)
        return await raw.AsyncpgStorage.open(dsn, table, target.pooler)
    if target.dialect == "mysql":
        return await raw.AiomysqlStorage.open(servers.mysql_args("db"), table)
    return await raw.AiosqliteStorage.open(servers.sqlite_path, table)


# ------------------------------------------------------------------------- admin


class Admin:
    """Untimed work on one dialect's tables, through its sync driver."""

    def __init__(self, dialect: str, servers: Servers) -> None:
        self.dialect = dialect
        self.servers = servers
        self._connection: Any = self._connect()
        self._mark = "?" if dialect == "sqlite" else "%s"
        self._quote = "`" if dialect == "mysql" else '"'

    def _connect(self) -> Any:
        if self.dialect == "postgresql":
            import psycopg

            return psycopg.connect(self.servers.postgresql_dsn(), autocommit=True)
        if self.dialect == "mysql":
            import pymysql

            return pymysql.connect(**self.servers.mysql_args(), autocommit=True)
        return sqlite3.connect(self.servers.sqlite_path, isolation_level=None)

    def _q(self, name: str) -> str:
        return f"{self._quote}{name}{self._quote}"

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self._connection.cursor()
        try:
            if params:
                cursor.execute(sql, params)
            else:
                cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _execute(self, sql: str) -> None:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def create_table(self, table: str) -> None:
        """Create the library's default table under ``table``, with the library."""
        url = self.servers.url(self.dialect, SYNC_DRIVER[self.dialect])
        storage = SQLAlchemySessionStorage(url, table=session_table(MetaData(), table))
        try:
            storage.create_table()
        finally:
            storage.close()

    def drop_table(self, table: str) -> None:
        """Drop ``table`` and its lock table (``create_table`` makes both)."""
        self._execute(f"DROP TABLE IF EXISTS {self._q(table)}")
        self._execute(f"DROP TABLE IF EXISTS {self._q(table + '_locks')}")

    def count(self, table: str) -> int:
        return int(self._rows(f"SELECT COUNT(*) FROM {self._q(table)}")[0][0])

    def dump(self, table: str) -> list[tuple[Any, ...]]:
        """The benchmark's rows (not the pre-fill), by id, as the driver reads them."""
        columns = ", ".join(self._q(c) for c in raw.COLUMNS)
        rows = self._rows(
            f"SELECT {columns} FROM {self._q(table)} WHERE {self._q('shop')} LIKE {self._mark} "
            f"ORDER BY {self._q('id')}",
            (f"{BENCH_SHOP_PREFIX}%",),
        )
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]

    @property
    def paramstyle(self) -> str:
        """The admin driver's parameter style, for :func:`raw.statements`."""
        return "qmark" if self.dialect == "sqlite" else "format"

    def store_rows(self, table: str, sessions: Iterable[Session]) -> None:
        """Upsert ``sessions`` (the library's values) in one transaction."""
        encode = raw.sqlite_params if self.dialect == "sqlite" else raw.server_params
        upsert = raw.statements(self.dialect, table, self.paramstyle).upsert
        cursor = self._connection.cursor()
        try:
            cursor.execute("BEGIN")
            cursor.executemany(upsert, [encode(session) for session in sessions])
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def empty(self, table: str) -> None:
        self._execute(f"DELETE FROM {self._q(table)}")

    def settle(self) -> None:
        """After a side's phase: on SQLite, empty the WAL (a checkpoint), so that the next
        side's writes pay for their own checkpoints, not for the WAL another side left (the
        Python sides share one database file)."""
        if self.dialect == "sqlite":
            self._rows("PRAGMA wal_checkpoint(TRUNCATE)")

    def journal_mode(self) -> str:
        """SQLite: the journal mode of the benchmark's database file."""
        return str(self._rows("PRAGMA journal_mode")[0][0])

    def server_version(self) -> str:
        if self.dialect == "postgresql":
            return str(self._rows("SHOW server_version")[0][0]).split()[0]
        if self.dialect == "mysql":
            return str(self._rows("SELECT VERSION()")[0][0])
        return sqlite3.sqlite_version

    def prefill(self, table: str, sessions: Iterable[Session], batch: int = 10_000) -> None:
        """Bulk-insert ``sessions`` (COPY on PostgreSQL, executemany elsewhere), then ANALYZE."""
        columns = ", ".join(self._q(c) for c in raw.COLUMNS)
        if self.dialect == "postgresql":
            with (
                self._connection.cursor() as cursor,
                cursor.copy(f"COPY {self._q(table)} ({columns}) FROM STDIN") as copy,
            ):
                for session in sessions:
                    copy.write_row(raw.server_params(session))
            self._execute(f"ANALYZE {self._q(table)}")
            return
        encode = raw.sqlite_params if self.dialect == "sqlite" else raw.server_params
        marks = ", ".join([self._mark] * len(raw.COLUMNS))
        insert = f"INSERT INTO {self._q(table)} ({columns}) VALUES ({marks})"
        cursor = self._connection.cursor()
        try:
            for rows in _batches((encode(s) for s in sessions), batch):
                cursor.execute("BEGIN")
                cursor.executemany(insert, rows)
                cursor.execute("COMMIT")
            cursor.execute(
                f"ANALYZE TABLE {self._q(table)}" if self.dialect == "mysql" else "ANALYZE"
            )
            if self.dialect == "mysql":
                cursor.fetchall()
        finally:
            cursor.close()

    def copy_rows(self, source: str, target: str) -> None:
        """Copy every row of ``source`` into ``target`` (same columns), then ANALYZE."""
        self._execute(f"INSERT INTO {self._q(target)} SELECT * FROM {self._q(source)}")
        if self.dialect == "mysql":
            self._rows(f"ANALYZE TABLE {self._q(target)}")
        else:
            self._execute(f"ANALYZE {self._q(target)}")

    def explain(self, table: str, shop: str, id: str) -> dict[str, list[str]]:
        """The plans of the library's find-by-shop and load-by-id selects."""
        sql = raw.statements(self.dialect, table, "format" if self._mark == "%s" else "qmark")
        return {
            "find (by shop)": self._plan(sql.select_by_shop, shop),
            "load (by id)": self._plan(sql.select_by_id, id),
        }

    def _plan(self, select: str, value: str) -> list[str]:
        if self.dialect == "postgresql":
            import psycopg

            with psycopg.ClientCursor(self._connection) as cursor:
                cursor.execute(f"EXPLAIN {select}", (value,))
                return [str(row[0]) for row in cursor.fetchall()]
        if self.dialect == "sqlite":
            return [str(row[3]) for row in self._rows(f"EXPLAIN QUERY PLAN {select}", (value,))]
        cursor = self._connection.cursor()
        try:
            cursor.execute(f"EXPLAIN {select}", (value,))
            names = [d[0] for d in cursor.description]
            return [
                ", ".join(f"{n}={v}" for n, v in zip(names, row, strict=True))
                for row in cursor.fetchall()
            ]
        finally:
            cursor.close()

    def close(self) -> None:
        self._connection.close()


def _batches(items: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@contextlib.contextmanager
def pgbouncer(servers: Servers, targets: Sequence[Target]) -> Iterator[str | None]:
    """PgBouncer in transaction mode before the benchmark's PostgreSQL, if ``targets`` go
    through it: the tests' own (tests/pgbouncer.py), stopped afterwards. Yields why it is
    absent, or None."""
    if not any(target.pooler for target in targets):
        yield None
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pgbouncer import PgBouncer, missing  # the tests' own PgBouncer

    reason = missing()
    if reason is not None:
        yield reason
        return
    bouncer = PgBouncer(POSTGRESQL_URL, "transaction")
    servers.pgbouncer = bouncer.url
    try:
        yield None
    finally:
        servers.pgbouncer = None
        bouncer.close()
