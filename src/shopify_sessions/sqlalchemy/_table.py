"""The session table: its columns, and the default table to create."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    event,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine


class ColumnKind(enum.Enum):
    """What a column holds, whatever SQL type carries it."""

    TEXT = "text"
    """Text: ids, the shop, tokens, scopes, the user's names."""
    BOOLEAN = "boolean"
    """A boolean, or 0/1 in an integer column."""
    USER_ID = "user id"
    """The online user's id: a 64-bit integer, or its digits in text or a blob."""
    DATETIME = "datetime"
    """A date-time: a SQL date-time, ISO text or an epoch number (see ``DateTimeFormat``)."""


COLUMNS: dict[str, ColumnKind] = {
    "id": ColumnKind.TEXT,
    "shop": ColumnKind.TEXT,
    "state": ColumnKind.TEXT,
    "isOnline": ColumnKind.BOOLEAN,
    "scope": ColumnKind.TEXT,
    "expires": ColumnKind.DATETIME,
    "accessToken": ColumnKind.TEXT,
    "userId": ColumnKind.USER_ID,
    "firstName": ColumnKind.TEXT,
    "lastName": ColumnKind.TEXT,
    "email": ColumnKind.TEXT,
    "accountOwner": ColumnKind.BOOLEAN,
    "locale": ColumnKind.TEXT,
    "collaborator": ColumnKind.BOOLEAN,
    "emailVerified": ColumnKind.BOOLEAN,
    "refreshToken": ColumnKind.TEXT,
    "refreshTokenExpires": ColumnKind.DATETIME,
}
"""The columns of Shopify's Drizzle and Prisma session tables, by their JS names, in the
order this package reads and writes them, each with the kind of value it holds."""

#: Columns every session has a value for; the others may be NULL.
REQUIRED_COLUMNS = frozenset({"id", "shop", "state", "isOnline"})

DEFAULT_TABLE_NAME = "session"
"""The default table's name, as in Shopify's Drizzle schema."""


MYSQL = ("mysql", "mariadb")


def _exact(type_: mysql.VARCHAR | mysql.TEXT) -> TypeEngine[str]:
    # MySQL compares text case- and accent-insensitively by default, so "ABC" would
    # find "abc"; ids and shops must match exactly, as on PostgreSQL and SQLite.
    type_.charset = "utf8mb4"
    type_.collation = "utf8mb4_bin"
    return type_


def _datetime() -> TypeEngine[datetime]:
    # Drizzle's types, except on MySQL: its `timestamp` drops milliseconds, shifts with
    # the session time zone and ends in 2038, where DATETIME(3) does none of that.
    return (
        DateTime()
        .with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
        .with_variant(Text(), "sqlite")
    )


def session_table(
    metadata: MetaData,
    name: str = DEFAULT_TABLE_NAME,
    *,
    schema: str | None = None,
    lock_table: bool = True,
) -> Table:
    """Define the default sessions table on ``metadata`` and return it.

    The column names and types are those of Shopify's Drizzle schema for each
    dialect (``@shopify/shopify-app-session-storage-drizzle``), so a Node app using
    that adapter can share the table. On MySQL/MariaDB the two timestamps are
    ``DATETIME(3)`` rather than ``TIMESTAMP`` to keep milliseconds and dates past
    2038, and ``id`` and ``shop`` use the ``utf8mb4_bin`` collation so they match
    exactly, as on the other databases. The table has an index on ``shop``.

    Unless ``lock_table=False``, the table's lock table (:func:`session_lock_table`,
    named ``<name>_locks``) is defined beside it, so that migrations create both.

    Use it to create the table from Alembic (``target_metadata``) or ``create_all``.
    """
    if lock_table:
        session_lock_table(metadata, lock_table_name(name), schema=schema)
    table = Table(
        name,
        metadata,
        Column("id", Text().with_variant(_exact(mysql.VARCHAR(255)), *MYSQL), primary_key=True),
        Column("shop", Text().with_variant(_exact(mysql.TEXT()), *MYSQL), nullable=False),
        Column("state", Text(), nullable=False),
        Column("isOnline", Boolean(), nullable=False, server_default=false()),
        Column("scope", Text()),
        Column("expires", _datetime()),
        Column("accessToken", Text(), nullable=False),
        Column("userId", BigInteger().with_variant(LargeBinary(), "sqlite")),
        Column("firstName", Text()),
        Column("lastName", Text()),
        Column("email", Text()),
        Column("accountOwner", Boolean()),
        Column("locale", Text()),
        Column("collaborator", Boolean()),
        Column("emailVerified", Boolean()),
        Column("refreshToken", Text()),
        Column("refreshTokenExpires", _datetime()),
        schema=schema,
        mysql_charset="utf8mb4",
    )
    Index(f"{name}_shop_idx", table.c.shop, mysql_length=255)
    return table


def lock_table_name(sessions_table: str) -> str:
    """The name of the lock table of the sessions table ``sessions_table``."""
    return f"{sessions_table}_locks"


def session_lock_table(
    metadata: MetaData,
    name: str = "session_locks",
    *,
    schema: str | None = None,
) -> Table:
    """Define a lock table on ``metadata`` and return it: the session locks' leases.

    A row is a held lock: the session ``id``, the ``owner`` that holds it and when its
    lease ``expires`` (database time); it is deleted on release, and taken over once
    expired. The sessions table itself is left exactly as Shopify's Node adapters
    define it. On PostgreSQL the table is made ``UNLOGGED`` when created from this
    definition: a lease is no more durable than an advisory lock (a crash empties
    both), and is then as cheap to take, with no WAL flush per lock. SQLite's locks are
    files (see the storages' ``lock_session``), so there the table stays empty.

    :func:`session_table` defines the lock table of its sessions table already; use
    this one for a sessions table of your own (a Prisma or Drizzle table), named
    ``<sessions table>_locks`` in the same schema.
    """
    table = Table(
        name,
        metadata,
        Column("id", Text().with_variant(_exact(mysql.VARCHAR(255)), *MYSQL), primary_key=True),
        Column("owner", String(32), nullable=False),
        Column(
            "expires",
            DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), *MYSQL),
            nullable=False,
        ),
        schema=schema,
        mysql_charset="utf8mb4",
    )
    event.listen(
        table,
        "after_create",
        DDL("ALTER TABLE %(fullname)s SET UNLOGGED").execute_if(  # type: ignore[no-untyped-call]
            dialect="postgresql"
        ),
    )
    return table
