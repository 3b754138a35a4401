"""The test settings with a sessions URL of an asyncio driver, which the Django integration
(synchronous) refuses: ``manage.py shopify_sessions`` must refuse it too."""

from django_settings import *  # noqa: F403

SHOPIFY_SESSIONS = {"URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test"}
