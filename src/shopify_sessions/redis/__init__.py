"""Redis session storage on redis-py, sync and asyncio, on one Redis or a Redis Cluster, in
the keys of Shopify's Node adapter ``@shopify/shopify-app-session-storage-redis``.

Install with ``pip install 'shopify-sessions[redis]'``.
"""

from __future__ import annotations

try:
    import redis as _redis  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "shopify_sessions.redis needs redis-py: pip install 'shopify-sessions[redis]'"
    ) from error

from .._locks import DEFAULT_LOCK_LEASE
from ._async import AsyncRedisSessionStorage
from ._core import DEFAULT_KEY_PREFIX
from ._sync import RedisSessionStorage

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_LOCK_LEASE",
    "AsyncRedisSessionStorage",
    "RedisSessionStorage",
]

for _name in ("AsyncRedisSessionStorage", "RedisSessionStorage"):
    globals()[_name].__module__ = __name__
