"""Shopify app session storage for Python: the Session model, storage protocols,
an in-memory storage, SQL storage on SQLAlchemy in ``shopify_sessions.sqlalchemy`` and
Redis storage in ``shopify_sessions.redis``.
"""

from ._encryption import FernetTokenCipher, TokenCipher, TokenDecryptionError
from ._errors import (
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
    StorageConflictError,
    StorageOperationError,
    StorageUnavailableError,
    TokenPersistenceError,
    TokenRefreshError,
    UnsupportedDialectError,
)
from ._memory import AsyncMemorySessionStorage, MemorySessionStorage
from ._scopes import AuthScopes
from ._session import AssociatedUser, OnlineAccessInfo, Session
from ._shop import is_valid_shop, offline_session_id, online_session_id, sanitize_shop
from ._storage import (
    AsyncLockingSessionStorage,
    AsyncSessionStorage,
    LockingSessionStorage,
    SessionStorage,
    session_order,
)

__version__ = "0.1.0"

__all__ = [
    "AssociatedUser",
    "AsyncLockingSessionStorage",
    "AsyncMemorySessionStorage",
    "AsyncSessionStorage",
    "AuthScopes",
    "DatabaseURLError",
    "FernetTokenCipher",
    "InvalidSessionError",
    "InvalidShopError",
    "LockTimeoutError",
    "LockingSessionStorage",
    "MemorySessionStorage",
    "MissingSessionTableError",
    "OnlineAccessInfo",
    "ReauthorizationRequiredError",
    "Session",
    "SessionDataError",
    "SessionStorage",
    "SessionStorageError",
    "SessionTableSchemaError",
    "ShopTokenError",
    "StorageConflictError",
    "StorageOperationError",
    "StorageUnavailableError",
    "TokenCipher",
    "TokenDecryptionError",
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
    globals()[_name].__module__ = __name__
