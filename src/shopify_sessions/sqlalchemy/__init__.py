"""SQL session storage on SQLAlchemy 2.x: PostgreSQL, MySQL/MariaDB and SQLite, sync and asyncio."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._locks import DEFAULT_LOCK_LEASE
from ._codecs import DateTimeFormat
from ._pooler import PoolerMode, pooler_engine_options
from ._server import ServerFacts
from ._sync import SQLAlchemySessionStorage
from ._table import COLUMNS, DEFAULT_TABLE_NAME, ColumnKind, session_lock_table, session_table
from ._url import resolve_url

if TYPE_CHECKING:
    from ._async import AsyncSQLAlchemySessionStorage

__all__ = [
    "COLUMNS",
    "DEFAULT_LOCK_LEASE",
    "DEFAULT_TABLE_NAME",
    "AsyncSQLAlchemySessionStorage",
    "ColumnKind",
    "DateTimeFormat",
    "PoolerMode",
    "SQLAlchemySessionStorage",
    "ServerFacts",
    "pooler_engine_options",
    "resolve_url",
    "session_lock_table",
    "session_table",
]

for _name in (
    "ColumnKind",
    "SQLAlchemySessionStorage",
    "ServerFacts",
    "pooler_engine_options",
    "resolve_url",
    "session_lock_table",
    "session_table",
):
    globals()[_name].__module__ = __name__


def __getattr__(name: str) -> Any:
    # Imported on first use: SQLAlchemy's asyncio support needs greenlet, which only the
    # async extras install, and a sync application should not need it.
    if name == "Kind":
        import warnings

        warnings.warn(
            "shopify_sessions.sqlalchemy.Kind is deprecated and will be removed in 0.3.0: "
            "it is named ColumnKind",
            DeprecationWarning,
            stacklevel=2,
        )
        return ColumnKind
    if name == "AsyncSQLAlchemySessionStorage":
        try:
            importlib.import_module("greenlet")  # what SQLAlchemy's asyncio support runs on
        except ImportError as error:
            # Before SQLAlchemy's own message, which names its extra, not ours.
            raise ImportError(
                "AsyncSQLAlchemySessionStorage needs greenlet (SQLAlchemy's asyncio support "
                "runs on it): install the extra of your asyncio driver, pip install "
                "'shopify-sessions[asyncpg]' (or [aiomysql], [aiosqlite])",
                name="greenlet",
            ) from error
        from ._async import AsyncSQLAlchemySessionStorage

        AsyncSQLAlchemySessionStorage.__module__ = __name__
        globals()[name] = AsyncSQLAlchemySessionStorage
        return AsyncSQLAlchemySessionStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
