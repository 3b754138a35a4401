"""Expiring offline tokens on top of Shopify's ``shopifyapp`` package.

Install with ``pip install 'shopify-sessions[shopifyapp]'``.

- :func:`session_from_token` and :func:`token_from_session` convert between
  ``shopifyapp``'s token dataclasses and :class:`~shopify_sessions.Session`.
- :class:`OfflineTokens` and :class:`AsyncOfflineTokens` hand out valid offline access
  tokens, refreshing them once across processes, migrating legacy tokens, and keeping
  idle shops warm.
"""

try:
    import shopify_app as _shopify_app  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "shopify_sessions.tokens needs Shopify's shopifyapp package: "
        "pip install 'shopify-sessions[shopifyapp]'"
    ) from error

from ._async import AsyncOfflineTokens
from ._base import RefreshReport
from ._convert import session_from_token, token_from_session
from ._sync import OfflineTokens

__all__ = [
    "AsyncOfflineTokens",
    "OfflineTokens",
    "RefreshReport",
    "session_from_token",
    "token_from_session",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
