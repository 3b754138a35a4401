from __future__ import annotations

from collections.abc import Sequence


class SessionStorageError(Exception):
    """Base class of every error this package raises on purpose.

    When the error was caused by another exception (a driver error, a SQLAlchemy
    error), that exception is chained as ``__cause__``.
    """


class InvalidSessionError(SessionStorageError, ValueError):
    """The input is not something that can be stored or built as a session.

    Raised before the database is touched: a non-``Session`` object, an empty or
    non-string id, a value the target column cannot hold, a malformed property array.
    """


class InvalidShopError(InvalidSessionError):
    """The shop domain is not a valid Shopify shop domain."""


class UnsupportedDialectError(SessionStorageError):
    """The database dialect has no supported upsert (raised at construction)."""


class MissingSessionTableError(SessionStorageError):
    """The sessions table does not exist in the database."""


class SessionTableSchemaError(SessionStorageError):
    """The sessions table exists but cannot hold sessions without losing data.

    ``problems`` lists every problem found, one sentence each.
    """

    problems: tuple[str, ...]

    def __init__(self, table: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"table {table} cannot store sessions:\n{lines}")


class StorageUnavailableError(SessionStorageError):
    """The database could not be reached, or the connection was lost mid-operation.

    Distinct from :class:`MissingSessionTableError`: the table may well exist. The
    operation may be retried once the database is back.
    """


class StorageOperationError(SessionStorageError):
    """The database was reached but failed or refused the statement."""


class StorageConflictError(StorageOperationError):
    """The database gave up on the statement because of concurrent work.

    A deadlock, a lock wait timeout, a serialization failure, or SQLite's "database is
    locked" after its busy timeout. Operations are idempotent, so the storages retry
    these a few times before raising.
    """


class DatabaseURLError(SessionStorageError, ValueError):
    """The database URL cannot be used by this storage (raised at construction).

    Not a URL, no driver of the right kind installed (the message names the extra to
    install), or a driver of the other kind: an asyncio driver given to the sync
    storage or the reverse (the message names the class to use).
    """
