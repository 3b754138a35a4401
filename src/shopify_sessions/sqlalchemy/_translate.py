"""Database failures, translated into this package's typed errors.

Messages carry the driver's own message, never SQLAlchemy's rendering of the
statement and its parameters, which would put tokens into logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from .._errors import SessionStorageError, StorageOperationError, StorageUnavailableError


@contextmanager
def connect_errors(table: str) -> Iterator[None]:
    """Any failure to get a connection means the database is unavailable."""
    try:
        yield
    except SessionStorageError:
        raise
    except (exc.SQLAlchemyError, OSError) as error:
        raise StorageUnavailableError(
            f"cannot connect to the database of {table}: {_reason(error)}"
        ) from error


@contextmanager
def statement_errors(operation: str, table: str) -> Iterator[None]:
    """A lost connection means unavailable; any other database failure, a failed operation."""
    try:
        yield
    except SessionStorageError:
        raise
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            raise StorageUnavailableError(
                f"{operation} on {table}: the connection was lost: {_reason(error)}"
            ) from error
        raise StorageOperationError(f"{operation} on {table} failed: {_reason(error)}") from error
    except (exc.SQLAlchemyError, OSError) as error:
        raise StorageOperationError(f"{operation} on {table} failed: {_reason(error)}") from error


def _reason(error: BaseException) -> str:
    cause = error.orig if isinstance(error, exc.StatementError) and error.orig else error
    text = str(cause).strip() or type(cause).__name__
    return f"{type(cause).__name__}: {text}"
