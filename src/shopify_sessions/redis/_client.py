"""The redis-py client of a storage: built from a URL, or the app's own, checked for kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio

from .._errors import DatabaseURLError

SCHEMES = ("redis", "rediss", "unix")

#: Options of a client built from a URL: answers as text, and a bounded wait for a
#: server that stopped answering (redis-py waits forever by default), so that a
#: stalled Redis becomes a typed error instead of a hung request.
DEFAULT_CLIENT_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_timeout": 10.0,
    "socket_connect_timeout": 5.0,
}

_SYNC = (redis.Redis, redis.RedisCluster)
_ASYNC = (redis.asyncio.Redis, redis.asyncio.RedisCluster)


def client_from_url(url: str, *, is_async: bool, options: Mapping[str, Any] | None) -> Any:
    """A redis-py client for ``url``: a cluster client with ``?cluster=true``."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise DatabaseURLError(
            f"not a Redis URL (redis://, rediss:// or unix://): {parts.scheme or url!r}"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    flags = [value.lower() for name, value in query if name == "cluster"]
    cluster = bool(flags) and flags[-1] in ("1", "true", "yes")
    if flags and not cluster and flags[-1] not in ("0", "false", "no"):
        raise DatabaseURLError(f"cluster= takes true or false, not {flags[-1]!r}")
    if cluster and parts.scheme == "unix":
        raise DatabaseURLError("a Redis Cluster is reached over TCP: redis:// or rediss://")
    plain = urlunsplit(parts._replace(query=urlencode([q for q in query if q[0] != "cluster"])))
    settings = {**DEFAULT_CLIENT_OPTIONS, **(options or {})}
    kind = redis.asyncio if is_async else redis
    try:
        if cluster:
            return kind.RedisCluster.from_url(plain, **settings)
        return kind.Redis.from_url(plain, **settings)
    except (ValueError, TypeError) as error:
        raise DatabaseURLError(f"cannot use this Redis URL: {error}") from error


def check_client(client: object, *, is_async: bool) -> None:
    """Refuse a client of the other kind (sync for async), naming the class to use."""
    wanted, other = (_ASYNC, _SYNC) if is_async else (_SYNC, _ASYNC)
    if isinstance(client, wanted):
        return
    if isinstance(client, other):
        use = "RedisSessionStorage" if is_async else "AsyncRedisSessionStorage"
        raise TypeError(f"{type(client).__module__}.{type(client).__name__} goes with {use}")
    raise TypeError(f"expected a Redis URL or a redis-py client, not {type(client).__name__}")


def close_client(client: Any) -> None:
    """Close a synchronous client and every connection it opened.

    redis-py's ``RedisCluster.close()`` closes its nodes' clients, which leave their
    connection pools open (they don't own them): their sockets are disconnected here.
    """
    client.close()
    if isinstance(client, redis.RedisCluster):
        for node in client.get_nodes():  # type: ignore[no-untyped-call]
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()


async def aclose_client(client: Any) -> None:
    """Close an asyncio client and its connections."""
    await client.aclose()
