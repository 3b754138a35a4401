"""Shopify webhooks' effects on the sessions, on any locking storage of this package.

- :func:`apply_webhook` (and :func:`apply_webhook_async` for an asyncio storage) applies
  a verified webhook: ``app/uninstalled`` and ``shop/redact`` delete the shop's sessions,
  ``app/scopes_update`` writes the new scopes into its offline session, any other topic
  does nothing and says so. Idempotent; an uninstall during a refresh wins.
- :func:`receive_webhook` (and :func:`receive_webhook_async`) verifies the request with
  ``shopifyapp`` first (``pip install 'shopify-sessions[shopifyapp]'``), then applies it,
  and says what to answer Shopify.
"""

from ._async import apply_webhook_async, receive_webhook_async
from ._base import (
    DEFAULT_WEBHOOK_LOCK_TIMEOUT,
    InvalidWebhookError,
    ReceivedWebhook,
    WebhookResponse,
    WebhookResult,
)
from ._sync import apply_webhook, receive_webhook

__all__ = [
    "DEFAULT_WEBHOOK_LOCK_TIMEOUT",
    "InvalidWebhookError",
    "ReceivedWebhook",
    "WebhookResponse",
    "WebhookResult",
    "apply_webhook",
    "apply_webhook_async",
    "receive_webhook",
    "receive_webhook_async",
]

for _name in __all__[1:]:
    globals()[_name].__module__ = __name__
