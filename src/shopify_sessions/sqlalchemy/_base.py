"""What the sync and async SQL storages share beyond the core: choosing the table and the
engine's options, and what follows from the server found at first use."""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from typing import Any

from sqlalchemy import URL, MetaData, Table, make_url
from sqlalchemy.engine import Dialect

from .._encryption import TokenCipher
from .._errors import (
    ConnectionPoolerError,
    MissingSessionTableError,
    SessionStorageError,
    StorageAccessDeniedError,
    StorageConflictError,
    StorageUnavailableError,
)
from .._locks import check_lease
from ._codecs import DATETIME_FORMATS, DateTimeFormat
from ._core import HotCall, HotStatement, SessionTableCore, describe_table
from ._direct import ASYNC_DRIVERS, AUTOCOMMIT, COMMIT, SWITCH
from ._locks import LeaseStatements, lease_statements
from ._logs import ENGINE_LOGGING_NAME, hide_aiosqlite_arguments
from ._pooler import merge_engine_options, pooler_engine_options
from ._server import ServerFacts
from ._table import DEFAULT_TABLE_NAME, lock_table_name, session_lock_table, session_table
from ._translate import POOLER_HINT
from ._upsert import check_dialect

#: What ``datetime_format=`` accepts: one format for both date-time columns, or one per column.
DateTimeFormatArgument = DateTimeFormat | Mapping[str, DateTimeFormat] | None
DATETIME_COLUMNS = ("expires", "refreshTokenExpires")

#: What ``table=`` accepts: a Table, a declarative model class, a table name, or None.
TableArgument = Table | type[Any] | str | None

#: Engine options of engines built from a URL. Every operation is one statement, or
#: one batch, so autocommit makes a read one round trip with no BEGIN or ROLLBACK
#: (skip_autocommit_rollback spares the ROLLBACK that PyMySQL would otherwise send at
#: each checkin); a connection found dead is replaced by the storage's retry, so no
#: pre-ping round trip either. Bound parameters (tokens) stay out of exception text.
DEFAULT_ENGINE_OPTIONS: dict[str, Any] = {
    "isolation_level": "AUTOCOMMIT",
    "skip_autocommit_rollback": True,
    "hide_parameters": True,
    # Its records are sqlalchemy.engine.Engine.shopify_sessions's; it logs no row (_logs).
    "logging_name": ENGINE_LOGGING_NAME,
}

#: On PostgreSQL the pool also hands out the connection returned last (LIFO): the one
#: whose prepared statements are warm. A FIFO pool that once opened many connections (a
#: burst of concurrent calls) rotates sequential calls through all of them, and each
#: then parses and plans its statement again (psycopg prepares a statement at its fifth
#: execution on a connection; asyncpg's cache is per connection too): 1-2 ms more for a
#: 100-id delete_sessions. (SQLite's in-memory pools take no such option.)
POSTGRESQL_ENGINE_OPTIONS: dict[str, Any] = {"pool_use_lifo": True}


def default_engine_options(url: str | URL, *, pooled: bool = False) -> dict[str, Any]:
    """The options of an engine the storage builds from ``url``; ``pooled`` when it reaches
    PostgreSQL through a transaction pooler (see :func:`pooler_engine_options`)."""
    url = make_url(url)
    if url.get_backend_name() != "postgresql":
        return dict(DEFAULT_ENGINE_OPTIONS)
    options = {**DEFAULT_ENGINE_OPTIONS, **POSTGRESQL_ENGINE_OPTIONS}
    if pooled:
        options = merge_engine_options(options, pooler_engine_options(url))
        if url.get_driver_name() == "asyncpg":
            # asyncpg prepares, then executes, in two exchanges: only a transaction keeps
            # them on one server connection.
            del options["isolation_level"], options["skip_autocommit_rollback"]
    return options


def shares_reads(dialect: Dialect) -> bool:
    """Whether concurrent loads share queries (``_batch.py``): not on sqlite3, whose query
    runs in the process with no round trip to share, so that handing a batch from thread to
    thread costs more than the queries it saves (16 threads loading: about 35,000 loads a
    second batched, 67,000 each alone). aiosqlite's every call is a hop to its thread: there
    sharing pays."""
    return dialect.is_async or dialect.name != "sqlite"


#: Drivers that switch one pooled connection to autocommit and back without a round
#: trip: the flag lives in the client, and the pool restores it when the connection is
#: returned. On an Engine the caller built (transactional), a single-statement operation
#: on these drivers runs in autocommit: a read without BEGIN and ROLLBACK, a write
#: committing by itself. Elsewhere the switch costs more than it saves (MySQL drivers
#: send SET AUTOCOMMIT each way, and SQLAlchemy sets the isolation level again on return;
#: aiosqlite hops to its thread for each), so those keep a transaction of their own.
FREE_AUTOCOMMIT_DRIVERS = frozenset({("postgresql", "psycopg"), ("postgresql", "asyncpg")})
AUTOCOMMIT_OPTIONS: Mapping[str, Any] = {"isolation_level": "AUTOCOMMIT"}


class StorageBase:
    """Holds the table and its core; checks the real table and the server once, at first use."""

    __slots__ = (
        "_autocommit",
        "_cipher",
        "_core",
        "_datetime_formats",
        "_default_layout",
        "_dialect",
        "_direct",
        "_direct_mode",
        "_execution_options",
        "_lease",
        "_lease_statements",
        "_lock_table",
        "_name",
        "_pooled",
        "_ready",
        "_schema",
        "_server",
        "_single_options",
        "_table",
        "_table_name",
    )

    def __init__(
        self,
        dialect: Dialect,
        table: TableArgument,
        schema: str | None,
        datetime_format: DateTimeFormatArgument,
        token_cipher: TokenCipher | None,
        execution_options: Mapping[str, Any],
        *,
        pooled: bool = False,
        lock_lease: float,
    ) -> None:
        check_dialect(dialect.name)
        if dialect.driver == "aiosqlite":  # it logs parameters at DEBUG, on any engine
            hide_aiosqlite_arguments()
        self._pooled = pooled
        self._lease = check_lease(lock_lease)
        self._use_engine(dialect, execution_options)
        if token_cipher is not None and not isinstance(token_cipher, TokenCipher):
            raise TypeError(f"token_cipher must be a TokenCipher, not {token_cipher!r}")
        self._cipher = token_cipher
        self._datetime_formats = _datetime_formats(datetime_format)
        self._table: Table | None = _declared_table(table, schema)
        self._default_layout = table is None
        if self._table is not None:
            self._name, self._schema = self._table.name, self._table.schema
            self._core: SessionTableCore | None = SessionTableCore(
                self._table, dialect, self._datetime_formats, self._cipher
            )
        else:
            assert isinstance(table, str)
            self._name, self._schema = table, schema
            self._core = None
        self._ready = False
        #: The table as messages name it; kept, as every operation's errors need it.
        self._table_name = (
            describe_table(self._table) if self._table is not None else f'"{self._name}"'
        )
        locks = lock_table_name(self._name)
        declared = (
            None
            if self._table is None
            else self._table.metadata.tables.get(
                locks if self._schema is None else f"{self._schema}.{locks}"
            )
        )
        self._lock_table = (
            session_lock_table(MetaData(), locks, schema=self._schema)
            if declared is None
            else declared
        )
        self._server: ServerFacts | None = None
        self._lease_statements: LeaseStatements | None = None

    def _use_engine(self, dialect: Dialect, execution_options: Mapping[str, Any]) -> None:
        """Decide how operations use connections of an engine with these settings."""
        self._dialect = dialect
        self._execution_options = execution_options
        # Writes on an autocommit engine are single statements that commit by themselves:
        # a transaction around them would only add a COMMIT round trip (PyMySQL sends one).
        isolation = execution_options.get("isolation_level") or vars(dialect).get(
            "_on_connect_isolation_level"
        )
        self._autocommit = isolation == "AUTOCOMMIT"
        #: Execution options for the connection of a single-statement operation.
        self._single_options: Mapping[str, Any] | None = None
        free = (dialect.name, dialect.driver) in FREE_AUTOCOMMIT_DRIVERS
        # ... except asyncpg through a pooler: see default_engine_options.
        if free and not self._autocommit and not (self._pooled and dialect.driver == "asyncpg"):
            self._single_options = AUTOCOMMIT_OPTIONS
        #: Whether the hot statements may run on the pooled driver connection (``_direct``,
        #: while nothing listens to the engine), and how (``_direct_mode``): not with
        #: execution options that change how a statement runs (a schema translation, say),
        #: nor for asyncpg through a pooler, which needs a transaction around each statement.
        self._direct = (
            not execution_options
            and (not dialect.is_async or dialect.driver in ASYNC_DRIVERS)
            and not (self._pooled and dialect.driver == "asyncpg" and not self._autocommit)
            and not self._runs_through_own_attempt()
        )
        self._direct_mode = (
            AUTOCOMMIT
            if self._autocommit
            else SWITCH
            if self._single_options is not None
            else COMMIT
        )

    def _runs_through_own_attempt(self) -> bool:
        """Whether a subclass runs every operation through an ``_attempt`` of its own (the
        Django storage, on Django's connection in the caller's transaction): the hot path,
        which bypasses ``_attempt``, is then never taken. The shells define ``_attempt`` and
        ``_attempt_hot`` side by side; a class defining only the first overrides it."""
        for cls in type(self).__mro__:
            if "_attempt" in vars(cls):
                return "_attempt_hot" not in vars(cls)
        return False

    def _hot(self, statement: HotStatement | None, parameters: Mapping[str, Any]) -> HotCall | None:
        """``statement``'s call with ``parameters`` when the storage runs it on the driver
        connection (``_direct``); ``None``: through SQLAlchemy."""
        if statement is None or not self._direct:
            return None
        return statement.call(parameters)

    def _adopt_server(self, facts: ServerFacts, prepares: bool, owns_engine: bool) -> bool:
        """Take in what the server is (``prepares``: the engine's driver prepares statements
        on the server). ``True`` when the storage must build its own engine again, without
        server-side state, for a pooler found that nobody mentioned.

        Raises:
            ConnectionPoolerError: a pooler stands between, and an engine the storage
                doesn't own (or one built for a pooler already) is not set up for it.
        """
        if facts.pooled:
            asyncpg_autocommit = self._autocommit and self._dialect.driver == "asyncpg"
            if prepares or asyncpg_autocommit:
                if not owns_engine or self._pooled:
                    raise ConnectionPoolerError(
                        f"{self._table_name}: a connection pooler stands between the engine "
                        f"and PostgreSQL, and the engine keeps state on the server (prepared "
                        f"statements, or asyncpg in autocommit); {POOLER_HINT}"
                    )
                self._pooled = True
                return True
            if not self._pooled:
                self._pooled = True
                self._use_engine(self._dialect, self._execution_options)
        self._server = facts
        if self._dialect.name != "sqlite":
            self._lease_statements = lease_statements(
                self._lock_table, self._dialect, galera=facts.galera
            )
        return False

    @property
    def lock_table(self) -> Table:
        """The lock table: where :meth:`lock_session` keeps its leases on PostgreSQL and
        MySQL/MariaDB (``<table>_locks`` beside the sessions table; unused on SQLite)."""
        return self._lock_table

    @property
    def table(self) -> Table:
        """The SQLAlchemy table the storage reads and writes.

        For a storage given only a table name, it is the reflected table, available
        after the first operation or :meth:`check_table`.
        """
        if self._core is None:
            raise MissingSessionTableError(
                f"the columns of the sessions table {self._table_name} are read from the "
                "database at the first operation or check_table(); if the table does not "
                "exist yet, create_table() creates it with the default layout"
            )
        return self._core.table

    def _table_to_create(self) -> Table:
        """What ``create_table`` creates: the declared table, or the default layout under
        the name (and schema) the storage was given."""
        if self._table is not None:
            return self._table
        return session_table(MetaData(), self._name, schema=self._schema)

    def _missing_table(self) -> MissingSessionTableError:
        """The error for a table that does not exist, naming the ways to create it."""
        if self._table is not None and not self._default_layout:
            ways = "create_table(), or your own migrations"
        else:
            table = self._table_to_create()
            arguments = "" if table.name == DEFAULT_TABLE_NAME else f", {table.name!r}"
            if table.schema is not None:
                arguments += f", schema={table.schema!r}"
            ways = (
                "create_table() (the default layout), or in a migration from "
                f"session_table(metadata{arguments})"
            )
        return MissingSessionTableError(
            f"the sessions table {self._table_name} does not exist: create it with {ways}"
        )

    def _plan(
        self, write: bool, single: bool, together: bool = False
    ) -> tuple[Mapping[str, Any] | None, Transaction]:
        """How to run an operation: (execution options for its connection, or ``None``;
        the transaction to wrap it in).

        A single statement needs no transaction: a read sees one snapshot, a write commits
        by itself in autocommit. Several statements (a chunked delete) keep a transaction
        of their own, so that they apply together; on an autocommit engine only where the
        operation asks for it (``together``), as ``BEGIN`` ... ``COMMIT`` statements: one
        commit (one flush to disk) for the call instead of one per statement.
        """
        if single and self._single_options is not None:
            return self._single_options, Transaction.NONE
        if not write:
            return None, Transaction.NONE
        if not self._autocommit:
            return None, Transaction.OWN
        return None, Transaction.STATEMENTS if together and not single else Transaction.NONE

    def _adopt(self, real: Table | None) -> SessionTableCore:
        """Check the reflected table and return the core to run statements with."""
        if real is None:
            raise self._missing_table()
        core = self._core
        if core is None:
            core = SessionTableCore(real, self._dialect, self._datetime_formats, self._cipher)
        core.adopt_database_table(real)
        self._core = core
        self._ready = True
        return core


class Transaction(enum.Enum):
    """The transaction an operation runs in."""

    #: None of its own: each statement commits by itself (autocommit), or it only reads.
    NONE = "none"
    #: SQLAlchemy's ``connection.begin()`` on a transactional connection.
    OWN = "own"
    #: ``BEGIN`` and ``COMMIT`` (or ``ROLLBACK``) sent as statements on a connection in
    #: autocommit, where switching it out of autocommit costs more (MySQL drivers).
    STATEMENTS = "statements"


#: How often an operation is tried again after a conflict with concurrent work.
CONFLICT_RETRIES = 4
#: Compare-and-set rounds of ``replace_session`` before it gives up on a busy row.
REPLACE_ATTEMPTS = 4
#: Seconds a first operation waits for another one's look at the server (it may retry
#: an unavailable database once).
FIRST_USE_TIMEOUT = 300.0


def retry_delay(error: SessionStorageError, attempt: int) -> float | None:
    """Seconds to wait before trying an operation again after ``error``, or ``None``.

    Every operation is idempotent, so repeating one is safe: once, at once, after a
    lost connection (the pool hands out a fresh one); a few times, with a growing
    jittered pause, after a deadlock or lock timeout. Never after the server refused the
    connection: that lasts until the configuration is fixed.
    """
    if isinstance(error, StorageAccessDeniedError):
        return None
    if isinstance(error, StorageUnavailableError):
        return 0.0 if attempt == 0 else None
    if isinstance(error, StorageConflictError) and attempt < CONFLICT_RETRIES:
        return 0.005 * (1 << attempt) * (1 + random.random())
    return None


def check_retries(retries: int, retry_interval: float) -> None:
    """Refuse a negative or non-numeric ``retries`` / ``retry_interval``."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError("retries must be an int of 0 or more")
    if not isinstance(retry_interval, (int, float)) or retry_interval < 0:
        raise ValueError("retry_interval must be a number of seconds, 0 or more")


def _datetime_formats(argument: DateTimeFormatArgument) -> dict[str, DateTimeFormat]:
    if argument is None:
        return {}
    formats = (
        dict.fromkeys(DATETIME_COLUMNS, argument) if isinstance(argument, str) else dict(argument)
    )
    for column, chosen in formats.items():
        if column not in DATETIME_COLUMNS:
            raise ValueError(f"datetime_format names {column!r}; it applies to {DATETIME_COLUMNS}")
        if chosen not in DATETIME_FORMATS:
            raise ValueError(f"datetime_format {chosen!r} is not one of {DATETIME_FORMATS}")
    return formats


def _declared_table(table: TableArgument, schema: str | None) -> Table | None:
    if table is None:
        return session_table(MetaData(), DEFAULT_TABLE_NAME, schema=schema)
    if isinstance(table, str):
        return None
    if schema is not None:
        raise TypeError("schema= goes with a table name or the default table, not with a Table")
    if isinstance(table, Table):
        return table
    declared = getattr(table, "__table__", None)
    if isinstance(declared, Table):
        return declared
    raise TypeError(
        f"table must be a Table, a declarative model, a table name or None, not {table!r}"
    )
