"""A ``DATABASES`` entry as a SQLAlchemy database URL."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from sqlalchemy import URL

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


def backend_of(entry: dict[str, Any]) -> str | None:
    """The database of a ``DATABASES`` entry by its ENGINE (``postgresql``, ``mysql``,
    ``sqlite``), or ``None`` for one the sessions cannot be kept in."""
    return _ENGINES.get(str(entry.get("ENGINE", "")))


def entry_url(alias: str, entry: dict[str, Any]) -> str:
    """The URL of the database of the ``DATABASES`` entry ``entry`` (see :func:`database_url`)."""
    backend = backend_of(entry)
    if backend is None:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] is a {entry.get('ENGINE')!r} database: sessions are stored "
            "in PostgreSQL, MySQL/MariaDB or SQLite; set SHOPIFY_SESSIONS['URL']"
        )
    name = str(entry.get("NAME") or "")
    if backend == "sqlite":
        if name.startswith("file:memorydb_"):  # Django's in-memory test database
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}] is Django's in-memory SQLite test database, which no "
                f"other process sees; give the tests a file: DATABASES[{alias!r}]['TEST']"
                "['NAME'] = 'test_db.sqlite3'"
            )
        if not name or name == ":memory:" or "mode=memory" in name:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}] is an in-memory SQLite database, which no other "
                "process sees; give it a file"
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
