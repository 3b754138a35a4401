"""A sync application needs neither greenlet nor SQLAlchemy's asyncio support."""

from __future__ import annotations

import subprocess
import sys


def test_the_sync_storage_imports_without_asyncio_support() -> None:
    # Make `import greenlet` fail, as on an install without the async extras.
    code = (
        "import sys; sys.modules['greenlet'] = None\n"
        "from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage\n"
        "storage = SQLAlchemySessionStorage('sqlite://')\n"
        "storage.create_table()\n"
        "assert storage.load_session('absent') is None\n"
        "assert 'sqlalchemy.ext.asyncio' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_async_storage_is_there_on_first_use() -> None:
    import shopify_sessions.sqlalchemy as package

    storage_type = package.AsyncSQLAlchemySessionStorage
    assert storage_type.__module__ == "shopify_sessions.sqlalchemy"
    assert "AsyncSQLAlchemySessionStorage" in package.__all__
