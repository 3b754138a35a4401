"""Shopify sessions in a Django project: ``pip install 'shopify-sessions[django]'``.

- Settings: ``SHOPIFY_API_KEY``, ``SHOPIFY_API_SECRET``, and ``SHOPIFY_SESSIONS``, whose
  ``DATABASE`` (a ``DATABASES`` alias) or ``URL`` names the sessions' database; the storage
  is made from it once per process (:func:`get_storage`), and runs on Django's own
  connection of that alias: the test database in tests, the caller's transaction.
- ``manage.py migrate`` creates the table (``TABLE``, ``SCHEMA``, ``LAYOUT``), or checks an
  existing one; ``manage.py check`` validates the settings.
- Views: :func:`webhook` (verified, applied, then sent as :data:`webhook_received`),
  :func:`patch_id_token`, and the decorators :func:`app_home`, :func:`admin_extension`,
  :func:`pos_extension`, which hand a view ``request.shopify_session`` (and, with
  ``@app_home(online=True)``, the staff user's ``request.shopify_online_session``).
- ``manage.py shopify_sessions SUBCOMMAND``: the ``shopify-sessions`` command on that
  table (with ``shopify_sessions.django`` in ``INSTALLED_APPS``).
"""

from __future__ import annotations

try:
    import django as _django  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "shopify_sessions.django needs Django: pip install 'shopify-sessions[django]'"
    ) from error

from typing import TYPE_CHECKING

from ._settings import database_url, made
from ._views import (
    admin_extension,
    app_home,
    patch_id_token,
    pos_extension,
    webhook,
    webhook_received,
)

if TYPE_CHECKING:
    from shopify_app import ShopifyApp

    from .._storage import LockingSessionStorage
    from ..tokens import OfflineTokens

__all__ = [
    "admin_extension",
    "app_home",
    "database_url",
    "get_app",
    "get_storage",
    "get_tokens",
    "patch_id_token",
    "pos_extension",
    "webhook",
    "webhook_received",
]


def get_storage() -> LockingSessionStorage:
    """The process's sessions storage, made from the settings on first use (never one per
    request), and anew when Django's connection moves to another database (the test
    database); the table is created first when ``SHOPIFY_SESSIONS["CREATE_TABLE"]``: a
    ``SQLAlchemySessionStorage``, or a ``RedisSessionStorage`` for a Redis ``URL``."""
    return made().storage


def get_tokens() -> OfflineTokens:
    """The process's ``OfflineTokens`` on that storage, for webhooks' and jobs' own Admin
    API calls: ``get_tokens().get(shop)``."""
    return made().tokens


def get_app() -> ShopifyApp:
    """``shopifyapp``'s ``ShopifyApp`` with the app's credentials (Admin API calls)."""
    return made().app


for _name in __all__:
    if _name != "webhook_received":
        globals()[_name].__module__ = __name__
