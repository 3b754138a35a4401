"""DynamoDB session storage, sync (boto3) and asyncio (aiobotocore), in the items of
Shopify's Node adapter ``@shopify/shopify-app-session-storage-dynamodb``.

Install with ``pip install 'shopify-sessions[dynamodb]'`` (boto3 and aiobotocore); the
sync storage alone needs only boto3.
"""

from __future__ import annotations

try:
    import botocore as _botocore  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "shopify_sessions.dynamodb needs boto3: pip install 'shopify-sessions[dynamodb]'"
    ) from error

from .._locks import DEFAULT_LOCK_LEASE
from ._async import AsyncDynamoDBSessionStorage
from ._core import DEFAULT_SHOP_INDEX, DEFAULT_TABLE_NAME, table_definition
from ._sync import DynamoDBSessionStorage

__all__ = [
    "DEFAULT_LOCK_LEASE",
    "DEFAULT_SHOP_INDEX",
    "DEFAULT_TABLE_NAME",
    "AsyncDynamoDBSessionStorage",
    "DynamoDBSessionStorage",
    "table_definition",
]

for _name in ("AsyncDynamoDBSessionStorage", "DynamoDBSessionStorage"):
    globals()[_name].__module__ = __name__
