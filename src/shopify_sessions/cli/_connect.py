"""Opening the storage, the engine and the reflected table a subcommand works on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import URL, Connection, Engine, Table, func, make_url, select

from .._encryption import TokenCipher
from .._errors import DatabaseURLError
from ..sqlalchemy import SQLAlchemySessionStorage
from ..sqlalchemy._schema import reflect_table
from ..sqlalchemy._translate import FAILURES, connect_failure, statement_failure
from ..sqlalchemy._url import DRIVERS, resolve_url

if TYPE_CHECKING:
    from ..redis import RedisSessionStorage

_ASYNC_DRIVERS = {driver.name for (_, is_async), ds in DRIVERS.items() if is_async for driver in ds}


def command_url(url: str) -> URL:
    """The URL the command connects with: always a synchronous driver.

    An app's ``DATABASE_URL`` may name its asyncio driver (``postgresql+asyncpg://``);
    the command drops it and picks an installed synchronous one of the same database.
    """
    if not url:
        raise DatabaseURLError("no database URL: pass --url or set DATABASE_URL")
    try:
        parsed = make_url(url)
    except Exception:
        return resolve_url(url, is_async=False)  # raises the package's own error
    backend, _, driver = parsed.drivername.partition("+")
    if driver in _ASYNC_DRIVERS or (driver == "psycopg_async"):
        parsed = parsed.set(drivername=backend)
        if "ssl" in parsed.query and backend in ("postgres", "postgresql"):
            mode = parsed.query["ssl"]
            parsed = parsed.difference_update_query(["ssl"]).update_query_dict({"sslmode": mode})
    return resolve_url(parsed, is_async=False)


def is_redis(url: str) -> bool:
    """Whether ``url`` is a Redis URL (the Redis storage) rather than a database URL."""
    return urlsplit(url).scheme in ("redis", "rediss", "unix")


def open_redis(url: str, prefix: str, cipher: TokenCipher | None = None) -> RedisSessionStorage:
    """A sync Redis storage on ``url`` under the key prefix ``prefix``."""
    from ..redis import RedisSessionStorage

    return RedisSessionStorage(url, key_prefix=prefix, token_cipher=cipher)


def describe_keys(storage: RedisSessionStorage) -> str:
    """How messages name a Redis storage's keys."""
    return f"Redis keys {storage.key_prefix}_*"


def open_storage(
    url: str,
    table: str | Table,
    schema: str | None,
    cipher: TokenCipher | None = None,
) -> SQLAlchemySessionStorage:
    """A sync storage on ``url`` for the table (a name is reflected at first use)."""
    return SQLAlchemySessionStorage(
        command_url(url),
        table=table,
        schema=schema if isinstance(table, str) else None,
        token_cipher=cipher,
    )


@contextmanager
def connection_to(engine: Engine, operation: str, *, begin: bool = False) -> Iterator[Connection]:
    """A connection whose failures become this package's typed errors."""
    try:
        connection = engine.connect()
    except FAILURES as error:
        raise connect_failure(f"the {operation}", error) from error
    try:
        with connection:
            if begin:
                with connection.begin():
                    yield connection
            else:
                yield connection
    except FAILURES as error:
        raise statement_failure(operation, "the table", error) from error


def reflect(engine: Engine, name: str, schema: str | None) -> Table | None:
    """The table as the database has it, or ``None``."""
    with connection_to(engine, "reflection") as connection:
        return reflect_table(connection, name, schema)


def count_rows(engine: Engine, table: Table, *, with_expiry: bool = False) -> int:
    """How many rows the table has (with an ``expires`` only, if asked)."""
    statement = select(func.count()).select_from(table)
    if with_expiry:
        statement = statement.where(table.c.expires.is_not(None))
    with connection_to(engine, "count") as connection:
        return int(connection.execute(statement).scalar_one())
