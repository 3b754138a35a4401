"""The session lock of each dialect, and how long to wait between tries.

PostgreSQL: a session-level advisory lock; MySQL/MariaDB: a named lock (``GET_LOCK``).
Both are held by the connection that took them, so the server releases them when the
holder dies. SQLite has no such locks: ``flock`` on a file beside the database, which
the kernel releases when the holding process dies (one host, like SQLite itself). An
in-memory SQLite database is seen by one process only, so the storage's in-process
lock is all it needs.

Every lock is tried without blocking and tried again after a short, growing pause, so
a wait never holds a transaction, never leaves a setting on a pooled connection, and
ends at its deadline on every dialect alike.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import URL, TextClause, text

try:
    import fcntl
except ImportError:  # Windows: SQLite falls back to the in-process lock
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StatementLock:
    """A lock taken and given back by one statement each, on a connection of its own.

    ``try_statement`` returns a true scalar when it took the lock, at once, without waiting.
    """

    try_statement: TextClause
    release_statement: TextClause
    parameters: dict[str, Any]


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


_POSTGRESQL = (
    text("SELECT pg_try_advisory_lock(:key)"),
    text("SELECT pg_advisory_unlock(:key)"),
)
_MYSQL = (text("SELECT GET_LOCK(:name, 0)"), text("SELECT RELEASE_LOCK(:name)"))


class SessionLocks:
    """Makes the lock of one session id for one table on one database."""

    __slots__ = ("_dialect", "_directory", "_scope")

    def __init__(self, dialect: str, url: URL, scope: str) -> None:
        self._dialect = dialect
        self._scope = scope
        self._directory = _sqlite_lock_directory(url) if dialect == "sqlite" else None

    def for_session(self, id: str) -> StatementLock | FileLock | None:
        """The lock of session ``id``; ``None`` where the in-process lock is enough."""
        digest = hashlib.blake2b(f"{self._scope}\0{id}".encode(), digest_size=8).digest()
        if self._dialect == "postgresql":
            key = int.from_bytes(digest, "big", signed=True)
            return StatementLock(*_POSTGRESQL, {"key": key})
        if self._dialect == "mysql":
            # Names are at most 64 characters, and server-wide: the digest keeps them apart.
            return StatementLock(*_MYSQL, {"name": f"shopify_sessions:{digest.hex()}"})
        if self._directory is None:
            return None
        return FileLock(os.path.join(self._directory, f"{digest.hex()}.lock"))


def lock_pauses(deadline: float) -> Iterator[float]:
    """Seconds to sleep before each try of a lock: none before the first, then growing
    jittered pauses (2 ms to 50 ms) until ``deadline`` (``time.monotonic()``) has passed."""
    yield 0.0
    pause = 0.002
    while (left := deadline - time.monotonic()) > 0:
        yield min(pause * (0.5 + random.random()), left)
        pause = min(pause * 2, 0.05)


def _sqlite_lock_directory(url: URL) -> str | None:
    database = url.database or ""
    if fcntl is None or database in ("", ":memory:") or database.startswith("file:"):
        return None
    if url.query.get("mode") == "memory":
        return None
    return os.path.abspath(database) + ".locks"
