"""The example project's settings, plus the test servers as DATABASES entries (nothing
connects to an entry until it is used) and a few entries that must be refused.

``SHOPIFY_SESSIONS_TEST_DATABASE``, ``SHOPIFY_SESSIONS_TEST_TABLE`` (empty: the layout's
own) and ``SHOPIFY_SESSIONS_TEST_LAYOUT`` choose the entry, the table and its layout, for
the ``manage.py`` subprocesses (the tests in this process override the setting instead)."""

import os
import tempfile

os.environ.setdefault("SQLITE_PATH", os.path.join(tempfile.mkdtemp(), "django.sqlite3"))

import pymysql
from sqlalchemy import make_url

from conftest import MYSQL_URL, POSTGRESQL_URL
from shopapp.settings import *  # noqa: F403

# Django's MySQL backend on PyMySQL (mysqlclient needs C headers to build): PyMySQL
# stands in for MySQLdb, as many projects run it, under the version Django asks for.
pymysql.version_info = (2, 2, 1, "final", 0)
pymysql.install_as_MySQLdb()


def _entry(url: str, engine: str) -> dict[str, object]:
    parsed = make_url(url)
    return {
        "ENGINE": engine,
        "NAME": parsed.database,
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.host or "",
        "PORT": str(parsed.port or ""),
    }


DATABASES = {
    **DATABASES,  # noqa: F405
    "postgresql": _entry(POSTGRESQL_URL, "django.db.backends.postgresql"),
    "mysql": _entry(MYSQL_URL, "django.db.backends.mysql"),
    "socket": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": "app",
        "PASSWORD": "p@ss:word",
        "HOST": "/var/run/postgresql",
        "OPTIONS": {"sslmode": "require", "pool": {"min_size": 2}},
    },
    "memory": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    # An engine the sessions cannot be kept in (Django's dummy backend: importable on every
    # Django, where the Oracle backend needs its driver as soon as Django checks models).
    "unsupported": {"ENGINE": "django.db.backends.dummy"},
}
SHOPIFY_SESSIONS = {
    "DATABASE": os.environ.get("SHOPIFY_SESSIONS_TEST_DATABASE", "default"),
    "TABLE": os.environ.get("SHOPIFY_SESSIONS_TEST_TABLE", "session") or None,
    "LAYOUT": os.environ.get("SHOPIFY_SESSIONS_TEST_LAYOUT", "default"),
}
