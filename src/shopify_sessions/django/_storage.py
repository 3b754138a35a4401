"""The sessions storage on a Django database: SQLAlchemy's statements on Django's own
connection of the current thread, as the ORM's.

Why Django's connection rather than an engine of the storage's own:

- it is whatever database Django is using now: the test database under Django's test
  runner and pytest-django (an in-memory SQLite one included), each parallel worker's
  clone, and the development database otherwise;
- Django guards it: pytest-django's block on database access outside ``django_db`` and a
  ``SimpleTestCase``'s refusal apply to the sessions as they do to the ORM;
- it is in the caller's transaction: a ``TestCase`` rolls the sessions a test wrote back
  with the rest of its data, and on SQLite, which lets one connection write at a time, a
  session written inside a transaction (``ATOMIC_REQUESTS``, ``transaction.atomic``, a
  test) no longer waits for that very transaction to end (it used to, 25 s, then failed);
- there is no pool to close before Django drops or clones the test database.

What it changes, against :class:`~shopify_sessions.sqlalchemy.SQLAlchemySessionStorage` on
an engine of its own: a session stored inside a transaction commits (or rolls back) with
it. Each operation runs in a savepoint there, so a failed one leaves the caller's
transaction usable. The session locks' leases (PostgreSQL, MySQL/MariaDB) are the
exception: a lease must be seen by every worker at once and renewed from another thread,
so its statements run on connections of their own, opened for each statement and closed
after it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError as DjangoDatabaseError
from django.db import connections, transaction
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    NullPool,
    SingletonThreadPool,
    Table,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError

from .._errors import SessionTableSchemaError, StorageUnavailableError
from ..sqlalchemy import SQLAlchemySessionStorage, resolve_url
from ..sqlalchemy._base import DEFAULT_ENGINE_OPTIONS
from ..sqlalchemy._logs import keep_tokens_out_of_logs
from ..sqlalchemy._translate import FAILURES, connect_failure, statement_failure
from ._database import entry_url

T = TypeVar("T")

#: The SQLAlchemy backend of each Django database vendor, and of its driver modules.
_BACKENDS = {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}
_DRIVERS = {
    "psycopg": "psycopg",
    "psycopg2": "psycopg2",
    "MySQLdb": "mysqldb",
    "pymysql": "pymysql",  # PyMySQL installed as MySQLdb
    "sqlite3": "pysqlite",
}
#: Threads whose Django connection the engine keeps set up (more are set up again).
_THREADS = 64
#: The operation name under which the storage runs a lock's lease statements.
_LEASE_OPERATION = "lock_session"


class DjangoSessionStorage(SQLAlchemySessionStorage):
    """Sessions in a table of the Django database ``alias``, on Django's connections.

    Made by :func:`~shopify_sessions.django.get_storage` from ``SHOPIFY_SESSIONS``; see the
    module's docstring for how it differs from a storage on an engine of its own.
    """

    __slots__ = ("_alias", "_lease_engine")

    def __init__(self, alias: str, *, table: str, schema: str | None = None, **kw: Any) -> None:
        self._alias = alias
        #: The engine of the leases' own connections (no pool), made at the first lock.
        self._lease_engine: Engine | None = None
        super().__init__(borrowing_engine(alias), table=table, schema=schema, **kw)

    @property
    def alias(self) -> str:
        """The ``DATABASES`` alias of the sessions' database."""
        return self._alias

    @property
    def table_description(self) -> str:
        """The table as messages name it: ``"name"`` or ``"schema"."name"``."""
        return self._table_name

    def check_table(self, *, retries: int = 0, retry_interval: float = 5.0) -> None:
        """As :meth:`SQLAlchemySessionStorage.check_table`, and on SQLite, refuse a
        date-time column that Django's connection would convert on reading (see
        :func:`converted_columns`)."""
        super().check_table(retries=retries, retry_interval=retry_interval)
        converted = converted_columns(self.table, self._dialect)
        if converted:
            self._ready = False
            raise SessionTableSchemaError(self._table_name, [_converted_problem(converted)])

    def _attempt(
        self,
        operation: str,
        work: Callable[[Connection, Any, Any], T],
        statement: Any,
        parameters: Any,
        write: bool,
        single: bool,
        together: bool,
    ) -> T:
        if operation == _LEASE_OPERATION:
            return self._on_own_connection(operation, work, statement, parameters)
        wrapper = connections[self._alias]
        try:
            # Through Django, so that its guards apply (pytest-django, SimpleTestCase): a
            # refusal is raised as it is, as it would be for the ORM.
            wrapper.ensure_connection()
        except DjangoDatabaseError as error:
            raise connect_failure(self._table_name, error.__cause__ or error) from error
        # Inside the caller's transaction, a savepoint: a failed operation is rolled back
        # alone. Outside, statements of one operation commit together; one commits alone.
        atomic = wrapper.in_atomic_block or (write and not single)
        scope = transaction.atomic(using=self._alias) if atomic else contextlib.nullcontext()
        try:
            with scope, self._engine.connect() as connection:
                return work(connection, statement, parameters)
        except FAILURES as error:
            failure = statement_failure(operation, self._table_name, error)
            if isinstance(failure, StorageUnavailableError) and not wrapper.in_atomic_block:
                # The connection died (a restarted server, a killed backend): Django would
                # only find out at the end of the request. Closed now, the storage's retry
                # gets a new one from Django.
                wrapper.close()
            raise failure from error

    def close(self) -> None:
        """Let go of the leases' engine (Django's connections stay Django's)."""
        if self._lease_engine is not None:
            self._lease_engine.dispose()

    def _on_own_connection(
        self,
        operation: str,
        work: Callable[[Connection, Any, Any], T],
        statement: Any,
        parameters: Any,
    ) -> T:
        if self._lease_engine is None:
            url = resolve_url(connection_url(self._alias), is_async=False)
            # No pool: nothing stays connected to the database between locks (Django
            # could not drop or clone a test database with a connection open on it).
            self._lease_engine = create_engine(url, poolclass=NullPool, **DEFAULT_ENGINE_OPTIONS)
            keep_tokens_out_of_logs(self._lease_engine)
        try:
            connection = self._lease_engine.connect()
        except FAILURES as error:
            raise connect_failure(self._table_name, error) from error
        try:
            with connection:
                return work(connection, statement, parameters)
        except FAILURES as error:
            raise statement_failure(operation, self._table_name, error) from error


#: The date-time columns of a sessions table.
_DATETIME_COLUMNS = ("expires", "refreshTokenExpires")


def converted_columns(table: Table, dialect: Dialect) -> list[str]:
    """The date-time columns of ``table`` that Django's SQLite connections would convert as
    they read them: Django opens them with ``detect_types``, and converts a column declared
    ``DATETIME`` or ``TIMESTAMP`` with its own parser, which reads the epoch milliseconds of
    Prisma's SQLite table as nothing. Empty elsewhere."""
    if dialect.name != "sqlite":
        return []
    converted = []
    for name in _DATETIME_COLUMNS:
        if name in table.c:
            declared = str(table.c[name].type.compile(dialect=dialect)).split("(")[0].split()
            if declared and declared[0].upper() in sqlite3.converters:
                converted.append(name)
    return converted


def _converted_problem(columns: list[str]) -> str:
    return (
        f"{', '.join(columns)} would be converted by Django's SQLite connection (detect_types: "
        "DATETIME and TIMESTAMP columns go through Django's date parser, which reads "
        "Prisma's epoch milliseconds as nothing); keep such a table (Prisma's layout on "
        "SQLite) with SHOPIFY_SESSIONS['URL'], on an engine of the storage's own"
    )


def borrowing_engine(alias: str) -> Engine:
    """An engine whose every connection is Django's connection of ``alias`` in the calling
    thread: never opened, committed, rolled back or closed by SQLAlchemy (Django does
    that), so statements run in whatever transaction Django has open."""
    wrapper = connections[alias]
    driver = _DRIVERS.get(wrapper.Database.__name__.split(".")[0])
    if wrapper.vendor not in _BACKENDS or driver is None:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] ({wrapper.settings_dict.get('ENGINE')}, "
            f"{wrapper.Database.__name__}) is not a database the sessions can be kept in: "
            "PostgreSQL (psycopg), MySQL/MariaDB (mysqlclient, PyMySQL) or SQLite; "
            "set SHOPIFY_SESSIONS['URL']"
        )
    backend = _BACKENDS[wrapper.vendor]
    name = wrapper.settings_dict.get("NAME") if backend == "sqlite" else None
    # Only the dialect comes from the URL (and for SQLite the file, beside which the
    # session locks' files go); the connections are Django's.
    url = URL.create(f"{backend}+{driver}", database=str(name) if name else None)

    def borrow() -> Any:
        wrapper = connections[alias]
        wrapper.ensure_connection()
        return wrapper.connection

    options: dict[str, Any] = {"use_native_hstore": False} if backend == "postgresql" else {}
    # One pooled connection per thread, as Django has: it is set up for SQLAlchemy once,
    # not at every operation.
    engine = create_engine(
        url,
        creator=borrow,
        poolclass=SingletonThreadPool,
        pool_size=_THREADS,
        pool_reset_on_return=None,
        hide_parameters=True,
        **options,
    )
    # What ends a transaction or the connection stays Django's to do: this engine's
    # dialect (its own, shared with no other engine) commits, rolls back and closes
    # nothing.
    for method in ("do_commit", "do_rollback", "do_close", "do_terminate"):
        setattr(engine.dialect, method, _leave_to_django)
    keep_tokens_out_of_logs(engine)  # the storage's engine: it never logs rows (tokens)

    @event.listens_for(engine, "checkout")
    def still_djangos(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        # Django replaced its connection since (CONN_MAX_AGE, a test database, a lost
        # one): SQLAlchemy's pool lets go of the old one and takes the new one.
        wrapper = connections[alias]
        wrapper.ensure_connection()
        if dbapi_connection is not wrapper.connection:
            raise DisconnectionError("Django's connection was replaced")

    return engine


def _leave_to_django(dbapi_connection: Any) -> None:
    """Commit, roll back, close: Django's atomic blocks and connection handling do it."""


def connection_url(alias: str) -> str:
    """The URL of the database Django's connection of ``alias`` uses now (the test
    database under the test runner), for connections of the storage's own."""
    return entry_url(alias, connections[alias].settings_dict)
