"""Generate the synchronous shells from the asyncio ones.

In src/shopify_sessions/_walks/ (the walks the Redis and DynamoDB storages share),
src/shopify_sessions/sqlalchemy/ (the SQL storage), src/shopify_sessions/redis/ (the
Redis storage), src/shopify_sessions/dynamodb/ (the DynamoDB storage),
src/shopify_sessions/tokens/ (the token lifecycle) and
src/shopify_sessions/webhooks/ (the webhooks' effects), _async.py is the hand-written shell
and _sync.py this script's output (as httpcore does), so the two cannot drift apart.

    python scripts/unasync.py           # rewrite _sync.py
    python scripts/unasync.py --check   # fail if _sync.py is not what _async.py gives (CI)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "shopify_sessions"
FOLDERS = [
    PACKAGE / "_walks",
    PACKAGE / "sqlalchemy",
    PACKAGE / "redis",
    PACKAGE / "dynamodb",
    PACKAGE / "tokens",
    PACKAGE / "webhooks",
]
HEADER = "# Generated from _async.py by scripts/unasync.py: edit that file, then run the script.\n"

#: Applied in order, each to the whole file.
REWRITES = [
    (
        r'(?s)\A"""The asyncio (.*?): the one hand-written shell\..*?"""',
        r'"""The synchronous \1."""',
    ),
    (r"^import asyncio\n(?=(?:.*\n)*import time$)", ""),
    (r"^import asyncio$", "import time"),
    (r"\basyncio\.sleep\(", "time.sleep("),
    (r"\basynccontextmanager\b", "contextmanager"),
    (r"\bAsyncKeyedLocks\b", "KeyedLocks"),
    (r"\bAsyncReadBatcher\b", "ReadBatcher"),
    (r"\bAsyncHeartbeat\b", "Heartbeat"),
    (r"\bAsyncLockingSessionStorage\b", "LockingSessionStorage"),
    (r"\bAsyncOfflineTokens\b", "OfflineTokens"),
    (r"\bAsyncRecorder\b", "Recorder"),
    (r"\bfor_each_async\b", "for_each"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\brefresh_access_token_async\b", "refresh_access_token"),
    (r"\btoken_exchange_async\b", "token_exchange"),
    (r"\b(apply|receive)_webhook_async\b", r"\1_webhook"),
    (r"\.aclose\(", ".close("),
    (r"\baclose_client\b", "close_client"),
    (r"\basync_(checkout|execute|release)\b", r"\1"),
    (r"\._direct_async\b", "._direct"),
    (r"\b_walks\._async\b", "_walks._sync"),
    (r"\baopen_client\b", "open_client"),
    (r"\bAsyncDynamoDBSessionStorage\b", "DynamoDBSessionStorage"),
    (r"aiobotocore's asyncio client", "boto3"),
    (
        r"\(aiobotocore's, entered: ``await\n(\s+)"
        r"session\.create_client\(\"dynamodb\"\)\.__aenter__\(\)``\)",
        '(``boto3.client("dynamodb")``,\n\\1or a boto3 ``Session``\'s)',
    ),
    (r"\n(\s+)\(aiobotocore's is made on the running loop\)\.", "."),
    (
        r"^from sqlalchemy\.ext\.asyncio import AsyncConnection, AsyncEngine, create_async_engine$",
        "from sqlalchemy import Connection, Engine, create_engine",
    ),
    (r"\bAwaitable\[(\w+)\]", r"\1"),
    (r"\bAwaitable, ", ""),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncConnection\b", "Connection"),
    (r"\bAsyncEngine\b", "Engine"),
    (r"\bcreate_async_engine\b", "create_engine"),
    (r"\bAsyncSQLAlchemySessionStorage\b", "SQLAlchemySessionStorage"),
    (r"\bAsyncRedisSessionStorage\b", "RedisSessionStorage"),
    (r"^from redis\.asyncio import", "from redis import"),
    (r"redis-py's\n    asyncio client", "redis-py's\n    synchronous client"),
    (r"\bredis\.asyncio\.(Redis|RedisCluster)\b", r"redis.\1"),
    (r"an asyncio SQLAlchemy", "a synchronous SQLAlchemy"),
    (r"\n\n    The asyncio twin of :(?:class|func):`\w+`[^\n]*", ""),
    (r"\bis_async=True\b", "is_async=False"),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"await connection\.run_sync\(([\w.]+), ", r"\1(connection, "),
    (r"await connection\.run_sync\(([\w.]+)\)", r"\1(connection)"),
    (r"\(await ([^()]+\([^()]*\))\)\.(\w+)\(\)", r"\1.\2()"),
    (r"\basync (def|for|with) ", r"\1 "),
    (r"\bawait ", ""),
]


def generate(folder: Path) -> str:
    text = (folder / "_async.py").read_text()
    for pattern, replacement in REWRITES:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    target = folder / "_sync.py"
    fixed = _ruff(target, text, "check", "--fix", "--select", "I", "--quiet")
    return HEADER + _ruff(target, fixed, "format")


def _ruff(target: Path, text: str, *command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(target), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main(argv: list[str]) -> int:
    stale = 0
    for folder in FOLDERS:
        target, generated = folder / "_sync.py", generate(folder)
        if "--check" not in argv:
            target.write_text(generated)
        elif not target.exists() or target.read_text() != generated:
            print(f"{target} is not what scripts/unasync.py generates from _async.py")
            stale += 1
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
