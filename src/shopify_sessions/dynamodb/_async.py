"""The asyncio DynamoDB storage: the one hand-written shell.

``_sync.py`` is generated from this file by ``scripts/unasync.py`` (CI checks that it
is): edit here, then run the script.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from .._encryption import TokenCipher
from .._errors import (
    LockTimeoutError,
    SessionStorageError,
    SessionTableSchemaError,
    StorageConflictError,
    StorageUnavailableError,
)
from .._locks import (
    DEFAULT_LOCK_LEASE,
    DEFAULT_LOCK_TIMEOUT,
    AsyncHeartbeat,
    AsyncKeyedLocks,
    check_lease,
    check_timeout,
    lock_pauses,
)
from .._session import Session
from .._storage import (
    InvalidEntryHandler,
    check_batch_size,
    check_ids,
    check_replacement,
    is_refresh_due,
)
from .._time import as_utc
from .._walks._async import delete_expired_by_walk
from . import _redact
from ._client import aclose_client, aopen_client, plan_client
from ._core import (
    BATCH_ATTEMPTS,
    DEFAULT_TABLE_NAME,
    DynamoDBCore,
    Item,
    Stored,
    backoff,
    is_legacy,
    unprocessed_items,
    unprocessed_keys,
)
from ._lease import Lease
from ._translate import CONDITION_FAILED, FAILURES, TABLE_EXISTS, error_code, failure

logger = logging.getLogger("shopify_sessions")

#: Compare-and-set rounds of ``replace_session`` before it gives up on a busy item.
REPLACE_ATTEMPTS = 4
#: Seconds ``create_table`` waits for a new table and its index to become active.
CREATE_TIMEOUT = 300.0


class AsyncDynamoDBSessionStorage:
    """Sessions in a DynamoDB table, in the items of Shopify's Node DynamoDB adapter, on
    aiobotocore's asyncio client.

    The asyncio twin of :class:`DynamoDBSessionStorage`: the same behaviour, awaited.

    A session is the item of its ``id`` in the table, holding what
    ``@shopify/shopify-app-session-storage-dynamodb`` writes (``onlineAccessInfo`` a map,
    datetimes as ISO-8601 text); a global secondary index on ``shop`` finds a shop's
    sessions. Every read of an item is strongly consistent; the index, as every global
    secondary index, is eventually consistent (see :meth:`find_sessions_by_shop`).

    Args:
        table: the table's name (the Node adapter's ``sessionTableName``), or a URL
            ``dynamodb://<table>?region=<region>&endpoint_url=<url>&shop_index=<index>``
            (``profile=`` too; credentials come from boto3's chain).
        client: a DynamoDB client the app already has (aiobotocore's, entered: ``await
            session.create_client("dynamodb").__aenter__()``); the storage uses it as it
            is and never closes it. Without one, the storage builds its own at first use.
        shop_index: the index on ``shop`` (the Node adapter's ``shopIndexName``).
        token_cipher: encrypts ``accessToken`` and ``refreshToken`` at rest (for example
            :class:`~shopify_sessions.FernetTokenCipher`); a Node app sharing the table
            cannot read encrypted tokens.
        expire_online_sessions: write a ``ttl`` attribute (epoch seconds) on online
            sessions, at their ``expires``, for DynamoDB's TTL to delete them once it is
            turned on for the table on attribute ``ttl`` (off by default: the Node
            adapter writes no ``ttl``).
        lock_lease: seconds a :meth:`lock_session` lock's lease lasts unless its holder
            renews it (every third of it, while held): how long a dead or frozen holder
            keeps the others waiting.
        endpoint_url: the endpoint of a client the storage builds (DynamoDB Local,
            dynalite, a VPC endpoint).
        region_name: the region of a client the storage builds (else boto3's own
            configuration: ``AWS_REGION``, ``~/.aws/config``).
        client_options: more keyword arguments for the client the storage builds
            (``aws_access_key_id``..., ``profile_name``, a botocore ``config`` merged
            over the storage's: ``standard`` retries, 5 s to connect, 10 s to read).

    Raises:
        DatabaseURLError: the URL is not a DynamoDB URL, or no region is configured.
        TypeError: the client is not a DynamoDB client of the storage's kind.
        ValueError: the table or index name is not one DynamoDB accepts.
    """

    __slots__ = (
        "_client",
        "_core",
        "_heartbeat",
        "_lease",
        "_locks",
        "_owns_client",
        "_plan",
    )

    def __init__(
        self,
        table: str = DEFAULT_TABLE_NAME,
        *,
        client: Any = None,
        shop_index: str | None = None,
        token_cipher: TokenCipher | None = None,
        expire_online_sessions: bool = False,
        lock_lease: float = DEFAULT_LOCK_LEASE,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._plan = plan_client(
            table,
            client=client,
            shop_index=shop_index,
            endpoint_url=endpoint_url,
            region_name=region_name,
            client_options=client_options,
            is_async=True,
        )
        self._core = DynamoDBCore(
            self._plan.table, self._plan.shop_index, token_cipher, expire_online_sessions
        )
        self._lease = check_lease(lock_lease)
        self._client: Any = self._plan.client
        self._owns_client = client is None
        self._locks = AsyncKeyedLocks()
        self._heartbeat = AsyncHeartbeat(self._lease / 3)
        _redact.install()

    @property
    def client(self) -> Any:
        """The DynamoDB client the storage runs on (``None`` until the first call, for a
        client the storage builds)."""
        return self._client

    @property
    def table_name(self) -> str:
        """The table's name."""
        return self._core.table

    @property
    def shop_index(self) -> str:
        """The name of the index on ``shop``."""
        return self._core.index

    async def create_table(self) -> None:
        """Create the table and its index on ``shop`` (keys only), billed on demand, if
        the table does not exist; then wait until both are active.

        For prototypes and tests: in production, create them with the AWS CLI,
        CloudFormation or Terraform (see the DynamoDB page of the docs).

        Raises:
            SessionTableSchemaError: a table of that name exists and cannot hold sessions.
        """
        request = self._core.create_table_request()
        await self._attempt("create_table", "create_table", request, expected=TABLE_EXISTS)
        deadline = time.monotonic() + CREATE_TIMEOUT
        pause = 0.01
        while not await self._is_active() and time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
        await self.check_table()

    async def check_table(self) -> None:
        """Check that the table exists and has the key and index the Node adapter reads.

        Raises:
            MissingSessionTableError: the table does not exist.
            SessionTableSchemaError: every problem of the table, at once.
        """
        description = await self._describe()
        problems = self._core.table_problems(description)
        if problems:
            raise SessionTableSchemaError(self._core.table, problems)

    async def store_session(self, session: Session) -> bool:
        """Store ``session`` over any session of its id: one ``PutItem``, every attribute
        written (a cleared field is cleared), as the Node adapter does. Returns ``True``."""
        await self._call(
            "store_session", "put_item", self._core.put_request(self._core.item(session))
        )
        return True

    async def load_session(self, id: str) -> Session | None:
        """The session with this id, or ``None`` when there is no such item. Read
        consistently: the last write is what is returned.

        Raises:
            SessionDataError: the item is not a session.
        """
        stored = await self._load("load_session", id)
        return None if stored is None else stored.session

    async def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Store ``session`` only if the stored one still holds ``previous``'s tokens.

        A compare-and-set on the item: it is read (consistently) and its tokens compared
        (decrypted, with a token cipher), then ``session`` is put with a condition that
        the item still holds the token attributes read. Never inserts: ``True`` when
        ``session`` is stored (or already was), ``False`` when the item holds other tokens
        or is gone, and nothing was written.

        Raises:
            StorageConflictError: the item kept changing between the read and the write.
        """
        session, previous = check_replacement(session, previous)
        item = self._core.item(session)
        for _ in range(REPLACE_ATTEMPTS):
            stored = await self._load("replace_session", session.id)
            if stored is None or not self._core.holds_tokens(stored, previous):
                return stored is not None and self._core.holds_tokens(stored, session)
            request = self._core.replace_request(item, stored.item)
            if await self._attempt("replace_session", "put_item", request):
                return True
        raise StorageConflictError(
            f"replace_session on {self._where}: the item changed {REPLACE_ATTEMPTS} times "
            "between reading and replacing it"
        )

    async def delete_session(self, id: str) -> bool:
        """Delete the session with this id (an absent id is fine). ``True``."""
        await self._call("delete_session", "delete_item", self._core.delete_request(id))
        return True

    async def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Delete the sessions with these ids, 25 a ``BatchWriteItem`` (writes DynamoDB
        leaves unprocessed are sent again). ``[]`` does nothing. ``True``."""
        for request_items in self._core.delete_batches(check_ids(ids)):
            await self._write_batch("delete_sessions", request_items)
        return True

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Every session of ``shop``, in :func:`~shopify_sessions.session_order`.

        Every page of the index on ``shop`` is read (the Node adapter reads the first
        1 MB only), then the items, 100 a ``BatchGetItem``, consistently (keys DynamoDB
        leaves unprocessed are asked again), so the sessions are as last written. The
        index is eventually consistent: a session stored a moment ago may be missing from
        it for a moment, except the shop's offline session (``offline_<shop>``), whose
        item is always read as well.
        """
        entries: list[Mapping[str, Any]] = []
        start: Item | None = None
        while True:
            page = await self._call(
                "find_sessions_by_shop", "query", self._core.query_request(shop, start)
            )
            entries += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        items = await self._get_items("find_sessions_by_shop", self._core.shop_ids(shop, entries))
        return self._core.shop_sessions(shop, items)

    async def sessions(
        self, *, batch_size: int = 500, on_invalid: InvalidEntryHandler | None = None
    ) -> AsyncIterator[list[Session]]:
        """Every session of the table, ``batch_size`` at a time, in the table's order.

        A consistent ``Scan``, a page at a time; lock items are skipped. Sessions deleted
        meanwhile are left out, sessions added meanwhile may or may not be seen. An item
        that holds no session raises :class:`~shopify_sessions.SessionDataError`; with
        ``on_invalid``, it is handed to it (by its id) with the error and left out, and
        the walk goes on.
        """
        async for batch in self._stored(batch_size, on_invalid):
            yield [stored.session for stored in batch]

    async def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = 100
    ) -> AsyncIterator[list[Session]]:
        """The offline sessions whose refresh token expires before ``before``, in id order,
        ``batch_size`` at a time.

        Every session is read (see :meth:`sessions`), so that sessions a Node app wrote
        are seen too; the due ones are gathered, then yielded in id order as the other
        storages yield them (a scan reads DynamoDB's own order).
        """
        before, size = as_utc(before), check_batch_size(batch_size)
        due: list[Session] = []
        async for batch in self.sessions():
            due += [session for session in batch if is_refresh_due(session, before)]
        due.sort(key=lambda session: session.id)
        for start in range(0, len(due), size):
            yield due[start : start + size]

    async def legacy_sessions(self, *, batch_size: int = 100) -> AsyncIterator[list[Session]]:
        """The offline sessions with a non-expiring token (no expiry, no refresh token),
        what the token exchange migrates: each page of the walk (see :meth:`sessions`)
        that holds some, as a list; memory is bounded by the page."""
        async for batch in self.sessions(batch_size=batch_size):
            legacy = [session for session in batch if is_legacy(session)]
            if legacy:
                yield legacy

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

        Walks every session (see :meth:`sessions`, which takes ``on_invalid`` too) and
        deletes the doomed ones a batch at a time. Returns how many were deleted, or with
        ``dry_run=True`` how many would be. ``progress`` is called with the number of
        sessions examined after each batch.
        """
        return await delete_expired_by_walk(
            self,
            grace=grace,
            now=now,
            batch_size=batch_size,
            dry_run=dry_run,
            progress=progress,
            on_invalid=on_invalid,
        )

    async def reencrypt_tokens(
        self, *, batch_size: int = 500, progress: Callable[[int], object] | None = None
    ) -> int:
        """Rewrite every session whose tokens are not yet encrypted under the current key.

        Each rewrite is a conditional put on the token attributes read: a session a store
        changed in between is left as the store wrote it. Returns how many were rewritten.
        """
        self._core.reencrypt_check()
        rewritten = 0
        async for batch in self._stored(batch_size):
            for stored in batch:
                item = self._core.reencrypted(stored)
                if item is not None and await self._attempt(
                    "reencrypt_tokens", "put_item", self._core.replace_request(item, stored.item)
                ):
                    rewritten += 1
            if progress is not None:
                progress(len(batch))
        return rewritten

    @asynccontextmanager
    async def lock_session(
        self, id: str, *, timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> AsyncIterator[None]:
        """Hold the lock of session ``id``: one holder at a time across threads, tasks,
        processes, hosts and Lambda functions.

        A lease item of its own in the table, ``lock:<id>``, taken with a conditional
        write when it is absent, expired or already this holder's; renewed by its holder
        every third of ``lock_lease`` while held; deleted at the end only by the holder
        that took it (the conditions compare a random owner token). The item has no
        ``shop``, so the Node adapter never sees it. A holder that dies or freezes frees
        the lock when its lease ends; a holder that outlived its lease is fenced by
        :meth:`replace_session`, and a warning is logged when it lets go. Waiters in one
        process queue in-process first. The protocol, and what it asks of the hosts'
        clocks: ``shopify_sessions/dynamodb/_lease.py``.

        Raises:
            LockTimeoutError: the lock was not free within ``timeout`` seconds.
            StorageUnavailableError: DynamoDB could not be reached.
        """
        self._core.key(id)
        timeout = check_timeout(timeout)
        deadline = time.monotonic() + timeout
        lease = Lease(self._core.table, id, secrets.token_hex(16), self._lease)
        async with self._locks.hold(id, timeout):
            for pause in lock_pauses(deadline):
                await asyncio.sleep(pause)
                if await self._attempt("lock_session", "put_item", lease.take_request()):
                    break
            else:
                raise LockTimeoutError(id, timeout)
            try:
                async with self._heartbeat.keep(functools.partial(self._renew, lease)):
                    yield
            finally:
                await self._unlock(id, lease)

    async def close(self) -> None:
        """Close the client if the storage built it."""
        client, self._client = self._client, None
        if self._owns_client and client is not None:
            await aclose_client(client)

    async def __aenter__(self) -> AsyncDynamoDBSessionStorage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def _where(self) -> str:
        return f"DynamoDB table {self._core.table}"

    async def _load(self, operation: str, id: str) -> Stored | None:
        answer = await self._call(operation, "get_item", self._core.get_request(id))
        item = answer.get("Item")
        return None if item is None else self._core.read(item, id)

    async def _stored(
        self, batch_size: int, on_invalid: InvalidEntryHandler | None = None
    ) -> AsyncIterator[list[Stored]]:
        """Every session item, read back, ``batch_size`` at a time, in the table's order."""
        size = check_batch_size(batch_size)
        pending: list[Stored] = []
        start: Item | None = None
        while True:
            page = await self._call("sessions", "scan", self._core.scan_request(size, start))
            pending += self._core.scanned(page.get("Items", []), on_invalid)
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        if pending:
            yield pending

    async def _get_items(self, operation: str, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """The items of ``ids`` (absent ones left out), 100 a ``BatchGetItem``."""
        items: list[Mapping[str, Any]] = []
        for request_items in self._core.get_batches(ids):
            pending: dict[str, Any] | None = request_items
            for attempt in range(BATCH_ATTEMPTS):
                answer = await self._call(operation, "batch_get_item", {"RequestItems": pending})
                items += answer.get("Responses", {}).get(self._core.table, [])
                pending = unprocessed_keys(answer, self._core.table)
                if pending is None:
                    break
                await asyncio.sleep(backoff(attempt))
            if pending is not None:
                raise self._unprocessed(operation)
        return items

    async def _write_batch(self, operation: str, request_items: dict[str, Any]) -> None:
        pending: dict[str, Any] | None = request_items
        for attempt in range(BATCH_ATTEMPTS):
            answer = await self._call(operation, "batch_write_item", {"RequestItems": pending})
            pending = unprocessed_items(answer, self._core.table)
            if pending is None:
                return
            await asyncio.sleep(backoff(attempt))
        raise self._unprocessed(operation)

    def _unprocessed(self, operation: str) -> StorageUnavailableError:
        return StorageUnavailableError(
            f"{operation} on {self._where}: DynamoDB left part of a batch unprocessed "
            f"{BATCH_ATTEMPTS} times (throttled)"
        )

    async def _describe(self) -> Any:
        answer = await self._call("check_table", "describe_table", {"TableName": self._core.table})
        return answer["Table"]

    async def _is_active(self) -> bool:
        table = await self._describe()
        indexes = table.get("GlobalSecondaryIndexes", [])
        return table.get("TableStatus") == "ACTIVE" and all(
            index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes
        )

    async def _renew(self, lease: Lease) -> bool:
        """Renew the lock's lease: ``False`` once it was lost (the heartbeat stops)."""
        return await self._attempt("lock_session", "update_item", lease.renew_request())

    async def _unlock(self, id: str, lease: Lease) -> None:
        try:
            released = await self._attempt("lock_session", "delete_item", lease.release_request())
        except SessionStorageError as error:
            logger.warning("lock_session %r: the lock could not be released (%s)", id, error)
            return
        if not released:
            logger.warning(
                "lock_session %r: the lock's lease of %gs ended while it was held", id, self._lease
            )

    async def _attempt(
        self,
        operation: str,
        method: str,
        request: dict[str, Any],
        *,
        expected: str = CONDITION_FAILED,
    ) -> bool:
        """A write that may be refused with the ``expected`` error code (a condition that
        did not hold): ``False`` then, ``True`` when it was done."""
        try:
            await self._call(operation, method, request, expected=expected)
        except _Refused:
            return False
        return True

    async def _call(
        self, operation: str, method: str, request: dict[str, Any], *, expected: str = ""
    ) -> Any:
        """Call the client's ``method`` with ``request``, translating its failures
        (botocore has retried what is worth retrying)."""
        client = self._client
        if client is None:
            client = await self._open()
        try:
            return await getattr(client, method)(**request)
        except FAILURES as error:
            if expected and error_code(error) == expected:
                raise _Refused from None
            raise failure(operation, self._core.table, error) from error

    async def _open(self) -> Any:
        """Build the storage's client at the first call
        (aiobotocore's is made on the running loop).

        Two first calls at once keep one client and close the other.
        """
        try:
            client = await aopen_client(self._plan)
        except FAILURES as error:
            raise failure("connect", self._core.table, error) from error
        if self._client is None:
            self._client = client
        else:
            await aclose_client(client)
        return self._client


class _Refused(Exception):
    """A conditional write's condition did not hold (never leaves the storage)."""
