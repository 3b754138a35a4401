"""The sessions tables this package can create, by layout, and the statements that create them.

Besides its own default table (:func:`session_table`), the package can create a table in
the layout of Shopify's Drizzle or Prisma adapter, as those tools create it (column for
column, type for type, on each dialect), for an app that will share it with a Node app
using that adapter. The statements are plain SQL text, so that a migration tool can show
them before running them (Django's ``sqlmigrate``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    false,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable, SetTableComment
from sqlalchemy.types import TypeEngine

from ._layout import Layout
from ._table import DEFAULT_TABLE_NAME, MYSQL, lock_table_name, session_lock_table, session_table

#: The layouts a table can be created in: this package's, Drizzle's and Prisma's.
CREATABLE_LAYOUTS = (Layout.DEFAULT, Layout.DRIZZLE, Layout.PRISMA)

#: The table name each creatable layout has by default (Prisma's model is ``Session``).
DEFAULT_NAMES = {
    Layout.DEFAULT: DEFAULT_TABLE_NAME,
    Layout.DRIZZLE: DEFAULT_TABLE_NAME,
    Layout.PRISMA: "Session",
}

_USER_TEXT = ("firstName", "lastName", "email")
_USER_BOOLEANS = ("accountOwner", "collaborator", "emailVerified")


def layout_table(
    metadata: MetaData,
    layout: Layout | str,
    name: str | None = None,
    *,
    schema: str | None = None,
    comment: str | None = None,
) -> Table:
    """Define the sessions table of ``layout`` on ``metadata``, with its lock table.

    ``layout`` is one of :data:`CREATABLE_LAYOUTS`; ``name`` defaults to the layout's
    own (:data:`DEFAULT_NAMES`). The lock table ``<name>_locks`` is defined beside it.
    ``comment`` becomes the table's comment where the database keeps one (PostgreSQL,
    MySQL/MariaDB); :func:`create_statements` writes it into SQLite's stored DDL.

    Raises:
        ValueError: a layout the package cannot create (the raw adapters', or a custom one).
    """
    layout = Layout(layout)
    if layout not in CREATABLE_LAYOUTS:
        names = ", ".join(repr(each.value) for each in CREATABLE_LAYOUTS)
        raise ValueError(f"a table can be created in the layout {names}, not {layout.value!r}")
    name = name or DEFAULT_NAMES[layout]
    if layout is Layout.DEFAULT:
        table = session_table(metadata, name, schema=schema)
        table.comment = comment
        return table
    session_lock_table(metadata, lock_table_name(name), schema=schema)
    columns = _drizzle_columns() if layout is Layout.DRIZZLE else _prisma_columns()
    options: dict[str, Any] = {}
    if layout is Layout.PRISMA:
        options = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}
    return Table(name, metadata, *columns, schema=schema, comment=comment, **options)


def create_statements(sessions: Table | None, locks: Table | None, dialect: Dialect) -> list[str]:
    """The SQL that creates the sessions table and the lock table (either may be left out)
    on ``dialect``, in order: each table, its indexes, its comment (inline on SQLite,
    which has no comments), and ``SET UNLOGGED`` for the lock table on PostgreSQL (see
    :func:`session_lock_table`)."""
    statements = []
    for table in (each for each in (sessions, locks) if each is not None):
        created = str(CreateTable(table).compile(dialect=dialect)).strip()
        if table.comment and dialect.name == "sqlite":
            # SQLite keeps a table's CREATE statement as written: a comment in it stays.
            opening = created.index("(")
            comment = table.comment.replace("*/", "* /")
            created = f"{created[: opening + 1]} /* {comment} */{created[opening + 1 :]}"
        statements.append(created)
        statements += [
            str(CreateIndex(index).compile(dialect=dialect)).strip()
            for index in sorted(table.indexes, key=lambda index: str(index.name))
        ]
        if table.comment and dialect.name == "postgresql":
            statements.append(str(SetTableComment(table).compile(dialect=dialect)).strip())
        if table is locks and dialect.name == "postgresql":
            name = dialect.identifier_preparer.format_table(table)
            statements.append(f"ALTER TABLE {name} SET UNLOGGED")
    return statements


def _text() -> TypeEngine[str]:
    return Text().with_variant(mysql.TEXT(), *MYSQL)


def _drizzle_columns() -> list[Column[Any]]:
    # Shopify's Drizzle schemas: pg-core text/boolean/timestamp/bigint; mysql-core
    # varchar(255) id, text, boolean, timestamp; sqlite-core text, integer booleans,
    # text timestamps, a blob user id.
    boolean: TypeEngine[Any] = Boolean().with_variant(Integer(), "sqlite")
    timestamp: TypeEngine[Any] = (
        DateTime().with_variant(mysql.TIMESTAMP(), *MYSQL).with_variant(Text(), "sqlite")
    )
    return [
        Column("id", Text().with_variant(mysql.VARCHAR(255), *MYSQL), primary_key=True),
        Column("shop", _text(), nullable=False),
        Column("state", _text(), nullable=False),
        Column("isOnline", boolean, nullable=False, server_default=false()),
        Column("scope", _text()),
        Column("expires", timestamp),
        Column("accessToken", _text(), nullable=False),
        Column("userId", BigInteger().with_variant(LargeBinary(), "sqlite")),
        *(Column(name, _text()) for name in _USER_TEXT),
        Column("accountOwner", boolean),
        Column("locale", _text()),
        Column("collaborator", boolean),
        Column("emailVerified", boolean),
        Column("refreshToken", _text()),
        Column("refreshTokenExpires", timestamp),
    ]


def _prisma_columns() -> list[Column[Any]]:
    # Prisma's Session model with Prisma's default native types: String is TEXT
    # (VARCHAR(191) on MySQL), DateTime is TIMESTAMP(3) / DATETIME(3) / SQLite DATETIME.
    text: TypeEngine[Any] = Text().with_variant(mysql.VARCHAR(191), *MYSQL)
    timestamp: TypeEngine[Any] = (
        DateTime()
        .with_variant(postgresql.TIMESTAMP(precision=3), "postgresql")
        .with_variant(mysql.DATETIME(fsp=3), *MYSQL)
    )
    return [
        Column("id", text, primary_key=True),
        Column("shop", text, nullable=False),
        Column("state", text, nullable=False),
        Column("isOnline", Boolean(), nullable=False, server_default=false()),
        Column("scope", text),
        Column("expires", timestamp),
        Column("accessToken", text, nullable=False),
        Column("userId", BigInteger()),
        *(Column(name, text) for name in _USER_TEXT),
        Column("accountOwner", Boolean()),
        Column("locale", text),
        Column("collaborator", Boolean()),
        Column("emailVerified", Boolean()),
        Column("refreshToken", text),
        Column("refreshTokenExpires", timestamp),
    ]
