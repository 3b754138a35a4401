"""Which Node adapter's table this is, and that adapter's rules for writing a row.

For a given session, the storage writes the row the Node adapter of the table's layout
writes, so a Node app reads back exactly what it would have written itself:

- Drizzle and Prisma write ``value || null`` for the optional text fields and the user
  id, so an empty string (or user id 0) becomes NULL; the raw adapters keep it.
- Prisma writes ``value || false`` for the user booleans, so an absent one is false;
  Drizzle writes ``value ?? null`` (absent is NULL) and the raw adapters leave it out.

The default table is Drizzle's schema (with ``DATETIME(3)`` on MySQL) and follows
Drizzle's rules; so does a table of the user's own.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Table, types
from sqlalchemy.engine import Dialect

from ._codecs import sql_type
from ._table import MYSQL


class Layout(str, enum.Enum):
    """The layouts a sessions table can have, by who made it."""

    DEFAULT = "default"
    DRIZZLE = "drizzle"
    PRISMA = "prisma"
    PRISMA_V5 = "prisma-v5"
    RAW = "raw"
    CUSTOM = "custom"

    @property
    def description(self) -> str:
        """A phrase for messages: who made a table of this layout."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Layout.DEFAULT: "this package's default table (Drizzle's schema)",
    Layout.DRIZZLE: "Shopify's Drizzle adapter",
    Layout.PRISMA: "Shopify's Prisma adapter",
    Layout.PRISMA_V5: "Shopify's Prisma adapter, v5 schema (accountOwner NOT NULL)",
    Layout.RAW: "Shopify's raw PostgreSQL/MySQL/SQLite adapters",
    Layout.CUSTOM: "a table of your own",
}

#: Optional fields that Drizzle and Prisma write as ``value || null``.
FALSY_IS_NULL = ("scope", "userId", "firstName", "lastName", "email", "locale", "refreshToken")
#: User booleans that Prisma writes as ``value || false``.
ABSENT_IS_FALSE = ("accountOwner", "collaborator", "emailVerified")


def detect_layout(table: Table, dialect: Dialect) -> Layout:
    """The layout of ``table`` on ``dialect``, told apart by its column types.

    Drizzle's and the default table's text columns are ``TEXT``, Prisma's are ``TEXT``
    (``VARCHAR(191)`` on MySQL) with ``TIMESTAMP(3)`` / ``DATETIME(3)`` / SQLite
    ``DATETIME`` date-times, and the raw adapters keep date-times as integers. Anything
    else is a table of the user's own.
    """
    columns = {column.name: column for column in table.columns}
    if "expires" not in columns or "shop" not in columns:
        return Layout.CUSTOM
    expires = sql_type(columns["expires"], dialect)
    if isinstance(expires, types.Integer):
        return Layout.RAW
    # Older tables lack some columns (the user info, the refresh token): judge by the rest.
    lengths = {
        _text_length(sql_type(columns[name], dialect)) for name in _TEXT_FIELDS if name in columns
    }
    all_text = lengths == {None}
    name = dialect.name
    prisma = drizzle_like = False
    if name == "postgresql" and isinstance(expires, types.DateTime) and not expires.timezone:
        prisma = all_text and getattr(columns["expires"].type, "precision", None) == 3
        drizzle_like = all_text and not prisma
    elif name in MYSQL and isinstance(expires, types.DateTime):
        timestamp = isinstance(expires, types.TIMESTAMP)
        prisma = not timestamp and lengths == {191}
        drizzle_like = all_text
    elif name == "sqlite":
        user_id = sql_type(columns["userId"], dialect) if "userId" in columns else None
        prisma = (
            all_text
            and isinstance(expires, types.DateTime)
            and (user_id is None or isinstance(user_id, types.BigInteger))
        )
        drizzle_like = all_text and isinstance(expires, types.String)
    if prisma:
        owner = columns.get("accountOwner")
        return Layout.PRISMA_V5 if owner is not None and not owner.nullable else Layout.PRISMA
    if drizzle_like:
        return Layout.DEFAULT if _has_shop_index(table) else Layout.DRIZZLE
    return Layout.CUSTOM


#: The text columns whose SQL type tells the layouts apart (all but id).
_TEXT_FIELDS = ("shop", "state", "scope", "accessToken", "firstName", "lastName", "email")


def _text_length(type_: types.TypeEngine[Any]) -> int | str | None:
    if isinstance(type_, types.String):
        return type_.length
    return "not text"


def falsy_is_null(layout: Layout) -> bool:
    """Whether empty strings and user id 0 are written as NULL (all but the raw adapters)."""
    return layout is not Layout.RAW


def absent_is_false(layout: Layout) -> bool:
    """Whether absent user booleans are written as false (Prisma)."""
    return layout in (Layout.PRISMA, Layout.PRISMA_V5)


def _has_shop_index(table: Table) -> bool:
    return any([c.name for c in index.columns] == ["shop"] for index in table.indexes)
