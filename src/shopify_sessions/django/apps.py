"""The Django app of shopify_sessions (``INSTALLED_APPS``): the sessions table's migration,
the system checks of ``SHOPIFY_SESSIONS``, and ``manage.py shopify_sessions``."""

from __future__ import annotations

from django.apps import AppConfig


class ShopifySessionsConfig(AppConfig):
    """``shopify_sessions.django`` in ``INSTALLED_APPS``."""

    name = "shopify_sessions.django"
    label = "shopify_sessions"
    verbose_name = "Shopify sessions"

    def ready(self) -> None:
        from . import _checks  # noqa: F401  (registers the system checks)
