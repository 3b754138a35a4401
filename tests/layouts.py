"""The session tables of Shopify's Node adapters, as those packages create them.

Sources: the DDL of `@shopify/shopify-app-session-storage-drizzle`'s tests, Prisma's
migrations for the `Session` model, and the raw adapters' createTable + migrations
(shared/reference/shopify-anchors.md, sections 3.1 to 3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from shopify_sessions import Session

USER_TEXT = ("firstName", "lastName", "email", "locale")
USER_BOOLEANS = ("accountOwner", "collaborator", "emailVerified")


@dataclass(frozen=True)
class Layout:
    """One Node adapter's table on one dialect."""

    adapter: str  # "drizzle", "prisma", "prisma-v5" (non-null accountOwner), "raw"
    server: str  # "postgresql", "mysql", "sqlite"
    template: str  # DDL with {t} for the quoted table name and {n} for the bare name

    @property
    def name(self) -> str:
        return f"{self.adapter}-{self.server}"

    def ddl(self, table: str, quote: str) -> str:
        return self.template.format(t=f"{quote}{table}{quote}", n=table)


def keeps_milliseconds(adapter: str, server: str, column: str) -> bool:
    """Whether the Node layout keeps milliseconds in ``column`` (observed with the packages).

    The raw adapters store epoch seconds, except ``refreshTokenExpires`` on PostgreSQL
    (milliseconds); Drizzle's MySQL ``timestamp`` has no fraction; the rest keep them.
    """
    if adapter == "raw":
        return server == "postgresql" and column == "refreshTokenExpires"
    return (adapter, server) != ("drizzle", "mysql")


def as_stored(adapter: str, server: str, session: Session) -> Session:
    """``session`` as it reads back from the layout: whole seconds where it keeps no more."""
    copy = session.copy()
    if copy.expires is not None and not keeps_milliseconds(adapter, server, "expires"):
        copy.expires = copy.expires.replace(microsecond=0)
    late = copy.refresh_token_expires
    if late is not None and not keeps_milliseconds(adapter, server, "refreshTokenExpires"):
        copy.refresh_token_expires = late.replace(microsecond=0)
    return copy


def _columns(q: str, **types: str) -> str:
    return ", ".join(f"{q}{name}{q} {sql}" for name, sql in types.items())


def _session_columns(
    q: str, text: str, boolean: str, timestamp: str, user_id: str, **over: str
) -> str:
    types = {
        "shop": f"{text} NOT NULL",
        "state": f"{text} NOT NULL",
        "isOnline": f"{boolean} NOT NULL DEFAULT false",
        "scope": text,
        "expires": timestamp,
        "accessToken": f"{text} NOT NULL",
        "userId": user_id,
        **dict.fromkeys(USER_TEXT, text),
        **dict.fromkeys(USER_BOOLEANS, boolean),
        "refreshToken": text,
        "refreshTokenExpires": timestamp,
    }
    types.update(over)
    return _columns(q, **types)


LAYOUTS = [
    Layout(
        "drizzle",
        "postgresql",
        'CREATE TABLE {t} ("id" TEXT PRIMARY KEY, '
        + _session_columns('"', "TEXT", "BOOLEAN", "TIMESTAMP", "BIGINT")
        + ")",
    ),
    Layout(
        "drizzle",
        "mysql",
        "CREATE TABLE {t} (`id` varchar(255) NOT NULL, "
        + _session_columns("`", "text", "boolean", "timestamp NULL", "bigint")
        + ", CONSTRAINT `{n}_id` PRIMARY KEY(`id`))",
    ),
    Layout(
        "drizzle",
        "sqlite",
        'CREATE TABLE {t} ("id" text PRIMARY KEY NOT NULL, '
        + _session_columns(
            '"', "text", "integer", "text", "blob", isOnline="integer DEFAULT false NOT NULL"
        )
        + ")",
    ),
    Layout(
        "prisma",
        "postgresql",
        'CREATE TABLE {t} ("id" TEXT NOT NULL, '
        + _session_columns('"', "TEXT", "BOOLEAN", "TIMESTAMP(3)", "BIGINT")
        + ', CONSTRAINT "{n}_pkey" PRIMARY KEY ("id"))',
    ),
    Layout(
        "prisma",
        "mysql",
        "CREATE TABLE {t} (`id` VARCHAR(191) NOT NULL, "
        + _session_columns("`", "VARCHAR(191)", "BOOLEAN", "DATETIME(3) NULL", "BIGINT NULL")
        + ", PRIMARY KEY (`id`)) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    ),
    Layout(
        "prisma",
        "sqlite",
        'CREATE TABLE {t} ("id" TEXT NOT NULL PRIMARY KEY, '
        + _session_columns('"', "TEXT", "BOOLEAN", "DATETIME", "BIGINT")
        + ")",
    ),
    Layout(
        "prisma-v5",
        "postgresql",
        'CREATE TABLE {t} ("id" TEXT NOT NULL, '
        + _session_columns(
            '"',
            "TEXT",
            "BOOLEAN",
            "TIMESTAMP(3)",
            "BIGINT",
            accountOwner="BOOLEAN NOT NULL DEFAULT false",
            collaborator="BOOLEAN DEFAULT false",
            emailVerified="BOOLEAN DEFAULT false",
        )
        + ', CONSTRAINT "{n}_pkey" PRIMARY KEY ("id"))',
    ),
    Layout(
        "raw",
        "postgresql",
        'CREATE TABLE {t} ("id" varchar(255) NOT NULL PRIMARY KEY, '
        + _session_columns(
            '"',
            "varchar(255)",
            "boolean",
            "integer",
            "bigint",
            isOnline="boolean NOT NULL",
            scope="varchar(1024)",
            accessToken="varchar(255)",
            refreshTokenExpires="bigint",
        )
        + ")",
    ),
    Layout(
        "raw",
        "mysql",
        "CREATE TABLE {t} (id varchar(255) NOT NULL PRIMARY KEY, "
        + _session_columns(
            "`",
            "varchar(255)",
            "tinyint",
            "integer",
            "BIGINT",
            isOnline="tinyint NOT NULL",
            scope="varchar(1024)",
            accessToken="varchar(255)",
        )
        + ")",
    ),
    Layout(
        "raw",
        "sqlite",
        "CREATE TABLE {t} (id varchar(255) NOT NULL PRIMARY KEY, "
        + _session_columns(
            '"',
            "varchar(255)",
            "integer",
            "integer",
            "integer",
            isOnline="integer NOT NULL",
            scope="varchar(1024)",
            accessToken="varchar(255)",
        )
        + ")",
    ),
]
