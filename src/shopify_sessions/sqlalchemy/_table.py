"""The session table: its columns, and the default table to create."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine


class Kind(enum.Enum):
    """What a column holds, whatever SQL type carries it."""

    TEXT = "text"
    """Text: ids, the shop, tokens, scopes, the user's names."""
    BOOLEAN = "boolean"
    """A boolean, or 0/1 in an integer column."""
    USER_ID = "user id"
    """The online user's id: a 64-bit integer, or its digits in text or a blob."""
    DATETIME = "datetime"
    """A date-time: a SQL date-time, ISO text or an epoch number (see ``DateTimeFormat``)."""


COLUMNS: dict[str, Kind] = {
    "id": Kind.TEXT,
    "shop": Kind.TEXT,
    "state": Kind.TEXT,
    "isOnline": Kind.BOOLEAN,
    "scope": Kind.TEXT,
    "expires": Kind.DATETIME,
    "accessToken": Kind.TEXT,
    "userId": Kind.USER_ID,
    "firstName": Kind.TEXT,
    "lastName": Kind.TEXT,
    "email": Kind.TEXT,
    "accountOwner": Kind.BOOLEAN,
    "locale": Kind.TEXT,
    "collaborator": Kind.BOOLEAN,
    "emailVerified": Kind.BOOLEAN,
    "refreshToken": Kind.TEXT,
    "refreshTokenExpires": Kind.DATETIME,
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
) -> Table:
    """Define the default sessions table on ``metadata`` and return it.

    The column names and types are those of Shopify's Drizzle schema for each
    dialect (``@shopify/shopify-app-session-storage-drizzle``), so a Node app using
    that adapter can share the table. On MySQL/MariaDB the two timestamps are
    ``DATETIME(3)`` rather than ``TIMESTAMP`` to keep milliseconds and dates past
    2038, and ``id`` and ``shop`` use the ``utf8mb4_bin`` collation so they match
    exactly, as on the other databases. The table has an index on ``shop``.

    Use it to create the table from Alembic (``target_metadata``) or ``create_all``.
    """
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
