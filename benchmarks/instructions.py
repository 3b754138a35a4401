"""Instructions per call on SQLite, which no load on the machine changes.

    .venv/bin/python -m benchmarks.instructions [--calls 2000] [--output FILE]

For each side (the raw driver, the storage built from a URL, the storage on an app's
``create_engine(url)``) and each operation (``load_session``, ``store_session``), a child
process fills a SQLite file with 200 sessions, then makes ``--calls`` calls under
``valgrind --tool=callgrind``; the same child making no call is subtracted, and the
difference divided by ``--calls``. Timings move with whatever else the machine runs; these
counts don't, so they say where a call goes when the timed ratios are too noisy to.
Needs valgrind (Debian's ``valgrind``). The report goes to stdout and, with ``--output``,
to a file.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.data import offline_session, shop_name
from shopify_sessions import Session

SIDES = ("raw", "url", "app engine")
OPERATIONS = ("load_session", "store_session")
SESSIONS = 200
SEED = 2024
TABLE = "session"


def _sessions() -> list[Session]:
    rng = random.Random(SEED)
    return [offline_session(rng, shop_name(index), expiring=True) for index in range(SESSIONS)]


def child(side: str, operation: str, calls: int, path: str) -> None:
    """Set up (uncounted in the difference), then make ``calls`` calls."""
    from sqlalchemy import create_engine

    from benchmarks.raw import Sqlite3Storage
    from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage

    url = f"sqlite:///{path}"
    sessions = _sessions()
    with SQLAlchemySessionStorage(url) as setup:
        setup.create_table()
        for session in sessions:
            setup.store_session(session)
    storage: object
    if side == "raw":
        storage = Sqlite3Storage(path, TABLE)
    elif side == "url":
        storage = SQLAlchemySessionStorage(url)
    else:
        storage = SQLAlchemySessionStorage(create_engine(url))
    call = getattr(storage, operation)
    arguments = [s.id for s in sessions] if operation == "load_session" else sessions
    call(arguments[0])  # warm: the table check, the first connection, compiled statements
    for index in range(calls):
        call(arguments[index % SESSIONS])
    storage.close()  # type: ignore[attr-defined]


def instructions(side: str, operation: str, calls: int) -> int:
    """Instructions the child executes in all, under callgrind."""
    with tempfile.TemporaryDirectory() as directory:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={directory}/callgrind.out",
                sys.executable,
                "-m",
                "benchmarks.instructions",
                "--child",
                side,
                operation,
                str(calls),
                f"{directory}/sessions.sqlite3",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dicts in every run
        )
    collected = re.search(r"Collected : (\d+)", done.stderr)
    if collected is None:
        raise RuntimeError(f"callgrind reported no count: {done.stderr[-2000:]}")
    return int(collected.group(1))


def report(calls: int) -> str:
    lines = [
        f"Instructions per call, sqlite3, {calls} calls less none (callgrind):",
        "",
        "| per call | " + " | ".join(SIDES) + " | URL ÷ raw | app engine ÷ raw |",
        "|---|" + "---:|" * (len(SIDES) + 2),
    ]
    for operation in OPERATIONS:
        counts = [
            (instructions(side, operation, calls) - instructions(side, operation, 0)) / calls
            for side in SIDES
        ]
        raw = counts[0]
        cells = [f"{count:,.0f}" for count in counts]
        ratios = [f"{raw / count:.2f}" for count in counts[1:]]  # as ops/s ratios read
        lines.append(f"| `{operation}` | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--child", nargs=4, metavar=("SIDE", "OPERATION", "CALLS", "PATH"))
    options = parser.parse_args()
    if options.child:
        side, operation, calls, path = options.child
        child(side, operation, int(calls), path)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is missing (Debian's valgrind)")
    text = report(options.calls)
    print(text, end="")
    if options.output:
        options.output.write_text(text)


if __name__ == "__main__":
    main()
