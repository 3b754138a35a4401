"""Generate the synchronous storage from the asyncio one.

src/shopify_sessions/sqlalchemy/_async.py is the only hand-written storage shell;
_sync.py is this script's output (as httpcore does), so the two cannot drift apart.

    python scripts/unasync.py           # rewrite _sync.py
    python scripts/unasync.py --check   # fail if _sync.py is not what _async.py gives (CI)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "shopify_sessions" / "sqlalchemy"
SOURCE, TARGET = PACKAGE / "_async.py", PACKAGE / "_sync.py"
HEADER = "# Generated from _async.py by scripts/unasync.py: edit that file, then run the script.\n"

#: Applied in order, each to the whole file.
REWRITES = [
    (
        r'(?s)\A"""The asyncio SQL storage: the one hand-written shell\..*?"""',
        '"""The synchronous SQL storage."""',
    ),
    (r"^import asyncio$", "import time"),
    (r"\basyncio\.sleep\(", "time.sleep("),
    (
        r"^from sqlalchemy\.ext\.asyncio import AsyncConnection, AsyncEngine, create_async_engine$",
        "from sqlalchemy import Connection, Engine, create_engine",
    ),
    (r"\bAwaitable\[T\]", "T"),
    (r"\bAwaitable, ", ""),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncConnection\b", "Connection"),
    (r"\bAsyncEngine\b", "Engine"),
    (r"\bcreate_async_engine\b", "create_engine"),
    (r"\bAsyncSQLAlchemySessionStorage\b", "SQLAlchemySessionStorage"),
    (r"an asyncio SQLAlchemy", "a synchronous SQLAlchemy"),
    (r"\n\n    The asyncio twin of :class:`SQLAlchemySessionStorage`[^\n]*", ""),
    (r"\bis_async=True\b", "is_async=False"),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"await connection\.run_sync\(([\w.]+), ", r"\1(connection, "),
    (r"\(await ([^()]+\([^()]*\))\)\.(\w+)\(\)", r"\1.\2()"),
    (r"\basync (def|for|with) ", r"\1 "),
    (r"\bawait ", ""),
]


def generate() -> str:
    text = SOURCE.read_text()
    for pattern, replacement in REWRITES:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    return HEADER + _ruff(_ruff(text, "check", "--fix", "--select", "I", "--quiet"), "format")


def _ruff(text: str, *command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(TARGET), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main(argv: list[str]) -> int:
    generated = generate()
    if "--check" in argv:
        if TARGET.read_text() != generated:
            print(f"{TARGET} is not what scripts/unasync.py generates from {SOURCE.name}")
            return 1
        return 0
    TARGET.write_text(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
