from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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


class ConnectionPoolerError(SessionStorageError):
    """A transaction pooler (PgBouncer, Supavisor, Neon's pooler) stands between the
    storage and PostgreSQL, and the engine is not set up for it.

    Through such a pooler, a server-side prepared statement may be run by another client:
    a statement of one client under the name of another's. Raised before any session is
    read or written, or when the tell-tale errors (``prepared statement ... already
    exists`` / ``does not exist``) appear; the message says what to change: ``?pooler=
    transaction`` in the storage's URL, or ``pooler_engine_options(url)`` for an engine of
    your own.
    """


class StorageAccessDeniedError(StorageUnavailableError):
    """The database server answered, and refused the connection: an unknown user, a wrong
    password, a database that does not exist, or no right to connect to it.

    A :class:`StorageUnavailableError`, as no operation could run, but trying again does
    not help until the URL or the server's configuration is fixed; the storages do not
    retry it.
    """


class StorageOperationError(SessionStorageError):
    """The database was reached but failed or refused the statement."""


class SessionDataError(StorageOperationError):
    """A stored value is not a session this package can read.

    Raised, never returned as "no session", when a session's key holds something else:
    a shop index or another record of the Node Redis layout, a value of another Redis
    type, text that is not a property array, or a session under another id's key.
    """


class StorageConflictError(StorageOperationError):
    """The database gave up on the statement because of concurrent work.

    A deadlock, a lock wait timeout, a serialization failure, or SQLite's "database is
    locked" after its busy timeout. Operations are idempotent, so the storages retry
    these a few times before raising.
    """


class LockTimeoutError(SessionStorageError):
    """A session lock could not be taken before its timeout.

    Another worker holds it, most likely refreshing the same token; it is worth trying
    again a little later. ``id`` is the session id, ``timeout`` the seconds waited.
    """

    id: str
    timeout: float

    def __init__(self, id: str, timeout: float) -> None:
        self.id = id
        self.timeout = timeout
        super().__init__(f"the lock of session {id!r} was not free within {timeout:g} s")


class ShopTokenError(SessionStorageError):
    """A shop's token could not be renewed. ``shop`` is the shop domain, ``code`` the
    reason (``shopifyapp``'s log code, or Shopify's OAuth error). Never carries a token."""

    shop: str
    code: str

    def __init__(self, shop: str, code: str, detail: str) -> None:
        self.shop = shop
        self.code = code
        super().__init__(f"{shop}: {code}: {detail}")


class TokenRefreshError(ShopTokenError):
    """Shopify, or the network to it, failed to renew a shop's token; try again later.

    The stored pair was not changed and stays usable for the next try. ``code`` says what
    went wrong, such as ``server_error`` or ``network_error``.
    """


class TokenPersistenceError(TokenRefreshError):
    """Shopify renewed the token, but the new pair could not be stored.

    Storing was retried with backoff before this was raised; the cause is chained. The
    old pair is still in the table, untouched. Shopify keeps an old refresh token usable
    until its replacement is first used, so the next refresh normally recovers; a server
    without that grace would need the merchant to re-authorise the app.
    """


class ReauthorizationRequiredError(ShopTokenError):
    """The shop's token cannot be renewed: the merchant must open the app again.

    Shopify answered ``invalid_grant`` (the refresh token is expired, revoked or
    unknown), the stored refresh token has expired, or there is none to renew an
    expired token with. Token exchange or OAuth gives the app a new session.
    """


class TokenExchangeError(ShopTokenError):
    """Shopify did not exchange a request's session token for an offline token.

    The session token was refused (``invalid_subject_token``: expired, or not the shop's),
    the app's credentials were (``invalid_client``), or Shopify or the network failed.
    ``response`` is the response ``shopifyapp`` suggests answering the request with (its
    ``Res``: ``status``, ``body``, ``headers``); for a refused session token, that is the
    verification's ``invalid_token_response``, which makes App Bridge fetch a new one.
    """

    response: Any

    def __init__(self, shop: str, code: str, detail: str, *, response: Any = None) -> None:
        super().__init__(shop, code, detail)
        self.response = response


class DatabaseURLError(SessionStorageError, ValueError):
    """The database URL cannot be used by this storage (raised at construction).

    Not a URL, no driver of the right kind installed (the message names the extra to
    install), or a driver of the other kind: an asyncio driver given to the sync
    storage or the reverse (the message names the class to use).
    """
