"""Profile the library's hot path: ``load`` and ``store_update`` on sqlite3 and psycopg.

Run from the repository root::

    .venv/bin/python -m benchmarks.hotpath [--sessions 2000] [--top 15] [--targets ...]

For each target and operation it stores the dataset (untimed), then runs the operation
once per session under cProfile, and prints the top entries by cumulative time whose
code lives in ``shopify_sessions`` or ``sqlalchemy``, per operation (µs per call of the
storage method, calls per call). The same text goes to ``benchmarks/results/hotpath.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: benchmarks/hotpath.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.data import Dataset, generate
from benchmarks.phases import WARM_UP_ID
from benchmarks.targets import TARGETS, Admin, Servers, library_storage

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = "sqlite-sqlite3,postgresql-psycopg"
PACKAGES = ("shopify_sessions", "sqlalchemy")
#: Functions worth a line of their own: the round trips and the library's own mapping.
KEY_FUNCTIONS = (
    "do_ping",
    "do_begin",
    "do_execute",
    "do_commit",
    "do_rollback",
    "_checkout",
    "_compile_w_cache",
    "store_parameters",
    "session_from_row",
)


def _where(path: str, line: int, function: str) -> str:
    for package in PACKAGES:
        marker = f"/{package}/"
        if marker in path:
            return f"{package}/{path.split(marker, 1)[1]}:{line}({function})"
    return f"{path}:{line}({function})"


def top_entries(profile: cProfile.Profile, ops: int, top: int) -> list[str]:
    """Tables of library/SQLAlchemy functions (by cumulative time, key ones, by own time)."""
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = [
        (cumulative, total, calls, _where(path, line, function))
        for (path, line, function), (_, calls, total, cumulative, _) in stats.items()
        if any(f"/{package}/" in path for package in PACKAGES)
    ]
    rows.sort(reverse=True)
    key_rows = [row for row in rows if row[3].rsplit("(", 1)[1].rstrip(")") in KEY_FUNCTIONS]
    own_rows = sorted(rows, key=lambda row: row[1], reverse=True)
    return [
        f"Top {top} by cumulative time:",
        "",
        *_table(rows[:top], ops),
        "",
        "Round trips and mapping (cumulative):",
        "",
        *_table(key_rows, ops),
        "",
        f"Top {top} by own time:",
        "",
        *_table(own_rows[:top], ops),
    ]


def _table(rows: list[tuple[float, float, int, str]], ops: int) -> list[str]:
    lines = ["| cum µs/op | own µs/op | calls/op | function |", "|---:|---:|---:|---|"]
    for cumulative, total, calls, where in rows:
        lines.append(
            f"| {cumulative / ops * 1e6:.1f} | {total / ops * 1e6:.1f} "
            f"| {calls / ops:.2f} | `{where}` |"
        )
    return lines


def _profiled(call: Callable[[Any], Any], args: Sequence[Any]) -> tuple[float, cProfile.Profile]:
    """Mean µs per call without the profiler, and the profile of a second pass."""
    started = time.perf_counter()
    for arg in args:
        call(arg)
    plain_us = (time.perf_counter() - started) / len(args) * 1e6
    profile = cProfile.Profile()
    profile.enable()
    for arg in args:
        call(arg)
    profile.disable()
    return plain_us, profile


def profile_target(name: str, servers: Servers, data: Dataset, top: int) -> list[str]:
    target = next(t for t in TARGETS if t.name == name)
    if target.is_async:
        raise SystemExit(f"{name}: only sync targets are profiled")
    admin = Admin(target.dialect, servers)
    table = f"hotpath_{uuid.uuid4().hex[:8]}"
    admin.create_table(table)
    storage = library_storage(target, servers, table)
    lines = [f"## {name}", ""]
    try:
        storage.load_session(WARM_UP_ID)
        for session in data.sessions:
            storage.store_session(session)
        operations: list[tuple[str, Callable[[Any], Any], Sequence[Any]]] = [
            ("load", storage.load_session, data.ids),
            ("store_update", storage.store_session, data.updated),
        ]
        for operation, call, args in operations:
            plain_us, profile = _profiled(call, args)
            lines += [
                f"### {operation}: {plain_us:.0f} µs per call unprofiled, "
                f"{len(args)} calls profiled",
                "",
                *top_entries(profile, len(args), top),
                "",
            ]
    finally:
        storage.close()
        admin.drop_table(table)
        admin.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Profile load and store_update.")
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--targets", default=DEFAULT_TARGETS)
    parser.add_argument("--seed", type=int, default=2024)

    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/hotpath.md")
    args = parser.parse_args(argv)
    data = generate(args.sessions, 500, args.seed)
    workdir = tempfile.mkdtemp(prefix="shopify-sessions-hotpath-")
    options = None
    servers = Servers(str(Path(workdir) / "hotpath.sqlite3"), options)
    lines = [
        "# Hot path profile (cProfile, library only)",
        "",
        "Top functions in shopify_sessions and sqlalchemy by cumulative time; times are "
        "per storage call, measured under cProfile (which inflates them).",
        "",
    ]
    try:
        for name in (n.strip() for n in args.targets.split(",") if n.strip()):
            lines += profile_target(name, servers, data, args.top)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
