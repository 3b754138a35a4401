"""The ``SHOPIFY_SESSIONS`` setting, the database URL it names, and the process's one storage,
tokens and ``ShopifyApp``, made on first use and dropped when a test overrides a setting."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from shopify_app import ShopifyApp
from sqlalchemy import URL

from .._app_storage import StorageOptions, storage_from_url
from .._locks import DEFAULT_LOCK_TIMEOUT
from .._storage import LockingSessionStorage
from .._telemetry import Telemetry
from .._web import DEFAULT_PATCH_ID_TOKEN_PATH
from ..tokens import OfflineTokens
from ..webhooks import DEFAULT_WEBHOOK_LOCK_TIMEOUT

#: Every key of ``SHOPIFY_SESSIONS``, with its default.
DEFAULTS: dict[str, Any] = {
    "DATABASE": "default",
    "URL": None,
    "TABLE": None,
    "SCHEMA": None,
    "CREATE_TABLE": False,
    "PATCH_ID_TOKEN_PATH": DEFAULT_PATCH_ID_TOKEN_PATH,
    "HTTP_CLIENT": None,
    "SKEW": timedelta(minutes=5),
    "LOCK_TIMEOUT": DEFAULT_LOCK_TIMEOUT,
    "WEBHOOK_LOCK_TIMEOUT": DEFAULT_WEBHOOK_LOCK_TIMEOUT,
    "OLD_CLIENT_SECRET": None,
    "TELEMETRY": None,
}
#: Django's database engines, and the database of each.
_ENGINES = {
    "django.db.backends.postgresql": "postgresql",
    "django.contrib.gis.db.backends.postgis": "postgresql",
    "django.db.backends.mysql": "mysql",
    "django.contrib.gis.db.backends.mysql": "mysql",
    "django.db.backends.sqlite3": "sqlite",
    "django.contrib.gis.db.backends.spatialite": "sqlite",
}
#: The OPTIONS of a PostgreSQL database that a URL carries as they are (libpq's).
_POSTGRESQL_OPTIONS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
    }
)


def options() -> dict[str, Any]:
    """``SHOPIFY_SESSIONS`` with its defaults; an unknown key is a mistake."""
    given = getattr(settings, "SHOPIFY_SESSIONS", {}) or {}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ImproperlyConfigured(
            f"SHOPIFY_SESSIONS has unknown keys {unknown}; it takes {sorted(DEFAULTS)}"
        )
    return {**DEFAULTS, **given}


def database_url(alias: str | None = None) -> str:
    """The URL of the sessions' database: ``SHOPIFY_SESSIONS["URL"]``, or the one made from
    the ``DATABASES`` entry that ``SHOPIFY_SESSIONS["DATABASE"]`` (or ``alias``) names.

    The URL carries the entry's ENGINE (PostgreSQL, MySQL/MariaDB or SQLite), NAME, USER,
    PASSWORD, HOST and PORT, and for PostgreSQL its libpq OPTIONS (``sslmode``...); for
    anything else, give ``SHOPIFY_SESSIONS["URL"]``. An installed driver of the database
    is used (psycopg, PyMySQL, sqlite3; see :func:`~shopify_sessions.sqlalchemy.resolve_url`).

    Raises:
        ImproperlyConfigured: no such entry, or one of another database.
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
    backend = _ENGINES.get(entry.get("ENGINE", ""))
    if backend is None:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] is a {entry.get('ENGINE')!r} database: sessions are stored "
            "in PostgreSQL, MySQL/MariaDB or SQLite; set SHOPIFY_SESSIONS['URL']"
        )
    name = str(entry.get("NAME") or "")
    if backend == "sqlite":
        if not name or name == ":memory:" or "mode=memory" in name:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}] is an in-memory SQLite database, which no other "
                "connection sees; give it a file"
            )
        return URL.create("sqlite", database=name).render_as_string()
    host = str(entry.get("HOST") or "") or None
    query: dict[str, str] = {}
    if backend == "postgresql":
        query = {
            key: str(value)
            for key, value in (entry.get("OPTIONS") or {}).items()
            if key in _POSTGRESQL_OPTIONS
        }
        if host and host.startswith("/"):  # a Unix socket's directory
            query["host"], host = host, None
    port = entry.get("PORT")
    url = URL.create(
        backend,
        username=entry.get("USER") or None,
        password=entry.get("PASSWORD") or None,
        host=host,
        port=int(port) if port else None,
        database=name or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class Made:
    """What the process makes once: the storage, the tokens, ``shopifyapp``'s app."""

    storage: LockingSessionStorage
    tokens: OfflineTokens
    app: ShopifyApp
    options: dict[str, Any]


_lock = threading.Lock()
_made: Made | None = None


def made() -> Made:
    """The process's storage, tokens and app, made on first use (once, under a lock)."""
    global _made
    with _lock:
        if _made is None:
            _made = _make()
        return _made


def _make() -> Made:
    config = options()
    client_id, client_secret = credentials()
    http_client = config["HTTP_CLIENT"]
    if http_client is not None and not isinstance(http_client, httpx.Client):
        raise ImproperlyConfigured("SHOPIFY_SESSIONS['HTTP_CLIENT'] must be an httpx.Client")
    telemetry = config["TELEMETRY"]
    if telemetry is not None and not isinstance(telemetry, Telemetry):
        raise ImproperlyConfigured("SHOPIFY_SESSIONS['TELEMETRY'] must be a Telemetry")
    # The URL of a DATABASES entry, or SHOPIFY_SESSIONS["URL"]: a database's, or Redis's.
    given = StorageOptions(config["TABLE"], config["SCHEMA"])
    storage = storage_from_url(database_url(), is_async=False, options=given)
    try:
        if config["CREATE_TABLE"] and hasattr(storage, "create_table"):
            storage.create_table()
        tokens = OfflineTokens(
            storage,
            client_id=client_id,
            client_secret=client_secret,
            http_client=http_client,
            skew=config["SKEW"],
            lock_timeout=config["LOCK_TIMEOUT"],
            telemetry=telemetry,
        )
    except BaseException:
        _close(storage)
        raise
    app = ShopifyApp(client_id, client_secret, config["OLD_CLIENT_SECRET"])
    return Made(storage, tokens, app, config)


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
