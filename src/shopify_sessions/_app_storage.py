"""The storage an app's integration runs on: made from a URL (by the backend its scheme
names) or by the app's own function, of the kind its framework needs (sync or asyncio),
and checked when the app starts.

FastAPI, Flask and Django make their storage here, so a URL means the same in each. A
backend that URLs name is one entry of :data:`BACKENDS`; a URL whose scheme is not there
is a database URL, for SQLAlchemy.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._errors import MissingSessionTableError, SessionTableSchemaError
from ._storage import is_asyncio_storage
from ._wrappers import is_locking_storage, wrapper_advice


@dataclass(frozen=True, slots=True)
class StorageOptions:
    """What an app's settings may say of its storage besides the URL.

    Attributes:
        table: the table's name (SQL), or what the backend calls its collection;
            ``None``: the backend's default.
        schema: the table's schema (SQL only).
    """

    table: str | None = None
    schema: str | None = None


#: Makes the storage of a URL: ``(url, is_async, options)``.
Opener = Callable[[str, bool, StorageOptions], Any]


def _sqlalchemy(url: str, is_async: bool, options: StorageOptions) -> Any:
    if is_async:
        from .sqlalchemy import AsyncSQLAlchemySessionStorage

        return AsyncSQLAlchemySessionStorage(url, table=options.table, schema=options.schema)
    from .sqlalchemy import SQLAlchemySessionStorage

    return SQLAlchemySessionStorage(url, table=options.table, schema=options.schema)


def _redis(url: str, is_async: bool, options: StorageOptions) -> Any:
    if options.table is not None or options.schema is not None:
        raise ValueError(
            "a Redis storage keeps sessions in keys, not in a table: leave the table and "
            "schema unset, or make the storage yourself (RedisSessionStorage(url, "
            "key_prefix=...)) in a storage function"
        )
    if is_async:
        from .redis import AsyncRedisSessionStorage

        return AsyncRedisSessionStorage(url)
    from .redis import RedisSessionStorage

    return RedisSessionStorage(url)


def _dynamodb(url: str, is_async: bool, options: StorageOptions) -> Any:
    if options.schema is not None:
        raise ValueError("a DynamoDB table has no schema: leave the schema unset")
    parts = urlsplit(url)
    if options.table is not None:
        if parts.netloc and parts.netloc != options.table:
            raise ValueError(
                f"the DynamoDB URL names the table {parts.netloc!r} and the settings "
                f"{options.table!r}: name it once"
            )
        url = urlunsplit(parts._replace(netloc=options.table))
    if is_async:
        from .dynamodb import AsyncDynamoDBSessionStorage

        return AsyncDynamoDBSessionStorage(url)
    from .dynamodb import DynamoDBSessionStorage

    return DynamoDBSessionStorage(url)


#: The backends a URL names by its scheme, and what makes the storage of each; any other
#: URL is a database URL (:func:`_sqlalchemy`). A new backend adds its schemes here.
BACKENDS: dict[str, Opener] = {
    "redis": _redis,
    "rediss": _redis,
    "unix": _redis,
    "dynamodb": _dynamodb,
}


def storage_from_url(
    url: str, *, is_async: bool, options: StorageOptions = StorageOptions()
) -> Any:
    """The storage a URL names, sync or asyncio: ``redis://``, ``rediss://`` and
    ``unix://`` make a Redis storage, ``dynamodb://<table>?region=...`` a DynamoDB one
    (the settings' table, if any, names its table when the URL does not); any other URL
    a SQL one (``postgresql+asyncpg://``,
    ``sqlite:///app.db``...), whose driver :func:`~shopify_sessions.sqlalchemy.resolve_url`
    checks (an asyncio driver for a sync storage is refused, naming the class to use).

    Raises:
        TypeError: ``url`` is not a str.
        DatabaseURLError: not a URL a storage can use (SQL).
        ValueError: options the backend does not take (a table for Redis).
    """
    if not isinstance(url, str):
        raise TypeError(f"a storage URL is a str, not {type(url).__name__}")
    opener = BACKENDS.get(urlsplit(url).scheme.lower(), _sqlalchemy)
    return opener(url, is_async, options)


def app_storage(
    source: str | Callable[[], Any],
    *,
    is_async: bool,
    owner: str,
    why: str,
    options: StorageOptions = StorageOptions(),
) -> Any:
    """The storage of an app: made from a URL (:func:`storage_from_url`), or by the app's
    function, and refused when it is not a locking storage of the kind ``owner`` needs.

    Args:
        source: a URL, or a function that makes the storage.
        is_async: whether ``owner`` needs an asyncio storage.
        owner: the integration, as the message names it (``shopify_sessions.flask``).
        why: why the other kind cannot be used, for the message.
        options: the settings' table and schema, for a URL.

    Raises:
        TypeError: not a locking storage, or one of the other kind; the message names
            the class of that backend to use.
    """
    if isinstance(source, str):
        return storage_from_url(source, is_async=is_async, options=options)
    storage = source()
    check_app_storage(storage, is_async=is_async, owner=owner, why=why)
    return storage


def check_app_storage(storage: object, *, is_async: bool, owner: str, why: str) -> None:
    """Refuse a storage that is not a locking storage of the kind ``owner`` needs, naming
    the class to use instead: its backend's twin (``AsyncRedisSessionStorage`` for a
    ``RedisSessionStorage``...).

    Raises:
        TypeError: the storage is of the other kind, or not a locking storage at all.
    """
    kind, other = ("asyncio", "sync") if is_async else ("sync", "asyncio")
    name = type(storage).__name__
    # Judged as Python 3.12 judges isinstance() on a protocol, on every Python: a wrapper
    # that forwards through __getattr__ is told to subclass SessionStorageWrapper.
    if is_locking_storage(storage, is_async=is_async) and is_asyncio_storage(storage) == is_async:
        return
    if not any(is_locking_storage(storage, is_async=flag) for flag in (False, True)):
        raise TypeError(
            f"{owner} needs a {kind} locking storage (with lock_session and "
            f"sessions_due_for_refresh), and the storage function made {name}"
            + wrapper_advice(storage, is_async=is_async)
        )
    twin = twin_class(storage)
    advice = f"use its {kind} twin, {twin}" if twin else f"use a {kind} storage"
    raise TypeError(f"the storage function made {name}, a {other} storage: {why}; {advice}")


def twin_class(storage: object) -> str | None:
    """The name of the other kind's class of ``storage``'s backend (``AsyncX`` for ``X``,
    ``X`` for ``AsyncX``) when its module exports one, else ``None``."""
    name = type(storage).__name__
    twin = name.removeprefix("Async") if name.startswith("Async") else f"Async{name}"
    module = sys.modules.get(type(storage).__module__)
    return twin if twin in getattr(module, "__all__", ()) else None


def add_startup_fix(error: Exception, create_table_option: str) -> None:
    """Add the fix to the message of ``error`` (from the check of the table at startup),
    for the integration whose option to create the table is ``create_table_option``."""
    if isinstance(error, MissingSessionTableError):
        fix = (
            f"for a prototype, {create_table_option} creates it at startup; in production, "
            "create it with `shopify-sessions init` or a migration from session_table()"
        )
    elif isinstance(error, SessionTableSchemaError):
        fix = (
            "`shopify-sessions check` says what is wrong with it, and `shopify-sessions "
            "upgrade` adds what it lacks"
        )
    else:
        return
    # The same error (its type, problems and cause), its message completed.
    error.args = (f"{error}\n{fix}",)


def prepare_storage(storage: Any, *, create_table: bool, create_table_option: str) -> None:
    """At an app's startup: create the table if asked, then check it, so that a missing or
    unusable table stops the app now rather than its first request. A storage without a
    table (Redis, memory) has nothing to check."""
    try:
        if create_table and hasattr(storage, "create_table"):
            storage.create_table()
        if hasattr(storage, "check_table"):
            storage.check_table()
    except (MissingSessionTableError, SessionTableSchemaError) as error:
        add_startup_fix(error, create_table_option)
        raise


async def prepare_storage_async(
    storage: Any, *, create_table: bool, create_table_option: str
) -> None:
    """The asyncio twin of :func:`prepare_storage`."""
    try:
        if create_table and hasattr(storage, "create_table"):
            await storage.create_table()
        if hasattr(storage, "check_table"):
            await storage.check_table()
    except (MissingSessionTableError, SessionTableSchemaError) as error:
        add_startup_fix(error, create_table_option)
        raise
