"""Opening the storage, the engine and the reflected table a subcommand works on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import URL, Connection, Engine, Table, func, make_url, select
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateTable

from .._encryption import TokenCipher
from .._errors import DatabaseURLError, MissingSessionTableError, StorageAccessDeniedError
from ..sqlalchemy import SQLAlchemySessionStorage
from ..sqlalchemy._core import describe_table
from ..sqlalchemy._schema import reflect_table
from ..sqlalchemy._translate import FAILURES, connect_failure, statement_failure
from ..sqlalchemy._url import DRIVERS, resolve_url
from ._options import command_line

if TYPE_CHECKING:
    from ..dynamodb import DynamoDBSessionStorage
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


def is_dynamodb(url: str) -> bool:
    """Whether ``url`` is a DynamoDB URL (``dynamodb://<table>?region=...``)."""
    return urlsplit(url).scheme == "dynamodb"


def open_dynamodb(url: str, cipher: TokenCipher | None = None) -> DynamoDBSessionStorage:
    """A sync DynamoDB storage on the table of ``url`` (credentials from boto3's chain)."""
    from ..dynamodb import DynamoDBSessionStorage

    return DynamoDBSessionStorage(url, token_cipher=cipher)


def ready_dynamodb(url: str, cipher: TokenCipher | None = None) -> DynamoDBSessionStorage:
    """:func:`open_dynamodb`, with the table checked; a missing one says how to create it."""
    storage = open_dynamodb(url, cipher)
    try:
        storage.check_table()
    except MissingSessionTableError:
        storage.close()
        raise missing_dynamodb_table(storage.table_name) from None
    return storage


def missing_dynamodb_table(table: str) -> MissingSessionTableError:
    """The error for a DynamoDB table that is not there, with the ``init`` that creates it."""
    return MissingSessionTableError(
        f"the DynamoDB table {table} does not exist: create it with `shopify-sessions init` "
        "on the same URL (or with the AWS CLI, CloudFormation or Terraform: see the docs)"
    )


def describe_dynamodb(storage: DynamoDBSessionStorage) -> str:
    """How messages name a DynamoDB storage's table."""
    return f"DynamoDB table {storage.table_name}"


def open_storage(
    url: str,
    table: str | Table,
    schema: str | None,
    cipher: TokenCipher | None = None,
    *,
    create: bool = False,
    hint: bool = True,
    connect: bool = True,
) -> SQLAlchemySessionStorage:
    """A sync storage on ``url`` for the table (a name is reflected at first use).

    SQLite makes a database file wherever it is asked to connect: unless ``create``, a
    file that does not exist is refused instead, as a server refuses an unknown database,
    and (with ``hint``) the error names the ``init`` that creates it with the table.

    With ``connect``, the storage has looked at the server already, so its ``engine`` is
    the one it keeps (one built again for a pooler found there) and ``server`` says
    what it found.
    """
    resolved = command_url(url)
    if not create and _missing_sqlite_file(resolved):
        message = f"the SQLite database file {resolved.database} does not exist"
        if hint and isinstance(table, str):
            message += f": create it and the table with `{command_line('init', table, schema)}`"
        raise StorageAccessDeniedError(message)
    storage = SQLAlchemySessionStorage(
        resolved,
        table=table,
        schema=schema if isinstance(table, str) else None,
        token_cipher=cipher,
    )
    if connect:
        storage._learn_server()
    return storage


def _missing_sqlite_file(url: URL) -> bool:
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return False
    return not path.startswith("file:") and not Path(path).exists()


def ready_storage(
    url: str, table: str, schema: str | None, cipher: TokenCipher | None = None
) -> SQLAlchemySessionStorage:
    """:func:`open_storage`, with the table checked; a missing one says how to create it."""
    storage = open_storage(url, table, schema, cipher)
    try:
        storage.check_table()
    except MissingSessionTableError:
        storage.close()
        raise missing_table(table, schema) from None
    return storage


def command_storage(
    url: str, table: str, schema: str | None, key_prefix: str, cipher: TokenCipher | None = None
) -> SQLAlchemySessionStorage | RedisSessionStorage | DynamoDBSessionStorage:
    """The storage a command works on: the Redis keys under ``key_prefix`` for a Redis
    URL, the table of a DynamoDB URL (checked), else the table, checked
    (:func:`ready_storage`)."""
    if is_redis(url):
        return open_redis(url, key_prefix, cipher)
    if is_dynamodb(url):
        return ready_dynamodb(url, cipher)
    return ready_storage(url, table, schema, cipher)


def count_sessions(
    storage: SQLAlchemySessionStorage | RedisSessionStorage | DynamoDBSessionStorage,
    *,
    with_expiry: bool = False,
) -> int:
    """How many sessions a progress bar can expect: the table's rows (with an ``expires``
    only, if asked); 0, unknown, for Redis keys and DynamoDB items, which are not counted
    before the walk."""
    if isinstance(storage, SQLAlchemySessionStorage):
        return count_rows(storage.engine, storage.table, with_expiry=with_expiry)
    return 0


def missing_table(table: str, schema: str | None) -> MissingSessionTableError:
    """The error for a table that is not there, with the ``init`` that creates it."""
    return MissingSessionTableError(
        f"the sessions table {quoted(table, schema)} does not exist: create it with "
        f"`{command_line('init', table, schema)}`"
    )


def quoted(table: str, schema: str | None) -> str:
    """A table named in a message: ``"schema"."name"`` or ``"name"``."""
    return f'"{schema}"."{table}"' if schema else f'"{table}"'


@contextmanager
def connection_to(
    engine: Engine, operation: str, table: str, *, begin: bool = False
) -> Iterator[Connection]:
    """A connection whose failures become this package's typed errors; ``table`` names
    the table in their messages."""
    try:
        connection = engine.connect()
    except FAILURES as error:
        raise connect_failure(table, error) from error
    try:
        with connection:
            if begin:
                with connection.begin():
                    yield connection
            else:
                yield connection
    except FAILURES as error:
        raise statement_failure(operation, table, error) from error


def reflect(engine: Engine, name: str, schema: str | None) -> Table | None:
    """The table as the database has it, or ``None``."""
    with connection_to(engine, "reflection", quoted(name, schema)) as connection:
        return reflect_table(connection, name, schema)


def count_rows(engine: Engine, table: Table, *, with_expiry: bool = False) -> int:
    """How many rows the table has (with an ``expires`` only, if asked)."""
    statement = select(func.count()).select_from(table)
    if with_expiry:
        statement = statement.where(table.c.expires.is_not(None))
    with connection_to(engine, "count", describe_table(table)) as connection:
        return int(connection.execute(statement).scalar_one())


def lock_table_ddl(table: Table, dialect: Dialect) -> list[str]:
    """The statements that create lock table ``table`` (UNLOGGED on PostgreSQL)."""
    statements = [str(CreateTable(table).compile(dialect=dialect)).strip()]
    if dialect.name == "postgresql":
        statements.append(
            f"ALTER TABLE {dialect.identifier_preparer.format_table(table)} SET UNLOGGED"
        )
    return statements
