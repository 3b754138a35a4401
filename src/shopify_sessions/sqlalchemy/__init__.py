"""SQL session storage on SQLAlchemy 2.x: PostgreSQL, MySQL/MariaDB and SQLite, sync and asyncio."""

from ._async import AsyncSQLAlchemySessionStorage
from ._sync import SQLAlchemySessionStorage
from ._table import COLUMNS, DEFAULT_TABLE_NAME, session_table

__all__ = [
    "COLUMNS",
    "DEFAULT_TABLE_NAME",
    "AsyncSQLAlchemySessionStorage",
    "SQLAlchemySessionStorage",
    "session_table",
]

for _name in ("AsyncSQLAlchemySessionStorage", "SQLAlchemySessionStorage", "session_table"):
    globals()[_name].__module__ = __name__
