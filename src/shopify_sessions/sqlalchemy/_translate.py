"""Database failures, translated into this package's typed errors.

Messages carry the driver's own message, never SQLAlchemy's rendering of the
statement and its parameters, which would put tokens into logs.
"""

from __future__ import annotations

import re

from sqlalchemy import exc

from .._errors import (
    ConnectionPoolerError,
    SessionStorageError,
    StorageAccessDeniedError,
    StorageConflictError,
    StorageOperationError,
    StorageUnavailableError,
)

#: What a database operation can fail with, besides this package's own errors.
FAILURES = (exc.SQLAlchemyError, OSError)


def connect_failure(table: str, error: BaseException) -> StorageUnavailableError:
    """Any failure to get a connection means the database is unavailable; one the server
    refused (credentials, no such database) says so."""
    if is_refusal(error):
        return StorageAccessDeniedError(
            f"the database server refused the connection for {table}: {_reason(error)}"
        )
    return StorageUnavailableError(f"cannot connect to the database of {table}: {_reason(error)}")


#: What a client gets when its prepared statements meet another client's on a server
#: connection shared by a transaction pooler: a name taken, a name unknown, or a name
#: bound to a statement of another shape.
POOLER_HINT = (
    "the database is reached through a transaction pooler (PgBouncer, Supavisor, Neon's "
    "pooler) that the engine is not set up for: add ?pooler=transaction to the storage's "
    "URL (or pass pooler='transaction'); build an engine of your own with "
    "create_engine(url, **shopify_sessions.sqlalchemy.pooler_engine_options(url))"
)


#: A server that refuses a connection: PostgreSQL SQLSTATEs (invalid authorization, wrong
#: password, unknown database, no privilege) and MySQL/MariaDB error numbers (access
#: denied to a database, access denied, unknown database, access denied by the plugin).
_POSTGRESQL_REFUSALS = frozenset({"28000", "28P01", "3D000", "42501"})
_MYSQL_REFUSALS = frozenset({1044, 1045, 1049, 1698})
#: The same from libpq's text, as psycopg gives no SQLSTATE for a failed connection.
_LIBPQ_REFUSAL = re.compile(
    r"FATAL:\s+(password authentication failed|role \".*\" does not exist"
    r"|database \".*\" does not exist|no pg_hba\.conf entry|permission denied for database)"
)


def is_refusal(error: BaseException) -> bool:
    """Whether a failed connection is the server refusing it, not failing to answer."""
    cause = error.orig if isinstance(error, exc.DBAPIError) and error.orig else error
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if sqlstate in _POSTGRESQL_REFUSALS:
        return True
    arguments = getattr(cause, "args", ())
    if arguments and isinstance(arguments[0], int) and arguments[0] in _MYSQL_REFUSALS:
        return True
    return _LIBPQ_REFUSAL.search(str(cause)) is not None


def statement_failure(operation: str, table: str, error: BaseException) -> SessionStorageError:
    """A lost connection means unavailable; concurrent work, a conflict; prepared statements
    meeting through a pooler, a pooler error; else a failed operation."""
    if is_pooler_collision(error):
        return ConnectionPoolerError(f"{operation} on {table}: {_reason(error)}; {POOLER_HINT}")
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return StorageUnavailableError(
            f"{operation} on {table}: the connection was lost: {_reason(error)}"
        )
    if is_conflict(error):
        return StorageConflictError(f"{operation} on {table} met concurrent work: {_reason(error)}")
    return StorageOperationError(f"{operation} on {table} failed: {_reason(error)}")


#: Driver error codes of a deadlock, a lock wait timeout or a serialization failure:
#: MySQL/MariaDB error numbers, PostgreSQL SQLSTATEs.
_MYSQL_CONFLICTS = frozenset({1205, 1213})
_POSTGRESQL_CONFLICTS = frozenset({"40001", "40P01", "55P03"})


def is_conflict(error: BaseException) -> bool:
    """Whether ``error`` is the database giving way to concurrent work (worth retrying)."""
    if not isinstance(error, exc.DBAPIError) or error.orig is None:
        return False
    cause = error.orig
    if _sqlstate(error) in _POSTGRESQL_CONFLICTS:
        return True
    arguments = getattr(cause, "args", ())
    if arguments and arguments[0] in _MYSQL_CONFLICTS:
        return True
    return "database is locked" in str(cause)


def is_pooler_collision(error: BaseException) -> bool:
    """Whether ``error`` is a prepared statement meeting another client's on the server."""
    sqlstate = _sqlstate(error)
    if sqlstate in ("42P05", "26000"):  # duplicate / unknown prepared statement
        return True
    return sqlstate == "08P01" and "prepared statement" in str(error)


def is_missing_table(error: BaseException | None) -> bool:
    """Whether ``error`` says that a table the statement names does not exist."""
    if _sqlstate(error) == "42P01":
        return True
    if not isinstance(error, exc.DBAPIError) or error.orig is None:
        return False
    arguments = getattr(error.orig, "args", ())
    return bool(arguments and arguments[0] == 1146) or "no such table" in str(error.orig)


def _sqlstate(error: BaseException | None) -> str | None:
    if not isinstance(error, exc.DBAPIError) or error.orig is None:
        return None
    cause = error.orig
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return sqlstate if isinstance(sqlstate, str) else None


def _reason(error: BaseException) -> str:
    cause = error.orig if isinstance(error, exc.StatementError) and error.orig else error
    text = str(cause).strip() or type(cause).__name__
    return f"{type(cause).__name__}: {text}"
