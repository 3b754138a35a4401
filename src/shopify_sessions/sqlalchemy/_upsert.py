"""The one atomic, dialect-native upsert of a session row.

Each statement inserts the row, or on a duplicate ``id`` overwrites every session
column, leaving the user's own extra columns as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from .._errors import UnsupportedDialectError

SUPPORTED_DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite")


def check_dialect(dialect_name: str) -> None:
    """Raise UnsupportedDialectError unless there is an upsert for ``dialect_name``."""
    if dialect_name not in SUPPORTED_DIALECTS:
        raise UnsupportedDialectError(
            f"no upsert for the {dialect_name!r} dialect; "
            f"supported: {', '.join(SUPPORTED_DIALECTS)}"
        )


def build_upsert(
    table: Table, values: Mapping[Column[Any], ColumnElement[Any]], dialect_name: str
) -> Insert:
    """The upsert into ``table`` of ``values`` (bound parameters by column, ``id`` included).

    Columns are referred to as objects, never by name, because a user's column may
    have a key that differs from its name.
    """
    check_dialect(dialect_name)
    columns = list(values)
    if dialect_name == "postgresql":
        return _on_conflict_upsert(postgresql.insert(table).values(values), columns)
    if dialect_name == "sqlite":
        return _on_conflict_upsert(sqlite.insert(table).values(values), columns)
    return _on_duplicate_key_upsert(mysql.insert(table).values(values), columns)


def _on_conflict_upsert(
    insert: postgresql.Insert | sqlite.Insert, columns: Sequence[Column[Any]]
) -> Insert:
    """PostgreSQL and SQLite: ``INSERT ... ON CONFLICT (id) DO UPDATE SET col = excluded.col``."""
    id_column = next(c for c in columns if c.name == "id")
    return insert.on_conflict_do_update(
        index_elements=[id_column],
        set_={c: insert.excluded[c.key] for c in columns if c is not id_column},
    )


def _on_duplicate_key_upsert(insert: mysql.Insert, columns: Sequence[Column[Any]]) -> Insert:
    """MySQL and MariaDB: ``INSERT ... ON DUPLICATE KEY UPDATE col = VALUES(col)``.

    It matches any unique key, so schema validation makes sure ``id`` is one.
    """
    return insert.on_duplicate_key_update(
        {c: insert.inserted[c.key] for c in columns if c.name != "id"}
    )
