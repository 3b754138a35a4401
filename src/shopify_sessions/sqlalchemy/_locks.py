"""The session lock of each dialect, and how long to wait between tries.

PostgreSQL and MySQL/MariaDB: a lease, a row in the sessions table's lock table
(``<table>_locks``, see ``session_lock_table``) naming its owner and when it expires in
the database's own time. It is taken and given back by one statement each, in autocommit,
so no transaction, prepared statement or session state outlives a statement: it holds
through a transaction pooler (where a session advisory lock belongs to whoever gets the
server connection next), on engines whose advisory locks are stubs (CockroachDB) or
node-local (Galera, whose ``GET_LOCK`` answers 1 on two nodes at once: there, two nodes
taking one lease conflict at commit, and the loser waits). A holder renews its lease
while it works; a dead holder's lease runs out, and the next taker takes it over. A holder
that outlived its lease cannot store over a newer pair: ``replace_session`` is the fence.

SQLite: ``flock`` on a file beside the database, released by the kernel when the holding
process dies (one host, like SQLite itself). An in-memory SQLite database is seen by one
process only, so the storage's in-process lock is all it needs.

Every lock is tried without blocking and tried again after a short, growing pause, so a
wait never holds a transaction and ends at its deadline on every dialect alike.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import URL, Table, TextClause, text
from sqlalchemy.engine import Dialect

try:
    import fcntl
except ImportError:  # Windows: SQLite falls back to the in-process lock
    fcntl = None  # type: ignore[assignment]

#: Galera: each lease statement first waits until this node has applied every write the
#: cluster committed before it (``wsrep_sync_wait``, bits for UPDATE/DELETE and INSERT), so
#: the reads its holder then makes on this node see the last holder's pair.
_GALERA_CAUSAL = "SET STATEMENT wsrep_sync_wait = 6 FOR "


@dataclass(frozen=True, slots=True)
class LeaseStatements:
    """The statements of one lock table's leases on one dialect.

    ``take`` returns a row when it took the lease (PostgreSQL), or, where it can't say so
    in one statement (MySQL), inserts it and fails on a held one, when ``take_over`` takes
    a lease that has run out. ``renew`` and ``release`` touch a lease only as its owner:
    a row count of 0 says the lease was lost.
    """

    take: TextClause
    take_over: TextClause | None
    renew: TextClause
    release: TextClause


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease to take: the session id, a new owner, and how long it lasts."""

    id: str
    owner: str
    seconds: float

    @classmethod
    def new(cls, id: str, seconds: float) -> Lease:
        return cls(id, uuid.uuid4().hex, seconds)

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "seconds": self.seconds,
            "microseconds": round(self.seconds * 1_000_000),
        }


def lease_statements(table: Table, dialect: Dialect, *, galera: bool) -> LeaseStatements:
    """The lease statements of lock table ``table`` on ``dialect`` (PostgreSQL or MySQL)."""
    quote = dialect.identifier_preparer.quote
    name = (
        quote(table.name) if table.schema is None else f"{quote(table.schema)}.{quote(table.name)}"
    )
    if dialect.name == "postgresql":
        until = "now() + CAST(:seconds AS double precision) * INTERVAL '1 second'"
        return LeaseStatements(
            # The owner retakes its own lease: a take whose answer was lost is tried again.
            take=text(
                f"INSERT INTO {name} AS held (id, owner, expires) VALUES (:id, :owner, {until}) "
                "ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, expires = EXCLUDED.expires "
                "WHERE held.expires <= now() OR held.owner = EXCLUDED.owner RETURNING held.owner"
            ),
            take_over=None,
            renew=text(f"UPDATE {name} SET expires = {until} WHERE id = :id AND owner = :owner"),
            release=text(f"DELETE FROM {name} WHERE id = :id AND owner = :owner"),
        )
    causal = _GALERA_CAUSAL if galera else ""
    until = "TIMESTAMPADD(MICROSECOND, :microseconds, UTC_TIMESTAMP(6))"
    return LeaseStatements(
        take=text(f"{causal}INSERT INTO {name} (id, owner, expires) VALUES (:id, :owner, {until})"),
        take_over=text(
            f"{causal}UPDATE {name} SET owner = :owner, expires = {until} "
            "WHERE id = :id AND (expires <= UTC_TIMESTAMP(6) OR owner = :owner)"
        ),
        renew=text(f"UPDATE {name} SET expires = {until} WHERE id = :id AND owner = :owner"),
        release=text(f"DELETE FROM {name} WHERE id = :id AND owner = :owner"),
    )


class FileLock:
    """An exclusive ``flock`` on a file of its own, released by the kernel with its holder."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting."""
        assert fcntl is not None
        if self._fd is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        """Give the lock back (closing the file releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def file_lock(url: URL, scope: str, id: str) -> FileLock | None:
    """The ``flock`` of session ``id`` of table ``scope`` in SQLite database ``url``; ``None``
    for an in-memory database (or without ``fcntl``), where the in-process lock is enough."""
    directory = _sqlite_lock_directory(url)
    if directory is None:
        return None
    digest = hashlib.blake2b(f"{scope}\0{id}".encode(), digest_size=8).hexdigest()
    return FileLock(os.path.join(directory, f"{digest}.lock"))


def _sqlite_lock_directory(url: URL) -> str | None:
    database = url.database or ""
    if fcntl is None or database in ("", ":memory:") or database.startswith("file:"):
        return None
    if url.query.get("mode") == "memory":
        return None
    return os.path.abspath(database) + ".locks"
