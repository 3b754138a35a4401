"""Database failures, translated into this package's typed errors.

Messages carry the driver's own message, never SQLAlchemy's rendering of the
statement and its parameters, which would put tokens into logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from .._errors import SessionStorageError, StorageOperationError, StorageUnavailableError

#: What a database operation can fail with, besides this package's own errors.
FAILURES = (exc.SQLAlchemyError, OSError)


def connect_failure(table: str, error: BaseException) -> StorageUnavailableError:
    """Any failure to get a connection means the database is unavailable."""
    return StorageUnavailableError(f"cannot connect to the database of {table}: {_reason(error)}")


def statement_failure(operation: str, table: str, error: BaseException) -> SessionStorageError:
    """A lost connection means unavailable; any other database failure, a failed operation."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return StorageUnavailableError(
            f"{operation} on {table}: the connection was lost: {_reason(error)}"
        )
    return StorageOperationError(f"{operation} on {table} failed: {_reason(error)}")


@contextmanager
def connect_errors(table: str) -> Iterator[None]:
    """Raise :func:`connect_failure` for a failure inside the block."""
    try:
        yield
    except FAILURES as error:
        raise connect_failure(table, error) from error


@contextmanager
def statement_errors(operation: str, table: str) -> Iterator[None]:
    """Raise :func:`statement_failure` for a failure inside the block."""
    try:
        yield
    except FAILURES as error:
        raise statement_failure(operation, table, error) from error


def _reason(error: BaseException) -> str:
    cause = error.orig if isinstance(error, exc.StatementError) and error.orig else error
    text = str(cause).strip() or type(cause).__name__
    return f"{type(cause).__name__}: {text}"
