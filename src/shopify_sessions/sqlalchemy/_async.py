"""The asyncio SQL storage: the one hand-written shell.

``_sync.py`` is generated from this file by ``scripts/unasync.py`` (CI checks that it
is): edit here, then run the script.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar, cast

from sqlalchemy import URL, Executable, Row, Select, Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .._batch import AsyncReadBatcher
from .._encryption import TokenCipher
from .._errors import (
    ConnectionPoolerError,
    LockTimeoutError,
    MissingSessionTableError,
    SessionStorageError,
    StorageConflictError,
    StorageOperationError,
    StorageUnavailableError,
)
from .._locks import (
    DEFAULT_LOCK_LEASE,
    DEFAULT_LOCK_TIMEOUT,
    AsyncHeartbeat,
    AsyncKeyedLocks,
    check_timeout,
    lock_pauses,
)
from .._session import Session
from .._storage import InvalidEntryHandler, check_id, expiry_cutoff
from .._time import as_utc
from ._base import (
    FIRST_USE_TIMEOUT,
    REPLACE_ATTEMPTS,
    StorageBase,
    Transaction,
    check_retries,
    default_engine_options,
    retry_delay,
    shares_reads,
)
from ._codecs import DateTimeFormat
from ._core import HotCall, IdsDelete, SessionTableCore
from ._direct import HeldConnection, holds_a_connection, quiet
from ._direct_async import async_checkout, async_execute, async_release
from ._locks import Lease, LeaseStatements, file_lock
from ._logs import keep_tokens_out_of_logs
from ._pooler import PoolerMode, merge_engine_options, take_pooler
from ._schema import reflect_table
from ._server import ServerFacts, probe_server
from ._sqlite import watch_sqlite_connections
from ._translate import (
    FAILURES,
    connect_failure,
    is_missing_table,
    statement_failure,
)
from ._url import check_dialect_kind, resolve_url

logger = logging.getLogger("shopify_sessions")

T = TypeVar("T")
#: What an operation does with its connection: execute ``statement`` with ``parameters``.
Work = Callable[[AsyncConnection, Any, Any], Awaitable[T]]


class AsyncSQLAlchemySessionStorage(StorageBase):
    """Sessions in a SQL table, through an asyncio SQLAlchemy ``AsyncEngine``.

    The asyncio twin of :class:`SQLAlchemySessionStorage`: the same behaviour, awaited.

    Args:
        engine: an ``AsyncEngine``, or a database URL to build one from (the storage then
            owns it and :meth:`close` disposes of it).
        table: the table to use: a ``Table``, a declarative model class, a table name,
            or ``None`` for the default ``session`` table of :func:`session_table`. A
            table given by name is read from the database at first use, whatever its
            layout (Drizzle, Prisma, your own); :meth:`create_table` creates it with the
            default layout if it does not exist.
        schema: the schema of a table given by name, or of the default table.
        datetime_format: how ``expires`` and ``refreshTokenExpires`` are kept in columns
            without a SQL date-time type: ``"iso"`` (JS ``toISOString()`` text),
            ``"epoch_s"`` or ``"epoch_ms"``; one value for both, or a dict by column
            name. Defaults: ISO in text columns, seconds in INTEGER columns,
            milliseconds in BIGINT and SQLite DATETIME columns (the layouts of
            Shopify's raw, Drizzle and Prisma adapters).
        token_cipher: encrypts ``accessToken`` and ``refreshToken`` at rest (for example
            :class:`~shopify_sessions.FernetTokenCipher`); rows stored in plaintext before
            still load. A Node app sharing the table cannot read encrypted tokens.
        engine_options: keyword arguments for ``create_async_engine`` when ``engine`` is a URL.
        pooler: ``"transaction"`` when PostgreSQL is reached through a transaction pooler
            (PgBouncer, Supavisor, Neon's pooler), ``"none"`` when not; the URL may say so
            with ``?pooler=``. Left out, Supabase's and Neon's pooler hosts imply it, and a
            pooler is also found at first use (the server process answering is not the
            one the driver was told of): an engine built from a URL is then built again
            without server-side prepared statements; an engine you pass must be built
            with :func:`pooler_engine_options`.
        lock_lease: seconds a session lock's lease lasts unless its holder renews it (it
            does, every third of that, while it holds the lock): the longest that a holder
            which died or froze keeps the others waiting.

    Each operation runs on a connection of its own, never in the caller's unit of work,
    so a token write commits even if the caller's transaction rolls back: a single
    autocommitted statement on the engine the storage builds from a URL; on an
    ``AsyncEngine`` you pass, a single statement on its connection switched to
    autocommit where that is free (psycopg, asyncpg), else a transaction of its own.
    An operation whose connection was lost, or that lost a deadlock, is run again
    (every operation is idempotent). The first operation checks the real table (see
    :meth:`check_table`).

    A URL may come as hosting platforms give it: ``postgres://`` or ``mysql://`` without
    a driver gets an installed driver of the storage's kind (sync or asyncio), and asyncpg
    gets ``sslmode=`` as ``ssl=``.

    Raises:
        UnsupportedDialectError: the engine's dialect is not PostgreSQL, MySQL/MariaDB or SQLite.
        DatabaseURLError: no driver of the storage's kind is installed for the URL, or the
            URL or engine has a driver of the other kind (the message names the class to use).
        SessionTableSchemaError: the declared table cannot hold sessions.
    """

    __slots__ = ("_built_from", "_engine", "_heartbeat", "_held", "_loads", "_locks")

    def __init__(
        self,
        engine: AsyncEngine | str | URL,
        *,
        table: Table | type[Any] | str | None = None,
        schema: str | None = None,
        datetime_format: DateTimeFormat | Mapping[str, DateTimeFormat] | None = None,
        token_cipher: TokenCipher | None = None,
        engine_options: Mapping[str, Any] | None = None,
        pooler: PoolerMode | None = None,
        lock_lease: float = DEFAULT_LOCK_LEASE,
    ) -> None:
        #: The URL and options the storage's own engine is built from (None: the caller's).
        self._built_from: tuple[URL, Mapping[str, Any]] | None = None
        if isinstance(engine, AsyncEngine):
            if engine_options:
                raise TypeError("engine_options go with a URL, not with an AsyncEngine")
            _, pooled = take_pooler(engine.url, pooler)
        else:
            url, pooled = take_pooler(resolve_url(engine, is_async=True), pooler)
            self._built_from = url, dict(engine_options or {})
            engine = _build_engine(*self._built_from, pooled=pooled)
        check_dialect_kind(engine.dialect, is_async=True)
        self._engine = engine
        owned = self._built_from is not None
        self._held = HeldConnection(engine) if holds_a_connection(engine, owned=owned) else None
        super().__init__(
            engine.dialect,
            table,
            schema,
            datetime_format,
            token_cipher,
            engine.get_execution_options(),
            pooled=pooled,
            lock_lease=lock_lease,
        )
        self._locks = AsyncKeyedLocks()
        self._heartbeat = AsyncHeartbeat(self._lease / 3)
        self._loads: AsyncReadBatcher[Row[Any] | None] | None = (
            AsyncReadBatcher(self._load_one, self._load_many)
            if shares_reads(engine.dialect)
            else None
        )

    @property
    def engine(self) -> AsyncEngine:
        """The engine the storage runs on."""
        return self._engine

    async def create_table(self) -> None:
        """Create the table (and its index on ``shop``), and its lock table
        (:func:`session_lock_table`), unless they exist.

        The declared table, or for a table given by name the default layout of
        :func:`session_table` under that name and schema. Meant for prototypes and tests,
        like ``drizzle-kit push``; manage production schemas with migrations (Alembic)
        using :func:`session_table`.

        The table is checked before the lock table is made, so that a table of that
        name which cannot hold sessions (another app's) gets nothing added beside it.

        Raises:
            SessionTableSchemaError: the table exists and cannot hold sessions.
        """
        table = (self._table_to_create(),)
        await self._run("create_table", _create, None, table, write=True, single=False)
        self._ready = False
        await self.check_table()
        lock = (self._lock_table,)
        await self._run("create_table", _create, None, lock, write=True, single=False)

    async def check_table(self, *, retries: int = 0, retry_interval: float = 5.0) -> None:
        """Check the real table now rather than at first use.

        Args:
            retries: how many more times to try while the database is unavailable or the
                table does not exist yet (migrations may still be running at startup).
            retry_interval: seconds between tries.

        Raises:
            MissingSessionTableError: the table does not exist.
            SessionTableSchemaError: it cannot hold sessions; lists every problem.
            StorageUnavailableError: the database cannot be reached; the cause is attached.
        """
        check_retries(retries, retry_interval)
        for attempt in range(retries + 1):
            try:
                if self._server is None:
                    await self._learn_server()
                real = await self._run("check_table", _reflect, None, (self._name, self._schema))
                self._adopt(real)
                return
            except (StorageUnavailableError, MissingSessionTableError) as error:
                if attempt == retries:
                    raise
                logger.warning("check_table: %s; trying again in %ss", error, retry_interval)
                await asyncio.sleep(retry_interval)

    async def is_ready(self, *, retries: int = 0, retry_interval: float = 5.0) -> bool:
        """Whether the table can be used now: :meth:`check_table` without the exception."""
        try:
            await self.check_table(retries=retries, retry_interval=retry_interval)
        except SessionStorageError:
            return False
        return True

    async def store_session(self, session: Session) -> bool:
        """Insert or replace ``session`` in one atomic upsert. Returns ``True``."""
        core = await self._ready_core()
        parameters = core.store_parameters(session)
        hot = self._hot(core.hot_upsert, parameters)
        await self._run("store_session", _execute, core.upsert, parameters, write=True, hot=hot)
        return True

    async def load_session(self, id: str) -> Session | None:
        """The session with this id, or ``None`` when there is no such row.

        Loads made while another load of this storage is in flight wait for it, then
        share one query (``WHERE id IN (...)``): many workers loading at once make a
        query per batch, not a query each (except on sqlite3, where a query costs less
        than handing it between threads).
        """
        core = await self._ready_core()
        id = core.id_parameters(id)["id"]
        row = await (self._load_one(id) if self._loads is None else self._loads.read(id))
        return None if row is None else core.session_from_row(row)

    async def _load_one(self, id: str) -> Row[Any] | None:
        core = self._core
        assert core is not None
        parameters = {"id": id}
        hot = self._hot(core.hot_select_by_id, parameters)
        return await self._run("load_session", _first, core.select_by_id, parameters, hot=hot)

    async def _load_many(self, ids: Sequence[str]) -> Mapping[str, Row[Any]]:
        assert self._core is not None
        rows = await self._run("load_session", _all_of, None, self._core.ids_selects(ids))
        return self._core.rows_by_id(rows)

    async def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Store ``session`` only if the stored row still holds ``previous``'s tokens.

        One conditional UPDATE, a compare-and-set on the access and refresh tokens that
        never inserts: ``True`` when ``session`` is stored (or already was), ``False``
        when the row holds other tokens or is gone, and nothing was written. With a token
        cipher the stored ciphertexts are read and compared first, since every encryption
        of a token differs.

        Raises:
            StorageConflictError: the row kept changing between the read and the write.
        """
        core = await self._ready_core()
        stored: Row[Any] | None = None
        read = core.encrypts_tokens
        for _ in range(REPLACE_ATTEMPTS):
            if read:
                parameters = core.id_parameters(session.id)
                stored = await self._run("replace_session", _first, core.select_tokens, parameters)
                if stored is None or not core.holds_tokens(stored, previous):
                    return stored is not None and core.holds_tokens(stored, session)
            parameters = core.replace_parameters(session, previous, stored)
            if await self._run("replace_session", _count, core.replace, parameters, write=True):
                return True
            read = True  # changed, gone, or already replaced (a retried write): look
        raise StorageConflictError(
            f"replace_session on {self._table_name}: the row changed {REPLACE_ATTEMPTS} times "
            "between reading and replacing it"
        )

    async def delete_session(self, id: str) -> bool:
        """Delete the session with this id (an absent id is fine). Returns ``True``."""
        core = await self._ready_core()
        parameters = core.id_parameters(id)
        hot = self._hot(core.hot_delete_by_id, parameters)
        await self._run(
            "delete_session", _execute, core.delete_by_id, parameters, write=True, hot=hot
        )
        return True

    async def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Delete the sessions with these ids (any number; ``[]`` does nothing). ``True``.

        The ids go 500 to a statement; the statements of one call share one transaction
        (one commit), on every engine. Calling it again after an error is safe.
        """
        core = await self._ready_core()
        deletes = core.ids_deletes(ids)
        if deletes:
            await self._run(
                "delete_sessions",
                _execute_all,
                None,
                deletes,
                write=True,
                single=len(deletes) == 1,
                together=True,
                hot=core.hot_delete(deletes) if self._direct else None,
            )
        return True

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Every session of ``shop``, in :func:`~shopify_sessions.session_order`."""
        core = await self._ready_core()
        parameters = core.shop_parameters(shop)
        hot = self._hot(core.hot_select_by_shop, parameters)
        rows = await self._run(
            "find_sessions_by_shop", _all, core.select_by_shop, parameters, hot=hot
        )
        return core.sessions_from_rows(rows)

    async def delete_expired_sessions(
        self,
        *,
        grace: timedelta = timedelta(0),
        now: datetime | None = None,
        batch_size: int = 500,
        dry_run: bool = False,
        progress: Callable[[int], object] | None = None,
        on_invalid: InvalidEntryHandler | None = None,
    ) -> int:
        """Delete sessions expired more than ``grace`` ago that no refresh token can renew.

        A session whose refresh token is still valid (or has no expiry) is kept, as
        it can still get a new access token. Rows are read and deleted ``batch_size``
        at a time, each batch in its own transaction, so memory and locks stay bounded
        whatever the size of the table. Returns how many sessions were deleted, or with
        ``dry_run=True`` how many would be, deleting nothing. ``progress`` is called with
        the number of rows examined after each batch.

        A row whose expiry columns hold no date-time raises
        :class:`~shopify_sessions.SessionDataError`; with ``on_invalid``, it is handed to
        it with the error, kept, and the walk goes on.
        """
        core = await self._ready_core()
        now, cutoff = expiry_cutoff(grace, now)
        deleted = 0
        async for rows in self._pages("delete_expired_sessions", core.expiry_page(batch_size)):
            doomed = core.purgeable_ids(rows, now, cutoff, on_invalid)
            if doomed and not dry_run:
                deletes = core.ids_deletes(doomed)
                await self._run(
                    "delete_expired_sessions",
                    _execute_all,
                    None,
                    deletes,
                    write=True,
                    single=len(deletes) == 1,
                    together=True,
                )
            deleted += len(doomed)
            if progress is not None:
                progress(len(rows))
        return deleted

    async def reencrypt_tokens(
        self, *, batch_size: int = 500, progress: Callable[[int], object] | None = None
    ) -> int:
        """Rewrite every token not yet encrypted under the token cipher's current key.

        Run it after adding a key (or turning encryption on) so that old keys can be
        retired. Rows are read and rewritten ``batch_size`` at a time; a row that a
        store changed in between is left as the store wrote it. Returns how many rows
        needed rewriting. ``progress`` is called with the number of rows read after
        each batch.
        """
        core = await self._ready_core()
        rewritten = 0
        async for rows in self._pages("reencrypt_tokens", core.token_page(batch_size)):
            updates = core.reencryptions(rows)
            if updates:
                await self._run(
                    "reencrypt_tokens",
                    _execute,
                    core.token_update,
                    updates,
                    write=True,
                    single=len(updates) == 1,
                )
                rewritten += len(updates)
            if progress is not None:
                progress(len(rows))
        return rewritten

    async def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = 100
    ) -> AsyncIterator[list[Session]]:
        """The offline sessions whose refresh token expires before ``before``.

        The table is read ``batch_size`` rows at a time in id order; each batch that
        holds due sessions is yielded as a list. Keep-warm jobs walk it (see
        ``OfflineTokens.refresh_expiring``).
        """
        core = await self._ready_core()
        before = as_utc(before)
        async for rows in self._pages("sessions_due_for_refresh", core.due_page(batch_size)):
            due = core.due_sessions(rows, before)
            if due:
                yield due

    @asynccontextmanager
    async def lock_session(
        self, id: str, *, timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> AsyncIterator[None]:
        """Hold the lock of session ``id``: one holder at a time across threads, tasks,
        processes and hosts.

        On PostgreSQL and MySQL/MariaDB a lease: a row of the lock table (created at first
        use if it is missing) that names its holder and expires in the database's time;
        taken, renewed every third of ``lock_lease`` while held, and given back, each by
        one statement in autocommit, so it holds through transaction poolers and on
        Galera and CockroachDB alike, and runs out ``lock_lease`` seconds after its holder
        died or froze. On SQLite, ``flock`` on a file in ``<database>.locks/`` beside the
        database, released by the kernel if the holder dies. Waiters in one process
        queue in-process first. A holder whose lease ran out cannot store over a newer
        pair: store renewed pairs with :meth:`replace_session`.

        Raises:
            LockTimeoutError: the lock was not free within ``timeout`` seconds.
            StorageUnavailableError: the database could not be reached.
        """
        id, timeout = check_id(id), check_timeout(timeout)
        deadline = time.monotonic() + timeout
        async with self._locks.hold(id, timeout):
            if self._server is None:
                await self._learn_server()
            statements = self._lease_statements
            if statements is not None:
                lease = Lease.new(id, self._lease)
                try:
                    await self._take_lease(statements, lease, deadline, timeout)
                except Exception:
                    raise
                except BaseException:  # cancelled, interrupted: the take may have landed
                    await self._release_lease(statements, lease, held=False)
                    raise
                try:
                    async with self._heartbeat.keep(
                        functools.partial(self._renew_lease, statements, lease)
                    ):
                        yield
                finally:
                    await self._release_lease(statements, lease)
                return
            lock = file_lock(self._engine.url, self._table_name, id)
            if lock is None:
                yield
                return
            try:
                for pause in lock_pauses(deadline):
                    if pause:
                        await asyncio.sleep(pause)
                    if lock.try_acquire():
                        break
                else:
                    raise LockTimeoutError(id, timeout)
                yield
            finally:
                lock.release()

    @property
    def server(self) -> ServerFacts | None:
        """What the storage found on the database server at first use (``None`` before):
        the product (PostgreSQL, CockroachDB, MySQL, MariaDB, MariaDB Galera, SQLite), its
        version, and whether a connection pooler stands between."""
        return self._server

    async def sessions(
        self, *, batch_size: int = 500, on_invalid: InvalidEntryHandler | None = None
    ) -> AsyncIterator[list[Session]]:
        """Every session in the table, in id order, ``batch_size`` at a time.

        Each batch is one query (keyset pagination on ``id``), so a table of any size
        is walked in bounded memory; rows added or changed meanwhile may or may not
        be seen. A row that holds no session raises
        :class:`~shopify_sessions.SessionDataError`; with ``on_invalid``, it is handed to
        it with the error and left out, and the walk goes on (a batch may then be
        shorter, or empty).
        """
        core = await self._ready_core()
        page = core.session_page(batch_size)
        async for rows in self._pages("sessions", page):
            yield core.sessions_of_page(rows, on_invalid)

    async def close(self) -> None:
        """Dispose of the engine if the storage built it from a URL (the connection it
        keeps on a SQLite file given back to the pool first)."""
        if self._held is not None and (connection := self._held.close()) is not None:
            await async_release(connection)
        if self._built_from is not None:
            await self._engine.dispose()

    async def __aenter__(self) -> AsyncSQLAlchemySessionStorage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _ready_core(self) -> SessionTableCore:
        if not self._ready:
            await self.check_table()
        assert self._core is not None
        return self._core

    async def _pages(self, operation: str, page: Select[Any]) -> AsyncIterator[Sequence[Row[Any]]]:
        """The rows of ``page`` (ordered by id, after ``:after``), one page at a time."""
        after = ""
        while rows := await self._run(operation, _all, page, {"after": after}):
            yield rows
            after = rows[-1][0]

    async def _run(
        self,
        operation: str,
        work: Work[T],
        statement: Any,
        parameters: Any,
        *,
        write: bool = False,
        single: bool = True,
        together: bool = False,
        retry_conflicts: bool = True,
        hot: HotCall | None = None,
    ) -> T:
        """Run ``work`` on a connection of its own, again where :func:`retry_delay` allows.

        ``single`` says that ``work`` sends one statement, ``together`` that its statements
        must commit together on every engine; see :meth:`_plan`.

        Every operation is idempotent, so repeating one whose connection died (a
        server restart, an idle timeout, a killed backend) or that lost a deadlock is safe.
        A lock's take raises a conflict at once (``retry_conflicts=False``): it means
        another taker won.

        ``hot`` is the same statement compiled to the driver's SQL (``StorageBase._hot``):
        run on the pooled driver connection while nothing listens to the engine.
        """
        attempt = 0
        while True:
            try:
                if hot is not None and quiet(self._engine):
                    return cast(T, await self._attempt_hot(operation, hot))
                return await self._attempt(
                    operation, work, statement, parameters, write, single, together
                )
            except (StorageUnavailableError, StorageConflictError) as error:
                delay = retry_delay(error, attempt)
                if delay is None or (
                    isinstance(error, StorageConflictError) and not retry_conflicts
                ):
                    raise
                logger.warning("%s: %s; trying again", operation, error)
                await asyncio.sleep(delay)
                attempt += 1

    async def _attempt(
        self,
        operation: str,
        work: Work[T],
        statement: Any,
        parameters: Any,
        write: bool,
        single: bool,
        together: bool,
    ) -> T:
        options, transaction = self._plan(write, single, together)
        try:
            connection = await self._engine.connect()
        except FAILURES as error:
            raise connect_failure(self._table_name, error) from error
        try:
            try:
                if options is not None:
                    await connection.execution_options(**options)
                if transaction is Transaction.NONE:
                    return await work(connection, statement, parameters)
                if transaction is Transaction.STATEMENTS:
                    return await _in_statements(connection, work, statement, parameters)
                async with connection.begin():
                    return await work(connection, statement, parameters)
            finally:
                await connection.close()
        except FAILURES as error:
            raise statement_failure(operation, self._table_name, error) from error

    async def _attempt_hot(self, operation: str, hot: HotCall) -> Any:
        """``hot`` on a connection of the pool, straight through the driver (``_direct``):
        the same failures, typed the same way, as :meth:`_attempt`."""
        try:
            connection = await async_checkout(self._engine, self._held)
        except FAILURES as error:
            raise connect_failure(self._table_name, error) from error
        try:
            try:
                result = await async_execute(self._engine, connection, hot, self._direct_mode)
            except BaseException:
                await async_release(connection)
                raise
            await async_release(connection, self._held)
            return result
        except FAILURES as error:
            raise statement_failure(operation, self._table_name, error) from error

    async def _learn_server(self) -> None:
        """Probe the server; for a pooler nobody mentioned, build the storage's own engine
        again without server-side state (see :meth:`StorageBase._adopt_server`). One
        caller at a time: the others wait, then find it done."""
        async with self._locks.hold("", FIRST_USE_TIMEOUT):  # "" is no session's id
            while self._server is None:
                await self._probe_once()

    async def _probe_once(self) -> None:
        try:
            facts, prepares = await self._run("check_table", _probe, None, None)
        except ConnectionPoolerError:
            # The question itself met another client's prepared statement.
            facts, prepares = ServerFacts("PostgreSQL", "", pooled=True), True
        if self._adopt_server(facts, prepares, self._built_from is not None):
            assert self._built_from is not None
            logger.warning(
                "%s: a connection pooler stands between the storage and PostgreSQL; its "
                "engine is built again without server-side prepared statements (add "
                "?pooler=transaction to the URL to say so)",
                self._table_name,
            )
            stale, self._engine = self._engine, _build_engine(*self._built_from, pooled=True)
            self._use_engine(self._engine.dialect, self._engine.get_execution_options())
            await stale.dispose()

    async def _take_lease(
        self, statements: LeaseStatements, lease: Lease, deadline: float, timeout: float
    ) -> None:
        created = False
        for pause in lock_pauses(deadline):
            if pause:  # none before the first try
                await asyncio.sleep(pause)
            try:
                if await self._run(
                    "lock_session",
                    _take,
                    statements,
                    lease.parameters,
                    write=True,
                    single=statements.take_over is None,  # PostgreSQL: one statement
                    retry_conflicts=False,
                ):
                    return
            except StorageConflictError:
                continue  # another taker won (Galera: at commit): the lease is held
            except StorageOperationError as error:
                if created or not is_missing_table(error.__cause__):
                    raise
                await self._create_lock_table(error)
                created = True
        raise LockTimeoutError(lease.id, timeout)

    async def _create_lock_table(self, missing: StorageOperationError) -> None:
        name = self._lock_table.name
        try:
            await self._run("lock_session", _create, None, (self._lock_table,), write=True)
        except SessionStorageError as error:
            raise MissingSessionTableError(
                f'the lock table "{name}" of {self._table_name} does not exist and could not '
                f"be created ({error}): create it with `shopify-sessions upgrade`, the "
                "storage's create_table(), or Alembic from session_table() / "
                "session_lock_table()"
            ) from missing
        logger.warning(
            'created the lock table "%s" of %s; define it in your migrations too '
            "(session_table() does, or session_lock_table())",
            name,
            self._table_name,
        )

    async def _renew_lease(self, statements: LeaseStatements, lease: Lease) -> bool:
        renewed = await self._run(
            "lock_session", _count, statements.renew, lease.parameters, write=True
        )
        if not renewed:
            logger.warning(
                "lock_session %r: the lease ran out before it was renewed; another worker "
                "may hold the lock now",
                lease.id,
            )
        return bool(renewed)

    async def _release_lease(
        self, statements: LeaseStatements, lease: Lease, *, held: bool = True
    ) -> None:
        try:
            released = await self._run(
                "lock_session", _count, statements.release, lease.parameters, write=True
            )
        except SessionStorageError as error:
            # Not raised over the holder's own outcome: the lease runs out by itself.
            logger.warning("lock_session %r: the lease was not given back: %s", lease.id, error)
            return
        if held and not released:
            logger.warning(
                "lock_session %r: the lease had run out before it was given back; "
                "another worker may have held the lock meanwhile",
                lease.id,
            )


def _build_engine(url: URL, options: Mapping[str, Any], *, pooled: bool) -> AsyncEngine:
    engine = create_async_engine(
        url, **merge_engine_options(default_engine_options(url, pooled=pooled), options)
    )
    watch_sqlite_connections(engine)
    keep_tokens_out_of_logs(engine)
    return engine


async def _in_statements(
    connection: AsyncConnection, work: Work[T], statement: Any, parameters: Any
) -> T:
    """``work`` between ``BEGIN`` and ``COMMIT`` on a connection in autocommit. A failed
    one is rolled back; a connection that can't say so is never pooled again."""
    await connection.exec_driver_sql("BEGIN")
    try:
        result = await work(connection, statement, parameters)
        await connection.exec_driver_sql("COMMIT")
    except Exception:
        try:
            await connection.exec_driver_sql("ROLLBACK")
        except Exception:
            await connection.invalidate()
        raise
    except BaseException:  # cancelled mid-statement: the connection's state is unknown
        await connection.invalidate()
        raise
    return result


async def _execute(connection: AsyncConnection, statement: Executable, parameters: Any) -> None:
    await connection.execute(statement, parameters)


async def _count(connection: AsyncConnection, statement: Executable, parameters: Any) -> int:
    result = await connection.execute(statement, parameters)
    return result.rowcount


async def _execute_all(
    connection: AsyncConnection, statement: None, statements: Iterable[IdsDelete]
) -> None:
    for each, parameters in statements:
        if isinstance(each, str):  # compiled to the driver's SQL already
            await connection.exec_driver_sql(each, parameters)
        else:
            await connection.execute(each, parameters)


async def _all_of(
    connection: AsyncConnection, statement: None, statements: Iterable[tuple[Executable, Any]]
) -> list[Row[Any]]:
    rows: list[Row[Any]] = []
    for each, parameters in statements:
        rows += (await connection.execute(each, parameters)).all()
    return rows


async def _first(
    connection: AsyncConnection, statement: Executable, parameters: Any
) -> Row[Any] | None:
    return (await connection.execute(statement, parameters)).first()


async def _all(
    connection: AsyncConnection, statement: Executable, parameters: Any
) -> Sequence[Row[Any]]:
    return (await connection.execute(statement, parameters)).all()


async def _reflect(
    connection: AsyncConnection, statement: None, location: tuple[str, str | None]
) -> Table | None:
    return await connection.run_sync(reflect_table, *location)


async def _create(connection: AsyncConnection, statement: None, tables: Sequence[Table]) -> None:
    for table in tables:
        await connection.run_sync(table.create, checkfirst=True)


async def _probe(connection: AsyncConnection, statement: None, parameters: None) -> Any:
    return await connection.run_sync(probe_server)


async def _take(
    connection: AsyncConnection, statements: LeaseStatements, parameters: Mapping[str, Any]
) -> bool:
    if statements.take_over is None:
        return (await connection.execute(statements.take, parameters)).first() is not None
    try:
        await connection.execute(statements.take, parameters)
    except IntegrityError:  # held, or run out: take it over if it has
        result = await connection.execute(statements.take_over, parameters)
        return result.rowcount == 1
    return True
