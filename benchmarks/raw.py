"""Hand-written raw-driver storages: the baseline the library is compared with.

Each class runs the library's SQL (the same upsert, selects and chunked DELETE, on the
same table) straight through its driver, with the connection handling an app would
write by hand, and maps rows to :class:`Session` objects with straight-line code. No
SQLAlchemy is involved. The values written are the library's, column for column:

- PostgreSQL: ``TIMESTAMP`` as naive UTC, ``BIGINT`` user id, ``BOOLEAN``;
- MariaDB/MySQL: ``DATETIME(3)`` as naive UTC, ``BIGINT`` user id, booleans as 0/1;
- SQLite: datetimes as JS ``toISOString()`` text, the user id as its ASCII digits in a BLOB.

``accessToken`` is ``NOT NULL``: an absent token is written as ``''`` and read back as None.

Transactions match the library's with its default engine (autocommit): a store is one
upsert statement, committed on its own; a load or a find is a plain select; a
``delete_sessions`` call is one ``DELETE ... WHERE id IN (...)`` of at most 500 ids, or a
transaction of several such statements for more ids.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session, session_order

UTC = timezone.utc
IDS_PER_STATEMENT = 500
#: The session columns, in the order every statement here lists them.
COLUMNS = (
    "id",
    "shop",
    "state",
    "isOnline",
    "scope",
    "expires",
    "accessToken",
    "userId",
    "firstName",
    "lastName",
    "email",
    "accountOwner",
    "locale",
    "collaborator",
    "emailVerified",
    "refreshToken",
    "refreshTokenExpires",
)

Row = Sequence[Any]
Params = tuple[Any, ...]


# --------------------------------------------------------------------------- SQL


@dataclass(frozen=True)
class Statements:
    """The SQL of one table, in one driver's parameter style."""

    upsert: str
    select_by_id: str
    select_by_shop: str
    delete_prefix: str
    placeholder: Callable[[int], str]

    def delete_by_ids(self, count: int) -> str:
        """``DELETE ... WHERE id IN (...)`` with ``count`` placeholders."""
        marks = ", ".join(self.placeholder(n) for n in range(1, count + 1))
        return f"{self.delete_prefix}({marks})"


def statements(dialect: str, table: str, paramstyle: str) -> Statements:
    """The statements for ``dialect`` (postgresql, mysql or sqlite) and a paramstyle.

    ``paramstyle`` is ``format`` (``%s``), ``qmark`` (``?``) or ``numeric`` (``$1``).
    """
    quote = "`" if dialect == "mysql" else '"'

    def q(name: str) -> str:
        return f"{quote}{name}{quote}"

    def placeholder(n: int) -> str:
        return {"format": "%s", "qmark": "?", "numeric": f"${n}"}[paramstyle]

    columns = ", ".join(q(c) for c in COLUMNS)
    values = ", ".join(placeholder(n) for n in range(1, len(COLUMNS) + 1))
    insert = f"INSERT INTO {q(table)} ({columns}) VALUES ({values})"
    if dialect == "mysql":
        updates = ", ".join(f"{q(c)} = VALUES({q(c)})" for c in COLUMNS[1:])
        upsert = f"{insert} ON DUPLICATE KEY UPDATE {updates}"
    else:
        updates = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in COLUMNS[1:])
        upsert = f"{insert} ON CONFLICT ({q('id')}) DO UPDATE SET {updates}"
    select = f"SELECT {columns} FROM {q(table)} WHERE "
    return Statements(
        upsert=upsert,
        select_by_id=f"{select}{q('id')} = {placeholder(1)}",
        select_by_shop=f"{select}{q('shop')} = {placeholder(1)}",
        delete_prefix=f"DELETE FROM {q(table)} WHERE {q('id')} IN ",
        placeholder=placeholder,
    )


# ---------------------------------------------------------------------- encoding


def _naive(value: datetime | None) -> datetime | None:
    # Session datetimes are always aware UTC: dropping tzinfo gives the UTC wall clock.
    return None if value is None else value.replace(tzinfo=None)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def server_params(session: Session) -> Params:
    """Upsert parameters for PostgreSQL and MariaDB/MySQL."""
    info = session.online_access_info
    user = info.associated_user if info is not None else AssociatedUser()
    return (
        session.id,
        session.shop,
        session.state,
        session.is_online,
        session.scope,
        _naive(session.expires),
        session.access_token or "",
        user.id,
        user.first_name,
        user.last_name,
        user.email,
        user.account_owner,
        user.locale,
        user.collaborator,
        user.email_verified,
        session.refresh_token,
        _naive(session.refresh_token_expires),
    )


def sqlite_params(session: Session) -> Params:
    """Upsert parameters for SQLite's default table (ISO text datetimes, BLOB user id)."""
    info = session.online_access_info
    user = info.associated_user if info is not None else AssociatedUser()
    return (
        session.id,
        session.shop,
        session.state,
        session.is_online,
        session.scope,
        _iso(session.expires),
        session.access_token or "",
        None if user.id is None else str(user.id).encode("ascii"),
        user.first_name,
        user.last_name,
        user.email,
        user.account_owner,
        user.locale,
        user.collaborator,
        user.email_verified,
        session.refresh_token,
        _iso(session.refresh_token_expires),
    )


# ---------------------------------------------------------------------- decoding


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _from_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=UTC)


def _user_id_digits(value: bytes | None) -> int | None:
    return None if value is None else int(value)


def _user_id_int(value: int | None) -> int | None:
    return value


def _bool(value: object) -> bool | None:
    return None if value is None else bool(value)


def session_from_row(
    row: Row,
    datetime_of: Callable[[Any], datetime | None],
    user_id_of: Callable[[Any], int | None],
) -> Session:
    """The session in a select row, given how this table keeps datetimes and user ids."""
    (
        id,
        shop,
        state,
        is_online,
        scope,
        expires,
        access_token,
        user_id,
        first_name,
        last_name,
        email,
        account_owner,
        locale,
        collaborator,
        email_verified,
        refresh_token,
        refresh_token_expires,
    ) = row
    info = None
    if is_online:
        info = OnlineAccessInfo(
            associated_user=AssociatedUser(
                id=user_id_of(user_id),
                first_name=first_name,
                last_name=last_name,
                email=email,
                email_verified=_bool(email_verified),
                account_owner=_bool(account_owner),
                locale=locale,
                collaborator=_bool(collaborator),
            )
        )
    return Session(
        id,
        shop,
        state,
        bool(is_online),
        scope=scope,
        expires=datetime_of(expires),
        access_token=access_token or None,
        refresh_token=refresh_token,
        refresh_token_expires=datetime_of(refresh_token_expires),
        online_access_info=info,
    )


def server_session(row: Row) -> Session:
    """A PostgreSQL or MariaDB row as a session."""
    return session_from_row(row, _utc, _user_id_int)


def sqlite_session(row: Row) -> Session:
    """A SQLite row (default table) as a session."""
    return session_from_row(row, _from_iso, _user_id_digits)


def sorted_sessions(rows: Sequence[Row], decode: Callable[[Row], Session]) -> list[Session]:
    """The sessions of a find, in the library's documented order."""
    return sorted(map(decode, rows), key=session_order)


def chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    """Unique ids, first occurrence first, in chunks of :data:`IDS_PER_STATEMENT`."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), IDS_PER_STATEMENT):
        yield unique[start : start + IDS_PER_STATEMENT]


# ------------------------------------------------------------------ sync storages


class _PerThreadConnections:
    """One connection per thread, opened on first use; ``close`` closes them all."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Any] = []

    def get(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()
        self._local = threading.local()


class PsycopgStorage:
    """PostgreSQL through psycopg 3: autocommit connections, one per thread (through a
    transaction pooler, ``pooled``: without server-side prepared statements)."""

    def __init__(self, conninfo: str, table: str, pooled: bool = False) -> None:
        import psycopg

        self._sql = statements("postgresql", table, "format")
        options: dict[str, Any] = {"prepare_threshold": None} if pooled else {}
        self._connections = _PerThreadConnections(
            lambda: psycopg.connect(conninfo, autocommit=True, **options)
        )

    def store_session(self, session: Session) -> bool:
        self._connections.get().execute(self._sql.upsert, server_params(session))
        return True

    def load_session(self, id: str) -> Session | None:
        row = self._connections.get().execute(self._sql.select_by_id, (id,)).fetchone()
        return None if row is None else server_session(row)

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        rows = self._connections.get().execute(self._sql.select_by_shop, (shop,)).fetchall()
        return sorted_sessions(rows, server_session)

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        connection = self._connections.get()
        if len(ids) <= IDS_PER_STATEMENT:
            connection.execute(self._sql.delete_by_ids(len(ids)), ids)
            return True
        with connection.transaction():
            for chunk in chunks(ids):
                connection.execute(self._sql.delete_by_ids(len(chunk)), chunk)
        return True

    def close(self) -> None:
        self._connections.close()


class PyMySQLStorage:
    """MariaDB/MySQL through PyMySQL: autocommit connections, one per thread."""

    def __init__(self, connect_args: dict[str, Any], table: str) -> None:
        import pymysql

        self._sql = statements("mysql", table, "format")
        self._connections = _PerThreadConnections(
            lambda: pymysql.connect(**connect_args, autocommit=True)
        )

    def store_session(self, session: Session) -> bool:
        with self._connections.get().cursor() as cursor:
            cursor.execute(self._sql.upsert, server_params(session))
        return True

    def load_session(self, id: str) -> Session | None:
        with self._connections.get().cursor() as cursor:
            cursor.execute(self._sql.select_by_id, (id,))
            row = cursor.fetchone()
        return None if row is None else server_session(row)

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        with self._connections.get().cursor() as cursor:
            cursor.execute(self._sql.select_by_shop, (shop,))
            rows = cursor.fetchall()
        return sorted_sessions(rows, server_session)

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        connection = self._connections.get()
        if len(ids) <= IDS_PER_STATEMENT:
            with connection.cursor() as cursor:
                cursor.execute(self._sql.delete_by_ids(len(ids)), ids)
            return True
        connection.begin()
        try:
            with connection.cursor() as cursor:
                for chunk in chunks(ids):
                    cursor.execute(self._sql.delete_by_ids(len(chunk)), chunk)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return True

    def close(self) -> None:
        self._connections.close()


class Sqlite3Storage:
    """SQLite through the standard library's sqlite3: one connection per thread.

    Each connection is only used by its thread; ``check_same_thread=False`` only lets
    ``close`` run from the main thread.

    Autocommit (``isolation_level=None``), as the library's default engine; several
    DELETE statements run inside an explicit ``BEGIN`` ... ``COMMIT``.
    """

    def __init__(self, path: str, table: str) -> None:
        self._sql = statements("sqlite", table, "qmark")
        self._connections = _PerThreadConnections(
            lambda: sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        )

    def store_session(self, session: Session) -> bool:
        self._connections.get().execute(self._sql.upsert, sqlite_params(session))
        return True

    def load_session(self, id: str) -> Session | None:
        row = self._connections.get().execute(self._sql.select_by_id, (id,)).fetchone()
        return None if row is None else sqlite_session(row)

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        rows = self._connections.get().execute(self._sql.select_by_shop, (shop,)).fetchall()
        return sorted_sessions(rows, sqlite_session)

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        connection = self._connections.get()
        if len(ids) <= IDS_PER_STATEMENT:
            connection.execute(self._sql.delete_by_ids(len(ids)), ids)
            return True
        connection.execute("BEGIN")
        try:
            for chunk in chunks(ids):
                connection.execute(self._sql.delete_by_ids(len(chunk)), chunk)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return True

    def close(self) -> None:
        self._connections.close()


# ----------------------------------------------------------------- async storages


class AsyncpgStorage:
    """PostgreSQL through an ``asyncpg.create_pool`` pool (up to 16 connections).

    Through a transaction pooler (``pooled``): no statement cache, and each operation in a
    transaction, which alone keeps asyncpg's prepare and execute on one server connection.
    """

    def __init__(self, pool: Any, table: str, pooled: bool = False) -> None:
        self._pool = pool
        self._sql = statements("postgresql", table, "numeric")
        self._pooled = pooled

    @classmethod
    async def open(cls, dsn: str, table: str, pooled: bool = False) -> AsyncpgStorage:
        import asyncpg

        options = {"statement_cache_size": 0} if pooled else {}
        return cls(
            await asyncpg.create_pool(dsn, min_size=1, max_size=16, **options), table, pooled
        )

    async def _call(self, method: str, *arguments: Any) -> Any:
        """``pool.<method>(*arguments)``; through a pooler, on a connection in a transaction."""
        if not self._pooled:
            return await getattr(self._pool, method)(*arguments)
        async with self._pool.acquire() as connection, connection.transaction():
            return await getattr(connection, method)(*arguments)

    async def store_session(self, session: Session) -> bool:
        await self._call("execute", self._sql.upsert, *server_params(session))
        return True

    async def load_session(self, id: str) -> Session | None:
        row = await self._call("fetchrow", self._sql.select_by_id, id)
        return None if row is None else server_session(row)

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        rows = await self._call("fetch", self._sql.select_by_shop, shop)
        return sorted_sessions(rows, server_session)

    async def delete_sessions(self, ids: Sequence[str]) -> bool:
        if len(ids) <= IDS_PER_STATEMENT:
            await self._call("execute", self._sql.delete_by_ids(len(ids)), *ids)
            return True
        async with self._pool.acquire() as connection, connection.transaction():
            for chunk in chunks(ids):
                await connection.execute(self._sql.delete_by_ids(len(chunk)), *chunk)
        return True

    async def close(self) -> None:
        await self._pool.close()


class AiomysqlStorage:
    """MariaDB/MySQL through an ``aiomysql.create_pool`` pool of autocommit connections."""

    def __init__(self, pool: Any, table: str) -> None:
        self._pool = pool
        self._sql = statements("mysql", table, "format")

    @classmethod
    async def open(cls, connect_args: dict[str, Any], table: str) -> AiomysqlStorage:
        import aiomysql

        pool = await aiomysql.create_pool(**connect_args, autocommit=True, minsize=1, maxsize=16)
        return cls(pool, table)

    async def store_session(self, session: Session) -> bool:
        async with self._pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(self._sql.upsert, server_params(session))
        return True

    async def load_session(self, id: str) -> Session | None:
        async with self._pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(self._sql.select_by_id, (id,))
            row = await cursor.fetchone()
        return None if row is None else server_session(row)

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        async with self._pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(self._sql.select_by_shop, (shop,))
            rows = await cursor.fetchall()
        return sorted_sessions(rows, server_session)

    async def delete_sessions(self, ids: Sequence[str]) -> bool:
        async with self._pool.acquire() as connection:
            if len(ids) <= IDS_PER_STATEMENT:
                async with connection.cursor() as cursor:
                    await cursor.execute(self._sql.delete_by_ids(len(ids)), ids)
                return True
            await connection.begin()
            try:
                async with connection.cursor() as cursor:
                    for chunk in chunks(ids):
                        await cursor.execute(self._sql.delete_by_ids(len(chunk)), chunk)
                await connection.commit()
            except BaseException:
                await connection.rollback()
                raise
        return True

    async def close(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()


class AiosqliteStorage:
    """SQLite through one shared aiosqlite connection, one operation at a time.

    The lock keeps one task's transaction from taking in another task's statements.
    """

    def __init__(self, connection: Any, table: str) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        self._sql = statements("sqlite", table, "qmark")

    @classmethod
    async def open(cls, path: str, table: str) -> AiosqliteStorage:
        import aiosqlite

        return cls(await aiosqlite.connect(path, isolation_level=None), table)

    async def store_session(self, session: Session) -> bool:
        async with self._lock:
            await self._connection.execute(self._sql.upsert, sqlite_params(session))
        return True

    async def load_session(self, id: str) -> Session | None:
        async with self._lock, self._connection.execute(self._sql.select_by_id, (id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else sqlite_session(row)

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        async with (
            self._lock,
            self._connection.execute(self._sql.select_by_shop, (shop,)) as cursor,
        ):
            rows = await cursor.fetchall()
        return sorted_sessions(rows, sqlite_session)

    async def delete_sessions(self, ids: Sequence[str]) -> bool:
        async with self._lock:
            if len(ids) <= IDS_PER_STATEMENT:
                await self._connection.execute(self._sql.delete_by_ids(len(ids)), ids)
                return True
            await self._connection.execute("BEGIN")
            try:
                for chunk in chunks(ids):
                    await self._connection.execute(self._sql.delete_by_ids(len(chunk)), chunk)
                await self._connection.execute("COMMIT")
            except BaseException:
                await self._connection.execute("ROLLBACK")
                raise
        return True

    async def close(self) -> None:
        await self._connection.close()
