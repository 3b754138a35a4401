"""Benchmark shopify-sessions against hand-written raw-driver code.

Run from the repository root::

    .venv/bin/python -m benchmarks.run [--sessions 2000] [--rounds 3] [--targets a,b]
    .venv/bin/python -m benchmarks.run --rows 1000000      # scale mode

See benchmarks/README.md for what is measured and how to read the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.data import FILL_SHOP_PREFIX, Dataset, fill_sessions, generate, shop_name
from benchmarks.phases import (
    REPORT_ORDER,
    RUN_ORDER,
    WARM_UP_ID,
    CheckFailed,
    PhaseResult,
    Verifier,
    run_phase,
    run_phase_async,
)
from benchmarks.report import (
    Summary,
    header,
    markdown_table,
    plans_section,
    ratio_chart,
    summarise,
)
from benchmarks.targets import (
    TARGETS,
    Admin,
    Servers,
    Target,
    library_storage,
    raw_async_storage,
    raw_sync_storage,
)

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("library", "raw")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=2000, help="sessions per run (N)")
    parser.add_argument("--shops", type=int, default=500, help="shops queried by find")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target and side")
    parser.add_argument(
        "--targets",
        default=",".join(t.name for t in TARGETS),
        help="comma-separated subset of: " + ", ".join(t.name for t in TARGETS),
    )
    parser.add_argument(
        "--rows", type=int, default=0, help="scale mode: pre-fill the table with this many rows"
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--pool-size",
        type=int,
        default=16,
        help="connections in the library's pool (default 16: as many as the raw side's workers)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/latest.md")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs/benchmark-ratios.png")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    args = parser.parse_args(argv)
    known = {t.name: t for t in TARGETS}
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"unknown targets {unknown}; choose from {', '.join(known)}")
    args.target_list = [known[n] for n in names]
    return args


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class TableChecks:
    """The Verifier's view of one table, through the admin connection."""

    def __init__(self, admin: Admin, table: str) -> None:
        self.admin = admin
        self.table = table

    def count(self) -> int:
        return self.admin.count(self.table)

    def dump(self) -> list[tuple[Any, ...]]:
        return self.admin.dump(self.table)


def run_round(
    target: Target,
    servers: Servers,
    tables: dict[str, str],
    verifiers: dict[str, Verifier],
    first: int,
) -> dict[str, dict[str, PhaseResult]]:
    """One round: both sides open at once, each phase run on one side then the other.

    ``first`` (0 or 1) picks the side that goes first in the first phase; the order then
    alternates from phase to phase, so neither side always runs first.
    """
    if target.is_async:
        return asyncio.run(_run_round_async(target, servers, tables, verifiers, first))
    storages: dict[str, Any] = {}
    try:
        for side in SIDES:
            if side == "library":
                storages[side] = library_storage(target, servers, tables[side])
            else:
                storages[side] = raw_sync_storage(target, servers, tables[side])
            # Untimed warm-up: the library checks its table, both sides open a connection.
            if storages[side].load_session(WARM_UP_ID) is not None:
                raise CheckFailed("warm-up: an absent id was found")
        out: dict[str, dict[str, PhaseResult]] = {side: {} for side in SIDES}
        for index, phase in enumerate(RUN_ORDER):
            for side in _order(first + index):
                out[side][phase] = run_phase(phase, storages[side], verifiers[side])
        return out
    finally:
        for storage in storages.values():
            storage.close()


async def _run_round_async(
    target: Target,
    servers: Servers,
    tables: dict[str, str],
    verifiers: dict[str, Verifier],
    first: int,
) -> dict[str, dict[str, PhaseResult]]:
    storages: dict[str, Any] = {}
    try:
        for side in SIDES:
            if side == "library":
                storages[side] = library_storage(target, servers, tables[side])
            else:
                storages[side] = await raw_async_storage(target, servers, tables[side])
            if await storages[side].load_session(WARM_UP_ID) is not None:
                raise CheckFailed("warm-up: an absent id was found")
        out: dict[str, dict[str, PhaseResult]] = {side: {} for side in SIDES}
        for index, phase in enumerate(RUN_ORDER):
            for side in _order(first + index):
                out[side][phase] = await run_phase_async(phase, storages[side], verifiers[side])
        return out
    finally:
        for storage in storages.values():
            await storage.close()


def _order(turn: int) -> tuple[str, ...]:
    return SIDES if turn % 2 == 0 else SIDES[::-1]


def compare_dumps(target: Target, verifiers: dict[str, Verifier]) -> None:
    """The raw side must have written exactly the library's rows."""
    library, raw = verifiers["library"].dumps, verifiers["raw"].dumps
    for phase, lib_rows in library.items():
        raw_rows = raw[phase]
        if lib_rows == raw_rows:
            continue
        for lib_row, raw_row in zip(lib_rows, raw_rows, strict=False):
            if lib_row != raw_row:
                pairs = enumerate(zip(lib_row, raw_row, strict=True))
                differ = [i for i, (a, b) in pairs if a != b]
                raise CheckFailed(
                    f"{target.name} {phase}: raw row {raw_row[0]!r} differs from the library's "
                    f"in columns {differ}: {[lib_row[i] for i in differ]!r} vs "
                    f"{[raw_row[i] for i in differ]!r}"
                )
        raise CheckFailed(f"{target.name} {phase}: {len(lib_rows)} vs {len(raw_rows)} rows")


class Benchmark:
    """All targets, rounds and sides of one run."""

    def __init__(self, args: argparse.Namespace, data: Dataset, servers: Servers) -> None:
        self.args = args
        self.data = data
        self.servers = servers
        self.run_id = f"bench_{uuid.uuid4().hex[:8]}"
        self.admins: dict[str, Admin] = {}
        self.scale_tables: dict[str, dict[str, str]] = {}
        self.plans: dict[str, dict[str, list[str]]] = {}
        self.results: dict[tuple[str, str], list[dict[str, PhaseResult]]] = {}

    def admin(self, dialect: str) -> Admin:
        if dialect not in self.admins:
            self.admins[dialect] = Admin(dialect, self.servers)
        return self.admins[dialect]

    def scale_tables_of(self, dialect: str) -> dict[str, str]:
        """The dialect's two pre-filled tables of scale mode (one per side), made once."""
        if dialect not in self.scale_tables:
            admin = self.admin(dialect)
            tables = {side: f"{self.run_id}_{dialect}_scale_{side}" for side in SIDES}
            self.scale_tables[dialect] = tables
            started = time.perf_counter()
            for table in tables.values():
                admin.create_table(table)
            admin.prefill(tables["library"], fill_sessions(self.args.rows, self.args.seed))
            admin.copy_rows(tables["library"], tables["raw"])
            progress(
                f"{dialect}: {self.args.rows:,} rows pre-filled (twice) in "
                f"{time.perf_counter() - started:.1f} s"
            )
            shop = shop_name(0, FILL_SHOP_PREFIX)
            self.plans[dialect] = admin.explain(tables["library"], shop, f"offline_{shop}")
            for query, plan in self.plans[dialect].items():
                print(f"EXPLAIN {dialect} {query}:\n  " + "\n  ".join(plan), flush=True)
        return self.scale_tables[dialect]

    def run_target(self, index: int, target: Target) -> None:
        admin = self.admin(target.dialect)
        scale = self.scale_tables_of(target.dialect) if self.args.rows else None
        for round_ in range(self.args.rounds):
            tables = scale or {side: f"{self.run_id}_{index}_{round_}_{side}" for side in SIDES}
            verifiers = {
                side: Verifier(self.data, TableChecks(admin, tables[side]), self.args.rows)
                for side in SIDES
            }
            started = time.perf_counter()
            try:
                if scale is None:
                    for table in tables.values():
                        admin.create_table(table)
                results = run_round(target, self.servers, tables, verifiers, round_ % 2)
            finally:
                if scale is None:
                    for table in tables.values():
                        admin.drop_table(table)
            for side in SIDES:
                self.results.setdefault((target.name, side), []).append(results[side])
            compare_dumps(target, verifiers)
            progress(
                f"{target.name} round {round_ + 1}/{self.args.rounds}: "
                f"{time.perf_counter() - started:.1f} s"
            )

    def summaries(self) -> list[Summary]:
        out = []
        for target in self.args.target_list:
            lib = self.results.get((target.name, "library"))
            raw = self.results.get((target.name, "raw"))
            if not lib or not raw:
                continue
            for phase in REPORT_ORDER:
                out.append(
                    summarise(target.name, phase, [r[phase] for r in lib], [r[phase] for r in raw])
                )
        return out

    def server_versions(self) -> dict[str, str]:
        names = {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL", "sqlite": "SQLite"}
        return {names[d]: admin.server_version() for d, admin in self.admins.items()}

    def close(self) -> None:
        for dialect, tables in self.scale_tables.items():
            for table in tables.values():
                self.admins[dialect].drop_table(table)
        for admin in self.admins.values():
            admin.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    data = generate(args.sessions, args.shops, args.seed)
    workdir = tempfile.mkdtemp(prefix="shopify-sessions-bench-")
    options = {"pool_size": args.pool_size, "max_overflow": 0}
    servers = Servers(str(Path(workdir) / "bench.sqlite3"), options)
    bench = Benchmark(args, data, servers)
    try:
        for index, target in enumerate(args.target_list):
            bench.run_target(index, target)
        versions = bench.server_versions()
    finally:
        bench.close()
        shutil.rmtree(workdir, ignore_errors=True)
    summaries = bench.summaries()
    settings = {
        "sessions": args.sessions,
        "find shops": args.shops,
        "rounds": args.rounds,
        "pre-filled rows": args.rows,
        "seed": args.seed,
        "workers": 16,
        "library engine_options": options or "defaults",
    }
    lines = [
        *header(settings, versions, time.perf_counter() - started),
        *markdown_table(summaries),
        *plans_section(bench.plans),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    progress(f"wrote {args.output}")
    if not args.no_chart:
        ratio_chart(summaries, args.chart)
        progress(f"wrote {args.chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
