# Generated from _async.py by scripts/unasync.py: edit that file, then run the script.
"""The synchronous Redis storage."""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from redis import Redis, RedisCluster
from redis.exceptions import NoScriptError

from .._encryption import TokenCipher
from .._errors import (
    LockTimeoutError,
    SessionStorageError,
    StorageConflictError,
    StorageUnavailableError,
)
from .._locks import (
    DEFAULT_LOCK_LEASE,
    DEFAULT_LOCK_TIMEOUT,
    Heartbeat,
    KeyedLocks,
    check_lease,
    check_timeout,
    lock_pauses,
)
from .._session import Session
from .._storage import (
    InvalidEntryHandler,
    check_batch_size,
    check_id,
    check_ids,
    check_replacement,
    is_refresh_due,
)
from .._time import as_utc
from .._walks._sync import delete_expired_by_walk
from ._client import check_client, client_from_url, close_client
from ._core import (
    DEFAULT_KEY_PREFIX,
    MIGRATIONS_DONE,
    RedisCore,
    Stored,
    is_own_lock,
    same_slot,
)
from ._scripts import (
    DELETE,
    INDEX_ADD,
    INDEX_REMOVE,
    RENEW,
    REPLACE,
    REPLACE_LISTED,
    STORE,
    STORE_LISTED,
    UNLOCK,
    UNSTORE,
    Script,
)
from ._translate import FAILURES, failure

logger = logging.getLogger("shopify_sessions")

#: Compare-and-set rounds of ``replace_session`` before it gives up on a busy key.
REPLACE_ATTEMPTS = 4
#: Keys read (or deleted) per pipeline in the operations that walk many.
PIPELINE_SIZE = 500


class RedisSessionStorage:
    """Sessions in Redis, in the keys of Shopify's Node Redis adapter, on redis-py's
    synchronous client.

    A session is the key ``<key_prefix>_<id>``, holding the JSON of its property array as
    ``@shopify/shopify-app-session-storage-redis`` writes it; each shop's sessions are
    listed in ``<key_prefix>_<shop>``, a JSON array of session keys, updated atomically
    (a Lua script per key, so it works on Redis Cluster too, where a session and its
    shop's list live in different slots). A session is written and listed together or not
    at all: by one script where both keys are in one slot (one Redis; a cluster under a
    ``key_prefix`` with a hash tag, such as ``{sessions}``), else on a cluster by two, the
    first undone when the second fails.

    Args:
        client: a Redis URL (``redis://``, ``rediss://``, ``unix://``; add
            ``?cluster=true`` for a Redis Cluster), or a redis-py client the app already
            has: ``redis.Redis`` or ``redis.RedisCluster``. A client built
            from a URL is the storage's own, and :meth:`close` closes it.
        key_prefix: the prefix of every key (the Node adapter's ``sessionKeyPrefix``).
        token_cipher: encrypts ``accessToken`` and ``refreshToken`` at rest (for example
            :class:`~shopify_sessions.FernetTokenCipher`); a Node app sharing the keys
            cannot read encrypted tokens.
        expire_online_sessions: give an online session's key a Redis expiry at the
            session's ``expires`` (off by default, as in the Node adapter), so that Redis
            drops it when its token is no longer valid.
        lock_lease: seconds a :meth:`lock_session` lock's lease lasts unless its holder
            renews it (every third of it, while held): how long a dead or frozen holder
            keeps the others waiting.
        client_options: keyword arguments for the redis-py client built from a URL
            (defaults: ``decode_responses=True``, ``socket_timeout=10``,
            ``socket_connect_timeout=5``).

    Raises:
        DatabaseURLError: the URL is not a Redis URL.
        TypeError: the client is not a redis-py client of the storage's kind.
    """

    __slots__ = (
        "_client",
        "_cluster",
        "_core",
        "_heartbeat",
        "_lease",
        "_locks",
        "_migrated",
        "_owns_client",
    )

    def __init__(
        self,
        client: Redis | RedisCluster | str,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        token_cipher: TokenCipher | None = None,
        expire_online_sessions: bool = False,
        lock_lease: float = DEFAULT_LOCK_LEASE,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._core = RedisCore(key_prefix, token_cipher, expire_online_sessions)
        self._lease = check_lease(lock_lease)
        self._owns_client = isinstance(client, str)
        if isinstance(client, str):
            client = client_from_url(client, is_async=False, options=client_options)
        elif client_options:
            raise TypeError("client_options go with a URL, not with a client")
        check_client(client, is_async=False)
        self._client: Any = client
        self._cluster = isinstance(client, RedisCluster)
        self._locks = KeyedLocks()
        self._heartbeat = Heartbeat(self._lease / 3)
        self._migrated = False

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis-py client the storage runs on."""
        return self._client  # type: ignore[no-any-return]

    @property
    def key_prefix(self) -> str:
        """The prefix of every key."""
        return self._core.prefix

    def store_session(self, session: Session) -> bool:
        """Store ``session`` over any session of its id, and list it under its shop.

        The value and the shop's list are written together, or neither is (see the class);
        if the session moved to another shop, it is then taken out of the old shop's list.
        Returns ``True``.
        """
        key, arguments = self._core.store_arguments(session)
        index_key = self._core.index_key(session.shop)
        index = self._core.index_arguments(key)
        self._write_migrations()
        if self._one_slot(key, index_key):
            keys, listed = [key, index_key], [*arguments, *index]
            stored = self._run("store_session", self._evalsha, STORE_LISTED, keys, listed)
        else:
            stored = self._script("store_session", STORE, key, arguments)
            try:
                self._script("store_session", INDEX_ADD, index_key, index)
            except SessionStorageError:
                self._unstore(key, arguments[0], stored)
                raise
        old, moved = self._core.stored_answer(stored)
        if moved:
            self._unlist(self._core.listed_by_shop([key], [old]))
        return True

    def load_session(self, id: str) -> Session | None:
        """The session with this id, or ``None`` when the key is absent.

        Raises:
            SessionDataError: the key holds something that is not a session.
        """
        stored = self._load("load_session", self._core.session_key(id))
        return None if stored is None else stored.session

    def replace_session(self, session: Session, *, previous: Session) -> bool:
        """Store ``session`` only if the stored one still holds ``previous``'s tokens.

        A compare-and-set on the session's key: the stored value is read and its tokens
        compared (decrypted, with a token cipher), then the new value is written by a
        script only if the key still holds what was read. Never inserts: ``True`` when
        ``session`` is stored (or already was), ``False`` when the key holds other tokens
        or is gone, and nothing was written.

        Raises:
            StorageConflictError: the key kept changing between the read and the write.
        """
        session, previous = check_replacement(session, previous)
        key, (value, expiry, _) = self._core.store_arguments(session)
        for _ in range(REPLACE_ATTEMPTS):
            stored = self._load("replace_session", key)
            if stored is None or not self._core.holds_tokens(stored, previous):
                return stored is not None and self._core.holds_tokens(stored, session)
            if self._replace(key, session.shop, [stored.raw, value, expiry]):
                if stored.session.shop != session.shop:
                    self._unlist({stored.session.shop: [key]})
                return True
        raise StorageConflictError(
            f"replace_session on {self._where}: the key changed {REPLACE_ATTEMPTS} times "
            "between reading and replacing it"
        )

    def delete_session(self, id: str) -> bool:
        """Delete the session with this id (an absent id is fine) and unlist it. ``True``."""
        key = self._core.session_key(id)
        old = self._script("delete_session", DELETE, key, [])
        self._unlist(self._core.listed_by_shop([key], [old]))
        return True

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        """Delete the sessions with these ids and unlist them. ``[]`` does nothing."""
        keys = [self._core.session_key(id) for id in check_ids(ids)]
        for start in range(0, len(keys), PIPELINE_SIZE):
            chunk = keys[start : start + PIPELINE_SIZE]
            olds = self._pipeline(
                "delete_sessions", [("EVAL", DELETE.text, 1, key) for key in chunk]
            )
            self._unlist(self._core.listed_by_shop(chunk, olds))
        return True

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        """Every session of ``shop``, in :func:`~shopify_sessions.session_order`.

        The sessions the shop's list names, read in one pipeline; an entry whose key is
        gone (or holds a session of another shop) is left out and taken off the list.
        """
        index_key = self._core.index_key(shop)
        raw = self._run("find_sessions_by_shop", self._client.get, index_key)
        keys = self._core.index_entries(index_key, raw)
        if not keys:
            return []
        values = self._pipeline("find_sessions_by_shop", [("GET", key) for key in keys])
        found, stale = self._core.shop_sessions(shop, keys, values)
        if stale:
            self._unlist({shop: stale})
        return found

    def sessions(
        self, *, batch_size: int = 500, on_invalid: InvalidEntryHandler | None = None
    ) -> Iterator[list[Session]]:
        """Every session under the key prefix, in id order, ``batch_size`` at a time.

        The keys are listed first (``SCAN`` on every primary of a cluster), then read a
        batch at a time; sessions deleted meanwhile are left out, sessions added meanwhile
        may or may not be seen. Shop lists and other values under the prefix are skipped.
        A key whose value looks like a session but is none raises
        :class:`~shopify_sessions.SessionDataError`; with ``on_invalid``, it is handed to
        it with the error and left out, and the walk goes on.
        """
        for batch in self._stored(batch_size, on_invalid):
            yield [stored.session for stored in batch]

    def sessions_due_for_refresh(
        self, before: datetime, *, batch_size: int = 100
    ) -> Iterator[list[Session]]:
        """The offline sessions whose refresh token expires before ``before``.

        Every session is read (see :meth:`sessions`), so that sessions a Node app wrote
        are seen too; each batch that holds due sessions is yielded as a list, in id order.
        """
        before = as_utc(before)
        for batch in self.sessions(batch_size=batch_size):
            due = [session for session in batch if is_refresh_due(session, before)]
            if due:
                yield due

    def delete_expired_sessions(
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
        return delete_expired_by_walk(
            self,
            grace=grace,
            now=now,
            batch_size=batch_size,
            dry_run=dry_run,
            progress=progress,
            on_invalid=on_invalid,
        )

    def reencrypt_tokens(
        self, *, batch_size: int = 500, progress: Callable[[int], object] | None = None
    ) -> int:
        """Rewrite every session whose tokens are not yet encrypted under the current key.

        Each rewrite is a compare-and-set on the value read: a session a store changed
        in between is left as the store wrote it. Returns how many were rewritten.
        """
        self._core.reencrypt_check()
        rewritten = 0
        for batch in self._stored(batch_size):
            for stored in batch:
                value = self._core.reencrypted(stored)
                key = self._core.session_key(stored.session.id)
                if value is not None and self._script(
                    "reencrypt_tokens", REPLACE, key, [stored.raw, value, ""]
                ):
                    rewritten += 1
            if progress is not None:
                progress(len(batch))
        return rewritten

    @contextmanager
    def lock_session(self, id: str, *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the lock of session ``id``: one holder at a time across threads, tasks,
        processes and hosts.

        A key of its own, ``<key_prefix>:lock:<id>``, set if absent to a random owner
        token with an expiry of ``lock_lease`` seconds, renewed every third of it while
        held, and deleted at the end only by the owner that set it (scripts compare the
        token). A holder that dies or freezes frees the lock when its lease ends; a holder
        that outlived its lease is fenced by :meth:`replace_session`, and a warning is
        logged when it lets go. Waiters in one process queue in-process first.

        Raises:
            LockTimeoutError: the lock was not free within ``timeout`` seconds.
            StorageUnavailableError: Redis could not be reached.
        """
        id, timeout = check_id(id), check_timeout(timeout)
        deadline = time.monotonic() + timeout
        key, token = self._core.lock_key(id), secrets.token_hex(16)
        lease = max(1, round(self._lease * 1000))
        with self._locks.hold(id, timeout):
            for pause in lock_pauses(deadline):
                time.sleep(pause)
                if self._take(key, token, lease):
                    break
            else:
                raise LockTimeoutError(id, timeout)
            try:
                with self._heartbeat.keep(functools.partial(self._renew, key, token, lease)):
                    yield
            finally:
                self._unlock(id, key, token)

    def close(self) -> None:
        """Close the client if the storage built it from a URL."""
        if self._owns_client:
            close_client(self._client)

    def __enter__(self) -> RedisSessionStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def _where(self) -> str:
        return f"Redis keys {self._core.prefix}_*"

    def _load(self, operation: str, key: str) -> Stored | None:
        raw = self._run(operation, self._client.get, key)
        return None if raw is None else self._core.read(key, raw)

    def _stored(
        self, batch_size: int, on_invalid: InvalidEntryHandler | None = None
    ) -> Iterator[list[Stored]]:
        """Every session value under the prefix, in key order, ``batch_size`` at a time."""
        size = check_batch_size(batch_size)
        keys = self._core.sorted_keys(self._run("sessions", self._scan))
        for start in range(0, len(keys), size):
            chunk = keys[start : start + size]
            values = self._pipeline("sessions", [("GET", key) for key in chunk], skip=True)
            batch = self._core.scanned_batch(chunk, values, on_invalid)
            if batch:
                yield batch

    def _scan(self) -> list[Any]:
        return [key for key in self._client.scan_iter(match=self._core.pattern, count=1000)]

    def _unlist(self, listed: dict[str, list[str]]) -> None:
        """Take session keys off their shops' lists, then list again any key that a store
        wrote back meanwhile (a store writes its key, then lists it: without this second
        look, a delete racing a store could leave a stored session off its list)."""
        shops = [shop for shop, keys in listed.items() if keys]
        if not shops:
            return
        removed = self._pipeline(
            "unlist",
            [
                ("EVAL", INDEX_REMOVE.text, 1, self._core.index_key(shop), *listed[shop])
                for shop in shops
            ],
        )
        look = [
            (shop, key)
            for shop, count in zip(shops, removed, strict=True)
            if count
            for key in listed[shop]
        ]
        if not look:
            return
        values = self._pipeline("unlist", [("GET", key) for _, key in look], skip=True)
        relist = self._core.relisted(look, values)
        if relist:
            self._pipeline(
                "unlist",
                [
                    (
                        "EVAL",
                        INDEX_ADD.text,
                        1,
                        self._core.index_key(shop),
                        *self._core.index_arguments(key),
                    )
                    for shop, key in relist
                ],
            )

    def _write_migrations(self) -> None:
        """Write the Node adapter's migration record once, if it is absent: a Node app
        starting on these keys then runs no migration over them."""
        if not self._migrated:
            key = self._core.migrations_key
            self._run("store_session", self._client.set, key, MIGRATIONS_DONE, nx=True)
            self._migrated = True

    def _take(self, key: str, token: str, lease: int) -> bool:
        """Set the lock to ``token`` if it is free. The answer is what the key held before,
        so that a try whose answer was lost (and was tried again) still finds it taken by
        this same owner."""
        held = self._run("lock_session", self._client.set, key, token, nx=True, px=lease, get=True)
        return is_own_lock(held, token)

    def _renew(self, key: str, token: str, lease: int) -> bool:
        """Renew the lock's lease: ``False`` once it was lost (the heartbeat stops)."""
        return bool(self._script("lock_session", RENEW, key, [token, str(lease)]))

    def _unlock(self, id: str, key: str, token: str) -> None:
        try:
            released = self._script("lock_session", UNLOCK, key, [token])
        except SessionStorageError as error:
            logger.warning("lock_session %r: the lock could not be released (%s)", id, error)
            return
        if not released:
            logger.warning(
                "lock_session %r: the lock's lease of %gs ended while it was held", id, self._lease
            )

    def _one_slot(self, key: str, index_key: str) -> bool:
        """Whether one script may write both keys: always on one Redis; on a cluster, when
        they hash to one slot."""
        return not self._cluster or same_slot(key, index_key)

    def _replace(self, key: str, shop: str, arguments: list[str]) -> bool:
        """``REPLACE`` the value of ``key`` and list it under ``shop``: together or not at
        all, as :meth:`store_session` writes. Whether it was replaced."""
        index_key = self._core.index_key(shop)
        index = self._core.index_arguments(key)
        if self._one_slot(key, index_key):
            keys, listed = [key, index_key], [*arguments, *index]
            return bool(self._run("replace_session", self._evalsha, REPLACE_LISTED, keys, listed))
        if not self._script("replace_session", REPLACE, key, arguments):
            return False
        try:
            self._script("replace_session", INDEX_ADD, index_key, index)
        except SessionStorageError:
            expected, value, _ = arguments
            self._script("replace_session", UNSTORE, key, [value, expected, "-1"])
            raise
        return True

    def _unstore(self, key: str, value: str, stored: Any) -> None:
        """Undo a ``STORE`` whose listing failed: put back what the key held, if it still
        holds ``value``. The caller then raises the listing's error; if the undo fails too
        (Redis gone meanwhile), its own typed error is raised, the listing's as its
        context."""
        old, _ = self._core.stored_answer(stored)
        self._script("store_session", UNSTORE, key, [value, old or "", str(stored[2])])

    def _script(self, operation: str, script: Script, key: str, arguments: list[str]) -> Any:
        """Run ``script`` on ``key``, translating its failures."""
        return self._run(operation, self._evalsha, script, [key], arguments)

    def _evalsha(self, script: Script, keys: list[str], arguments: list[str]) -> Any:
        """Run ``script`` by its digest; send its text when the server doesn't know it yet."""
        try:
            return self._client.evalsha(script.sha, len(keys), *keys, *arguments)
        except NoScriptError:
            return self._client.eval(script.text, len(keys), *keys, *arguments)

    def _pipeline(
        self, operation: str, commands: list[tuple[Any, ...]], *, skip: bool = False
    ) -> list[Any]:
        """Send ``commands`` in one pipeline (one per node of a cluster); their answers.

        With ``skip``, a command that fails alone (a key of another type) answers
        ``None``; otherwise its error is raised, typed.
        """
        answers: list[Any] = []
        for start in range(0, len(commands), PIPELINE_SIZE):
            chunk = commands[start : start + PIPELINE_SIZE]
            answers += self._run(operation, self._execute, chunk, skip)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise failure(operation, self._where, answer) from answer
        return answers

    def _execute(self, commands: list[tuple[Any, ...]], skip: bool) -> list[Any]:
        pipeline = self._client.pipeline(transaction=False)
        for command in commands:
            pipeline.execute_command(*command)
        answers = pipeline.execute(raise_on_error=False)
        if skip:
            answers = [None if isinstance(a, BaseException) else a for a in answers]
        return list(answers)

    def _run(self, operation: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``function`` (a client command), translating its failures; once more at
        once after a lost connection (every command the storage sends is idempotent)."""
        for attempt in range(2):
            try:
                return function(*args, **kwargs)
            except FAILURES as error:
                typed = failure(operation, self._where, error)
                if attempt or not isinstance(typed, StorageUnavailableError):
                    raise typed from error
                logger.warning("%s: %s; trying again", operation, typed)
        raise AssertionError("unreachable")
