"""Deprecated: the token lifecycle is :mod:`shopify_sessions.tokens`.

This module was renamed because its name read like Shopify's own ``shopify_app`` (the
import name of the ``shopifyapp`` package it wraps). It re-exports the same objects and
will be removed in 0.3.0.
"""

import sys
import warnings

from .tokens import (
    AsyncOfflineTokens,
    OfflineTokens,
    RefreshReport,
    session_from_token,
    token_from_session,
)

__all__ = [
    "AsyncOfflineTokens",
    "OfflineTokens",
    "RefreshReport",
    "session_from_token",
    "token_from_session",
]


def _importer_level() -> int:
    """The stack level of the module whose import statement loaded this one, past the
    import machinery's frames, so that the warning names the line to change."""
    level, frame = 2, sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith("<frozen "):
        level, frame = level + 1, frame.f_back
    return level


warnings.warn(
    "shopify_sessions.shopify_app is deprecated and will be removed in 0.3.0: "
    "import from shopify_sessions.tokens instead",
    DeprecationWarning,
    stacklevel=_importer_level(),
)
