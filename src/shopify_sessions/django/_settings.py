"""The ``SHOPIFY_SESSIONS`` setting, the database it names, and the process's one storage,
tokens and ``ShopifyApp``: made on first use, made anew when a test overrides a setting
or Django's connection moves to another database (the test database, and back)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import connections
from shopify_app import ShopifyApp

from .._app_storage import StorageOptions, storage_from_url
from .._locks import DEFAULT_LOCK_TIMEOUT
from .._storage import LockingSessionStorage
from .._web import DEFAULT_PATCH_ID_TOKEN_PATH
from ..sqlalchemy._create import CREATABLE_LAYOUTS, DEFAULT_NAMES
from ..sqlalchemy._layout import Layout
from ..sqlalchemy._table import lock_table_name
from ..telemetry import Telemetry
from ..tokens import OfflineTokens
from ..webhooks import DEFAULT_WEBHOOK_LOCK_TIMEOUT
from ._database import entry_url
from ._storage import DjangoSessionStorage

#: Every key of ``SHOPIFY_SESSIONS``, with its default.
DEFAULTS: dict[str, Any] = {
    "DATABASE": "default",
    "URL": None,
    "TABLE": None,
    "SCHEMA": None,
    "LAYOUT": "default",
    "CREATE_TABLE": False,
    "PATCH_ID_TOKEN_PATH": DEFAULT_PATCH_ID_TOKEN_PATH,
    "HTTP_CLIENT": None,
    "SKEW": timedelta(minutes=5),
    "LOCK_TIMEOUT": DEFAULT_LOCK_TIMEOUT,
    "WEBHOOK_LOCK_TIMEOUT": DEFAULT_WEBHOOK_LOCK_TIMEOUT,
    "OLD_CLIENT_SECRET": None,
    "TELEMETRY": None,
}


def options() -> dict[str, Any]:
    """``SHOPIFY_SESSIONS`` with its defaults; an unknown key is a mistake."""
    given = getattr(settings, "SHOPIFY_SESSIONS", {}) or {}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ImproperlyConfigured(
            f"SHOPIFY_SESSIONS has unknown keys {unknown}; it takes {sorted(DEFAULTS)}"
        )
    return {**DEFAULTS, **given}


def table_name(config: dict[str, Any] | None = None) -> str:
    """The sessions table's name: ``TABLE``, or the ``LAYOUT``'s own (``session``, or
    Prisma's ``Session``)."""
    config = config if config is not None else options()
    if config["TABLE"]:
        return str(config["TABLE"])
    return DEFAULT_NAMES[layout(config)]


def layout(config: dict[str, Any] | None = None) -> Layout:
    """The ``LAYOUT`` a migration creates the table in: ``default``, ``drizzle``, ``prisma``."""
    config = config if config is not None else options()
    given = config["LAYOUT"]
    if given in [each.value for each in CREATABLE_LAYOUTS]:
        return Layout(given)
    names = ", ".join(repr(each.value) for each in CREATABLE_LAYOUTS)
    raise ImproperlyConfigured(f"SHOPIFY_SESSIONS['LAYOUT'] is {given!r}; it takes {names}")


def migration_table_names() -> tuple[str, str]:
    """The names of the sessions table and its lock table, for the migration and the
    models; the defaults while the settings are wrong (the system checks say how)."""
    try:
        name = table_name()
    except ImproperlyConfigured:
        name = DEFAULT_NAMES[Layout.DEFAULT]
    return name, lock_table_name(name)


def sessions_alias(config: dict[str, Any] | None = None) -> str | None:
    """The ``DATABASES`` alias of the sessions' database, or ``None`` for a ``URL``."""
    config = config if config is not None else options()
    return None if config["URL"] else str(config["DATABASE"])


def database_url(alias: str | None = None) -> str:
    """The URL of the sessions' database: ``SHOPIFY_SESSIONS["URL"]``, or the one made from
    the ``DATABASES`` entry that ``SHOPIFY_SESSIONS["DATABASE"]`` (or ``alias``) names.

    The URL carries the entry's ENGINE (PostgreSQL, MySQL/MariaDB or SQLite), NAME, USER,
    PASSWORD, HOST and PORT, and for PostgreSQL its libpq OPTIONS (``sslmode``...); for
    anything else, give ``SHOPIFY_SESSIONS["URL"]``. An installed driver of the database
    is used (psycopg, PyMySQL, sqlite3; see :func:`~shopify_sessions.sqlalchemy.resolve_url`).
    ``manage.py shopify_sessions`` hands it to the command; the storage itself uses
    Django's connection of the entry.

    Raises:
        ImproperlyConfigured: no such entry, one of another database, or an in-memory
            SQLite database (which no other process sees).
    """
    config = options()
    if alias is None and config["URL"]:
        return str(config["URL"])
    alias = alias or config["DATABASE"]
    entry = settings.DATABASES.get(alias)
    if entry is None:
        raise ImproperlyConfigured(
            f"SHOPIFY_SESSIONS names the database {alias!r}, not in DATABASES"
        )
    return entry_url(alias, entry)


class Made:
    """What the process makes once: the storage; and, with the app's credentials, the
    tokens and ``shopifyapp``'s app (the storage alone needs none)."""

    __slots__ = ("_app", "_lock", "_tokens", "database", "options", "storage")

    def __init__(
        self, storage: LockingSessionStorage, options: dict[str, Any], database: tuple[Any, ...]
    ) -> None:
        self.storage = storage
        self.options = options
        #: Where the storage is: the URL, or the database Django's connection had then.
        self.database = database
        self._tokens: OfflineTokens | None = None
        self._app: ShopifyApp | None = None
        self._lock = threading.Lock()

    @property
    def tokens(self) -> OfflineTokens:
        """``OfflineTokens`` on the storage, with the app's credentials."""
        with self._lock:
            if self._tokens is None:
                client_id, client_secret = credentials()
                self._tokens = OfflineTokens(
                    self.storage,
                    client_id=client_id,
                    client_secret=client_secret,
                    http_client=self.options["HTTP_CLIENT"],
                    skew=self.options["SKEW"],
                    lock_timeout=self.options["LOCK_TIMEOUT"],
                    telemetry=self.options["TELEMETRY"],
                )
            return self._tokens

    @property
    def app(self) -> ShopifyApp:
        """``shopifyapp``'s ``ShopifyApp`` with the app's credentials."""
        with self._lock:
            if self._app is None:
                client_id, client_secret = credentials()
                self._app = ShopifyApp(client_id, client_secret, self.options["OLD_CLIENT_SECRET"])
            return self._app


_lock = threading.Lock()
_made: Made | None = None


def made() -> Made:
    """The process's storage, tokens and app, made on first use (once, under a lock), and
    anew once Django's connection of the sessions' database points elsewhere: the test
    runner and pytest-django move it to the test database, then back."""
    global _made
    with _lock:
        config = options()
        database = _database(config)
        if _made is not None and _made.database != database:
            _close(_made.storage)
            _made = None
        if _made is None:
            _made = _make(config, database)
        return _made


def _database(config: dict[str, Any]) -> tuple[Any, ...]:
    alias = sessions_alias(config)
    if alias is None:
        return (config["URL"],)
    if alias not in settings.DATABASES:
        raise ImproperlyConfigured(
            f"SHOPIFY_SESSIONS names the database {alias!r}, not in DATABASES"
        )
    entry = connections[alias].settings_dict
    return (alias, *(entry.get(key) for key in ("ENGINE", "NAME", "HOST", "PORT", "USER")))


def _make(config: dict[str, Any], database: tuple[Any, ...]) -> Made:
    http_client = config["HTTP_CLIENT"]
    if http_client is not None and not isinstance(http_client, httpx.Client):
        raise ImproperlyConfigured("SHOPIFY_SESSIONS['HTTP_CLIENT'] must be an httpx.Client")
    telemetry = config["TELEMETRY"]
    if telemetry is not None and not isinstance(telemetry, Telemetry):
        raise ImproperlyConfigured("SHOPIFY_SESSIONS['TELEMETRY'] must be a Telemetry")
    layout(config)  # a LAYOUT of a typo is refused here too, not only by migrate
    alias = sessions_alias(config)
    storage: LockingSessionStorage
    if alias is None:
        # SHOPIFY_SESSIONS["URL"]: a database's, or Redis's.
        given = StorageOptions(config["TABLE"], config["SCHEMA"])
        storage = storage_from_url(str(config["URL"]), is_async=False, options=given)
    else:
        storage = DjangoSessionStorage(alias, table=table_name(config), schema=config["SCHEMA"])
    if config["CREATE_TABLE"] and hasattr(storage, "create_table"):
        try:
            storage.create_table()
        except BaseException:
            _close(storage)
            raise
    return Made(storage, config, database)


def credentials() -> tuple[str, str]:
    """``SHOPIFY_API_KEY`` and ``SHOPIFY_API_SECRET``."""
    client_id = getattr(settings, "SHOPIFY_API_KEY", "")
    client_secret = getattr(settings, "SHOPIFY_API_SECRET", "")
    if not client_id or not client_secret:
        raise ImproperlyConfigured("set SHOPIFY_API_KEY and SHOPIFY_API_SECRET in the settings")
    return client_id, client_secret


def _forget(*, setting: str, **kwargs: Any) -> None:
    """A setting of ours changed (``override_settings`` in tests): make anew next time."""
    global _made
    if setting not in ("SHOPIFY_SESSIONS", "DATABASES", "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET"):
        return
    with _lock:
        old, _made = _made, None
    if old is not None:
        _close(old.storage)


def _close(storage: LockingSessionStorage) -> None:
    close = getattr(storage, "close", None)
    if close is not None:
        close()


setting_changed.connect(_forget, dispatch_uid="shopify_sessions.django")
