"""Shopify app session storage for Python: the Session model, storage protocols,
an in-memory storage, SQL storage on SQLAlchemy in ``shopify_sessions.sqlalchemy`` and
Redis storage in ``shopify_sessions.redis``.
"""

import inspect as _inspect
import types as _types

from ._encryption import FernetTokenCipher, TokenCipher, TokenDecryptionError
from ._errors import (
    ConnectionPoolerError,
    DatabaseURLError,
    InvalidSessionError,
    InvalidShopError,
    LockTimeoutError,
    MissingSessionTableError,
    ReauthorizationRequiredError,
    SessionDataError,
    SessionStorageError,
    SessionTableSchemaError,
    ShopTokenError,
    StorageAccessDeniedError,
    StorageConflictError,
    StorageOperationError,
    StorageUnavailableError,
    TokenExchangeError,
    TokenPersistenceError,
    TokenRefreshError,
    UnsupportedDialectError,
)
from ._locks import DEFAULT_LOCK_TIMEOUT
from ._memory import AsyncMemorySessionStorage, MemorySessionStorage
from ._scopes import AuthScopes, ScopesLike
from ._session import AssociatedUser, OnlineAccessInfo, PropertyValue, Session
from ._shop import is_valid_shop, offline_session_id, online_session_id, sanitize_shop
from ._storage import (
    AsyncLockingSessionStorage,
    AsyncSessionStorage,
    InvalidEntryHandler,
    LockingSessionStorage,
    SessionStorage,
    session_order,
)
from ._wrappers import AsyncSessionStorageWrapper, SessionStorageWrapper

__version__ = "0.2.0.dev0"

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "AssociatedUser",
    "AsyncLockingSessionStorage",
    "AsyncMemorySessionStorage",
    "AsyncSessionStorage",
    "AsyncSessionStorageWrapper",
    "AuthScopes",
    "ConnectionPoolerError",
    "DatabaseURLError",
    "FernetTokenCipher",
    "InvalidEntryHandler",
    "InvalidSessionError",
    "InvalidShopError",
    "LockTimeoutError",
    "LockingSessionStorage",
    "MemorySessionStorage",
    "MissingSessionTableError",
    "OnlineAccessInfo",
    "PropertyValue",
    "ReauthorizationRequiredError",
    "ScopesLike",
    "Session",
    "SessionDataError",
    "SessionStorage",
    "SessionStorageError",
    "SessionStorageWrapper",
    "SessionTableSchemaError",
    "ShopTokenError",
    "StorageAccessDeniedError",
    "StorageConflictError",
    "StorageOperationError",
    "StorageUnavailableError",
    "TokenCipher",
    "TokenDecryptionError",
    "TokenExchangeError",
    "TokenPersistenceError",
    "TokenRefreshError",
    "UnsupportedDialectError",
    "is_valid_shop",
    "offline_session_id",
    "online_session_id",
    "sanitize_shop",
    "session_order",
]

for _name in __all__:
    _value = globals()[_name]
    # Classes and functions only: not the constant, nor the type aliases (on Python 3.10 a
    # parametrised Callable passes isinstance(..., type) and refuses a new __module__).
    if not isinstance(_value, _types.GenericAlias) and (
        isinstance(_value, type) or _inspect.isfunction(_value)
    ):
        _value.__module__ = __name__
