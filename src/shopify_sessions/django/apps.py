"""The Django app of shopify_sessions (``INSTALLED_APPS``): its management command."""

from __future__ import annotations

from django.apps import AppConfig


class ShopifySessionsConfig(AppConfig):
    """``shopify_sessions.django`` in ``INSTALLED_APPS``: ``manage.py shopify_sessions``."""

    name = "shopify_sessions.django"
    label = "shopify_sessions"
    verbose_name = "Shopify sessions"
