"""Django's system checks of ``SHOPIFY_SESSIONS`` (``manage.py check``, and before every
command that runs them): what :func:`~shopify_sessions.django.get_storage` would refuse,
said before the first request rather than at it.

The settings' check reads no database. The table's check (tagged ``database``:
``manage.py check --database default``, and ``migrate``) reads the table once the
migration that creates it has been applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.db.migrations.recorder import MigrationRecorder

from .._app_storage import BACKENDS
from .._errors import SessionStorageError
from ..sqlalchemy import resolve_url
from ..sqlalchemy._layout import Layout
from ..telemetry import Telemetry
from ._database import backend_of
from ._settings import credentials, layout, options, sessions_alias, table_name
from ._storage import DjangoSessionStorage


@register()
def check_settings(app_configs: Sequence[Any] | None, **kwargs: Any) -> list[CheckMessage]:
    """``SHOPIFY_SESSIONS``, the credentials and the sessions' database, as ``get_storage()``
    takes them."""
    try:
        config = options()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="shopify_sessions.E001")]
    problems: list[CheckMessage] = []
    problems += _database_problems(config)
    for key, kind, what in (
        ("TABLE", str, "a table name"),
        ("SCHEMA", str, "a schema name"),
    ):
        value = config[key]
        if value is not None and (not isinstance(value, kind) or not value):
            message = f"SHOPIFY_SESSIONS[{key!r}] is {value!r}: give {what}"
            problems.append(Error(message, id="shopify_sessions.E004"))
    try:
        chosen = layout(config)
    except ImproperlyConfigured as error:
        problems.append(Error(str(error), id="shopify_sessions.E004"))
    else:
        alias = sessions_alias(config)
        entry = settings.DATABASES.get(alias) if alias is not None else None
        if chosen is Layout.PRISMA and entry is not None and backend_of(entry) == "sqlite":
            problems.append(
                Error(
                    "SHOPIFY_SESSIONS['LAYOUT'] is 'prisma' on SQLite: Prisma keeps its dates "
                    "in DATETIME columns, which Django's SQLite connections convert as they "
                    "read them",
                    hint="Use the 'default' or 'drizzle' layout, or keep a Prisma table at a "
                    "SHOPIFY_SESSIONS['URL'] (an engine of the storage's own).",
                    id="shopify_sessions.E004",
                )
            )
    try:
        credentials()
    except ImproperlyConfigured as error:
        problems.append(
            Warning(
                str(error),
                hint="The views, get_tokens() and get_app() call Shopify with them; the "
                "storage alone (get_storage()) needs none.",
                id="shopify_sessions.W001",
            )
        )
    typed: tuple[tuple[str, type[Any], str], ...] = (
        ("HTTP_CLIENT", httpx.Client, "an httpx.Client"),
        ("TELEMETRY", Telemetry, "a Telemetry"),
        ("SKEW", timedelta, "a timedelta"),
    )
    for key, kind, name in typed:
        value = config[key]
        if value is not None and not isinstance(value, kind):
            problems.append(
                Error(f"SHOPIFY_SESSIONS[{key!r}] must be {name}", id="shopify_sessions.E006")
            )
    return problems


def _database_problems(config: dict[str, Any]) -> list[CheckMessage]:
    alias = sessions_alias(config)
    if alias is None:
        if urlsplit(str(config["URL"])).scheme in BACKENDS:
            return []  # Redis: the storage checks its URL itself
        try:
            resolve_url(str(config["URL"]), is_async=False)
        except (SessionStorageError, ValueError) as error:
            return [
                Error(
                    f"SHOPIFY_SESSIONS['URL']: {error}",
                    hint="The Django integration is synchronous: give the URL a synchronous "
                    "driver (psycopg, PyMySQL, sqlite3), or none and let it choose.",
                    id="shopify_sessions.E003",
                )
            ]
        return []
    entry = settings.DATABASES.get(alias)
    if entry is None:
        return [
            Error(
                f"SHOPIFY_SESSIONS['DATABASE'] names {alias!r}, which is not in DATABASES",
                id="shopify_sessions.E002",
            )
        ]
    if backend_of(entry) is None:
        return [
            Error(
                f"DATABASES[{alias!r}] is a {entry.get('ENGINE')!r} database: sessions are "
                "kept in PostgreSQL, MySQL/MariaDB or SQLite",
                hint="Name another DATABASES entry in SHOPIFY_SESSIONS['DATABASE'], or give "
                "SHOPIFY_SESSIONS['URL'].",
                id="shopify_sessions.E002",
            )
        ]
    return []


@register(Tags.database)
def check_table(
    app_configs: Sequence[Any] | None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The sessions table, once the migration that creates it is applied: it exists, and
    the storage can use it (every problem listed)."""
    try:
        config = options()
        alias = sessions_alias(config)
        name = table_name(config)
    except ImproperlyConfigured:
        return []  # check_settings says why
    if alias is None or alias not in (databases or ()):
        return []
    if any(message.is_serious() for message in check_settings(app_configs)):
        return []  # check_settings says why
    try:
        applied = MigrationRecorder(connections[alias]).applied_migrations()
    except DatabaseError as error:
        return [Error(f"DATABASES[{alias!r}]: {error}", id="shopify_sessions.E010")]
    if ("shopify_sessions", "0001_initial") not in applied:
        return []  # migrate creates it; until then, Django reports the unapplied migration
    storage = DjangoSessionStorage(alias, table=name, schema=config["SCHEMA"])
    try:
        storage.check_table()
    except SessionStorageError as error:
        return [
            Error(
                str(error),
                hint="`manage.py shopify_sessions check` tells more; `manage.py shopify_sessions "
                "upgrade` brings an older table up to date.",
                id="shopify_sessions.E010",
            )
        ]
    finally:
        storage.close()
    return []
