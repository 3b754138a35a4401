"""Redis failures, translated into this package's typed errors.

redis-py's messages name the command's error, never its arguments, so no value (and no
token) reaches a message.
"""

from __future__ import annotations

from redis import exceptions

from .._errors import (
    SessionDataError,
    SessionStorageError,
    StorageConflictError,
    StorageOperationError,
    StorageUnavailableError,
)

#: What a Redis call can fail with, besides this package's own errors. ``AttributeError``
#: is redis-py's asyncio cluster client writing on a connection that another task's
#: error handling closed under it (see ``docs/redis.md``): a lost connection.
FAILURES = (exceptions.RedisError, exceptions.RedisClusterException, OSError, AttributeError)

#: Errors after which the server (or the cluster's view of it) may be back at the next try.
_UNAVAILABLE = (
    exceptions.ConnectionError,
    exceptions.TimeoutError,
    exceptions.ClusterError,
    exceptions.SlotNotCoveredError,
    exceptions.TryAgainError,
    OSError,
    AttributeError,
)
_OWN = "shopify_sessions: "


def failure(operation: str, where: str, error: BaseException) -> SessionStorageError:
    """The typed error of ``operation`` on ``where`` (the key prefix) failing with ``error``."""
    reason = _reason(error)
    if isinstance(error, exceptions.ReadOnlyError):
        return StorageOperationError(
            f"{operation} on {where}: the server is a read-only replica: {reason}"
        )
    if isinstance(error, exceptions.MaxConnectionsError):
        return StorageConflictError(f"{operation} on {where}: no free connection: {reason}")
    if isinstance(error, _UNAVAILABLE):
        return StorageUnavailableError(f"{operation} on {where}: Redis is unavailable: {reason}")
    if isinstance(error, exceptions.ResponseError) and (
        _OWN in str(error) or str(error).startswith("WRONGTYPE")
    ):
        text = str(error)
        if _OWN in text:
            text = text[text.index(_OWN) + len(_OWN) :].split(" script:")[0].rstrip(". ")
        return SessionDataError(f"{operation} on {where}: {text}")
    return StorageOperationError(f"{operation} on {where} failed: {reason}")


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return f"{type(error).__name__}: {text}"
