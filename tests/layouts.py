"""The session tables of Shopify's Node adapters, as those packages create them.

Sources: the DDL of `@shopify/shopify-app-session-storage-drizzle`'s tests, Prisma's
migrations for the `Session` model, and the raw adapters' createTable + migrations
(shared/reference/shopify-anchors.md, sections 3.1 to 3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

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
