"""The journal mode and sync level of a SQLite database on an engine the storage builds.

SQLite's defaults (a rollback journal, ``synchronous=FULL``) cost four ``fsync`` calls per
committed write: the journal, the database, and the journal's deletion. In WAL mode with
``synchronous=NORMAL`` a commit is one ``write`` to the WAL file and no ``fsync`` (the WAL
is synced at checkpoints): a committed write survives the process crashing at any point,
and a power cut or an OS crash may take back the last few commits, never corrupting the
file. For session tokens that is the right trade: Shopify keeps a used refresh token
working until its replacement is used, so a pair taken back by a power cut is renewed
again from the old one; a crash of the app loses nothing.

So, on an engine the storage builds from a URL (never on one the app passes):

- a database with nothing in it yet (the storage is creating it) is switched to WAL,
  which is then a lasting property of the file;
- a database already in WAL mode gets ``synchronous=NORMAL`` on the storage's own
  connections (a setting of the connection, not of the file): the level better-sqlite3,
  under Shopify's Node adapters, uses in WAL mode;
- a database already in another mode is left as it is: its owner chose it (a Node app
  sharing it, a network file system where WAL cannot work), and ``synchronous`` stays at
  SQLite's default there, where a lower level could corrupt the file on a power cut.

In-memory databases have no journal to speak of and are left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import URL, event

logger = logging.getLogger("shopify_sessions")

WAL = "wal"


def is_file_database(url: URL) -> bool:
    """Whether ``url`` names a SQLite database in a file (not in memory)."""
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return False
    return not (database.startswith("file:") and "mode=memory" in database)


def watch_sqlite_connections(engine: Any) -> None:
    """Give each new connection of ``engine`` (an Engine, or an AsyncEngine's
    ``sync_engine``) the settings above, if it is a SQLite database in a file."""
    sync_engine = getattr(engine, "sync_engine", engine)
    if sync_engine.dialect.name == "sqlite" and is_file_database(sync_engine.url):
        event.listen(sync_engine, "connect", set_journal)


def set_journal(dbapi_connection: Any, connection_record: Any) -> None:
    """The ``connect`` listener: WAL for a new database; ``synchronous=NORMAL`` in WAL."""
    cursor = dbapi_connection.cursor()
    try:
        mode = _one(cursor, "PRAGMA journal_mode")
        if mode != WAL and _one(cursor, "PRAGMA page_count") == 0:
            try:
                mode = _one(cursor, "PRAGMA journal_mode = WAL")
            except Exception as error:  # read-only, or busy: it stays as it is, and works
                logger.warning("SQLite database left in %s journal mode: %s", mode, error)
        if mode == WAL:
            cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _one(cursor: Any, pragma: str) -> Any:
    cursor.execute(pragma)
    row = cursor.fetchone()
    return None if row is None else (row[0].lower() if isinstance(row[0], str) else row[0])
