"""The sessions table and its lock table as Django sees them: two stub models, so that
Django empties both where it empties every table of the project (``manage.py flush``,
and a ``TransactionTestCase`` after each test).

They are not a way to read or write sessions (use :func:`~shopify_sessions.django.get_storage`):
the tables' columns differ by layout and database, and only the key is declared. The
migration creates the tables; these models only name them, from ``SHOPIFY_SESSIONS``.
``manage.py dumpdata`` would write keys alone: leave the app out (``-e shopify_sessions``).
"""

from __future__ import annotations

from django.db import models

from ._settings import migration_table_names

_SESSIONS_TABLE, _LOCK_TABLE = migration_table_names()


class Session(models.Model):
    """The sessions table (its key only)."""

    id = models.CharField(primary_key=True, max_length=255)

    class Meta:
        db_table = _SESSIONS_TABLE
        default_permissions = ()

    def __str__(self) -> str:
        return str(self.id)


class SessionLock(models.Model):
    """The sessions' lock table (its key only)."""

    id = models.CharField(primary_key=True, max_length=255)

    class Meta:
        db_table = _LOCK_TABLE
        default_permissions = ()

    def __str__(self) -> str:
        return str(self.id)
