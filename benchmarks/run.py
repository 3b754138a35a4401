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
from benchmarks.node import NodePeer, NodePeers, node_missing
from benchmarks.phases import (
    REPORT_ORDER,
    RUN_ORDER,
    WARM_UP_ID,
    CheckFailed,
    FloorVerifier,
    PhaseResult,
    Verifier,
    run_phase,
    run_phase_async,
)
from benchmarks.report import (
    LoadAverages,
    Summary,
    header,
    plans_section,
    ratio_chart,
    readme_table,
    report_tables,
    summarise,
    update_readme,
)
from benchmarks.targets import (
    TARGETS,
    Admin,
    Servers,
    Target,
    core_storage,
    engine_storage,
    floor_storage,
    library_storage,
    pgbouncer,
    raw_async_storage,
    raw_sync_storage,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks/results/latest.md"
#: The floor holds one connection: it has no concurrent phase (nor has Core, whose rows
#: the batched loads of the storages would not be comparable with).
FLOOR_PHASES = tuple(phase for phase in RUN_ORDER if phase != "concurrent_load")


def runs(side: str, phase: str) -> bool:
    """Whether ``side`` runs ``phase`` (the floor and Core have no concurrent phase)."""
    return side not in ("floor", "core") or phase in FLOOR_PHASES


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
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--chart", type=Path, default=ROOT / "docs/benchmark-ratios.png")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="README whose summary table to regenerate (default: README.md when the report "
        "goes to benchmarks/results/latest.md)",
    )
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")
    parser.add_argument(
        "--no-node", action="store_true", help="skip the Node peers (Drizzle and Prisma)"
    )
    parser.add_argument(
        "--node-sqlite-wal",
        action="store_true",
        help="put the Node peers' SQLite file in WAL mode (default: better-sqlite3's own)",
    )
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

    def settle(self) -> None:
        self.admin.settle()

    def __str__(self) -> str:
        return self.table


def run_round(
    target: Target,
    servers: Servers,
    tables: dict[str, str],
    verifiers: dict[str, Verifier],
    first: int,
    data: Dataset,
    peers: dict[str, NodePeer],
) -> dict[str, dict[str, PhaseResult]]:
    """One round: every side and Node peer open at once, each phase run on one after the
    other.

    ``first`` picks who goes first in the first phase; the order then rotates from phase to
    phase, so no one always runs first, and the sides of a comparison run seconds apart.
    """
    if target.is_async:
        return asyncio.run(_run_round_async(target, servers, tables, verifiers, first, data, peers))
    storages: dict[str, Any] = {}
    try:
        for side in target.sides:
            storages[side] = _open_sync(side, target, servers, tables[side], data)
            # Untimed warm-up: the library checks its table, every side opens a connection.
            if storages[side].load_session(WARM_UP_ID) is not None:
                raise CheckFailed(f"{side} warm-up: an absent id was found")
        everyone = (*target.sides, *peers)
        out: dict[str, dict[str, PhaseResult]] = {who: {} for who in everyone}
        for index, phase in enumerate(RUN_ORDER):
            for who in _order(everyone, first + index):
                if who in peers:
                    out[who][phase] = peers[who].run_phase(phase)
                elif runs(who, phase):
                    out[who][phase] = run_phase(phase, storages[who], verifiers[who])
        return out
    finally:
        for storage in storages.values():
            storage.close()


def _open_sync(side: str, target: Target, servers: Servers, table: str, data: Dataset) -> Any:
    if side == "library":
        return library_storage(target, servers, table)
    if side == "engine":
        return engine_storage(target, servers, table)
    if side == "floor":
        return floor_storage(target, servers, table, data)
    if side == "core":
        return core_storage(target, servers, table, data)
    return raw_sync_storage(target, servers, table)


async def _open_async(
    side: str, target: Target, servers: Servers, table: str, data: Dataset
) -> Any:
    if side == "raw":
        return await raw_async_storage(target, servers, table)
    return _open_sync(side, target, servers, table, data)


async def _run_round_async(
    target: Target,
    servers: Servers,
    tables: dict[str, str],
    verifiers: dict[str, Verifier],
    first: int,
    data: Dataset,
    peers: dict[str, NodePeer],
) -> dict[str, dict[str, PhaseResult]]:
    storages: dict[str, Any] = {}
    try:
        for side in target.sides:
            storages[side] = await _open_async(side, target, servers, tables[side], data)
            if await storages[side].load_session(WARM_UP_ID) is not None:
                raise CheckFailed(f"{side} warm-up: an absent id was found")
        everyone = (*target.sides, *peers)
        out: dict[str, dict[str, PhaseResult]] = {who: {} for who in everyone}
        for index, phase in enumerate(RUN_ORDER):
            for who in _order(everyone, first + index):
                if who in peers:  # Node runs the phase while this loop waits for it
                    out[who][phase] = peers[who].run_phase(phase)
                elif runs(who, phase):
                    out[who][phase] = await run_phase_async(phase, storages[who], verifiers[who])
        return out
    finally:
        for storage in storages.values():
            await storage.close()


def _order(everyone: tuple[str, ...], turn: int) -> tuple[str, ...]:
    shift = turn % len(everyone)
    return everyone[shift:] + everyone[:shift]


def compare_dumps(target: Target, verifiers: dict[str, Verifier]) -> None:
    """Every other side must have written exactly the library's rows."""
    for side in target.sides[1:]:
        _compare_dumps(target, verifiers[target.sides[0]].dumps, verifiers[side].dumps)


def _compare_dumps(
    target: Target,
    library: dict[str, list[tuple[Any, ...]]],
    raw: dict[str, list[tuple[Any, ...]]],
) -> None:
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
    """All targets, rounds, sides and Node peers of one run."""

    def __init__(self, args: argparse.Namespace, data: Dataset, servers: Servers) -> None:
        self.args = args
        self.data = data
        self.servers = servers
        self.run_id = f"bench_{uuid.uuid4().hex[:8]}"
        self.admins: dict[str, Admin] = {}
        self.scale_tables: dict[str, dict[str, str]] = {}
        self.plans: dict[str, dict[str, list[str]]] = {}
        #: (target, side or peer) -> one {phase: result} per round.
        self.results: dict[tuple[str, str], list[dict[str, PhaseResult]]] = {}
        self.node_absent: str | None = None
        self.node: NodePeers | None = None
        self.loads = LoadAverages()

    def admin(self, dialect: str) -> Admin:
        if dialect not in self.admins:
            self.admins[dialect] = Admin(dialect, self.servers)
        return self.admins[dialect]

    def open_node(self, workdir: Path) -> None:
        """Find out whether the Node peers can run (not in scale mode)."""
        if self.args.rows:
            self.node_absent = "scale mode"
        elif self.args.no_node:
            self.node_absent = "skipped (--no-node)"
        else:
            self.node_absent = node_missing()
        if self.node_absent is not None:
            progress(f"Node peers absent: {self.node_absent}")
            return
        self.node = NodePeers(
            self.servers, self.data, workdir, sqlite_wal=self.args.node_sqlite_wal
        )

    def scale_tables_of(self, target: Target) -> dict[str, str]:
        """The dialect's pre-filled tables of scale mode (one per side), made once."""
        dialect = target.dialect
        if dialect not in self.scale_tables:
            admin = self.admin(dialect)
            tables = {side: f"{self.run_id}_{dialect}_scale_{side}" for side in target.sides}
            self.scale_tables[dialect] = tables
            started = time.perf_counter()
            for table in tables.values():
                admin.create_table(table)
            first, *others = target.sides
            admin.prefill(tables[first], fill_sessions(self.args.rows, self.args.seed))
            for side in others:
                admin.copy_rows(tables[first], tables[side])
            progress(
                f"{dialect}: {self.args.rows:,} rows pre-filled ({len(tables)} tables) in "
                f"{time.perf_counter() - started:.1f} s"
            )
            shop = shop_name(0, FILL_SHOP_PREFIX)
            self.plans[dialect] = admin.explain(tables[first], shop, f"offline_{shop}")
            for query, plan in self.plans[dialect].items():
                print(f"EXPLAIN {dialect} {query}:\n  " + "\n  ".join(plan), flush=True)
        return self.scale_tables[dialect]

    def run_target(self, index: int, target: Target) -> None:
        admin = self.admin(target.dialect)
        scale = self.scale_tables_of(target) if self.args.rows else None
        for round_ in range(self.args.rounds):
            tables = scale or {
                side: f"{self.run_id}_{index}_{round_}_{side}" for side in target.sides
            }
            verifiers = {
                side: (FloorVerifier if side in ("floor", "core") else Verifier)(
                    self.data, TableChecks(admin, tables[side]), self.args.rows
                )
                for side in target.sides
            }
            started = time.perf_counter()
            peers: dict[str, NodePeer] = {}
            try:
                if scale is None:
                    for table in tables.values():
                        admin.create_table(table)
                if self.node is not None:
                    for peer in target.peers:
                        table = f"{self.run_id}_node_{peer}_{index}_{round_}"
                        peers[peer] = self.node.open(peer, target.dialect, table)
                first = round_ % (len(target.sides) + len(peers))
                results = run_round(
                    target, self.servers, tables, verifiers, first, self.data, peers
                )
            finally:
                for peer_side in peers.values():
                    peer_side.close()
                if scale is None:
                    for table in tables.values():
                        admin.drop_table(table)
            for who, phases in results.items():
                self.results.setdefault((target.name, who), []).append(phases)
            compare_dumps(target, verifiers)
            self.loads.sample()
            progress(
                f"{target.name} round {round_ + 1}/{self.args.rounds}: "
                f"{time.perf_counter() - started:.1f} s, load {self.loads.last()}"
            )

    def summaries(self) -> list[Summary]:
        out = []
        for target in self.args.target_list:
            everyone = (*target.sides, *(p for p in target.peers if self.node is not None))
            rounds = {who: self.results.get((target.name, who)) for who in everyone}
            if not all(rounds.values()):
                continue
            for phase in REPORT_ORDER:
                out.append(
                    summarise(
                        target.name,
                        phase,
                        {
                            who: [r[phase] for r in results if phase in r]
                            for who, results in rounds.items()
                            if results
                        },
                    )
                )
        return out

    def server_versions(self) -> dict[str, str]:
        names = {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL", "sqlite": "SQLite"}
        return {names[d]: admin.server_version() for d, admin in self.admins.items()}

    def sqlite_journals(self) -> str | None:
        """The journal modes of the SQLite files, Python's and the Node peers'."""
        if "sqlite" not in self.admins:
            return None
        python = self.admins["sqlite"].journal_mode()
        node = self.node.sqlite_journal() if self.node is not None else "no Node peers"
        return f"Python sides' file {python} (made by the storage), Node peers' file {node}"

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
        bench.open_node(Path(workdir))
        with pgbouncer(servers, args.target_list) as absent:
            if absent is not None:
                progress(f"PgBouncer targets skipped: {absent}")
                args.target_list = [t for t in args.target_list if not t.pooler]
            for index, target in enumerate(args.target_list):
                bench.run_target(index, target)
        versions = bench.server_versions()
        journals = bench.sqlite_journals()
    finally:
        bench.close()
        shutil.rmtree(workdir, ignore_errors=True)
    bench.loads.sample()
    summaries = bench.summaries()
    settings: dict[str, object] = {
        "sessions": args.sessions,
        "find shops": args.shops,
        "rounds": args.rounds,
        "pre-filled rows": args.rows,
        "seed": args.seed,
        "workers": 16,
        "library engine_options": options or "defaults",
    }
    if bench.node is not None:
        settings["Node peers"] = ", ".join(f"{k} {v}" for k, v in bench.node.versions.items())
    else:
        settings["Node peers"] = f"absent ({bench.node_absent})"
    lines = [
        *header(settings, versions, time.perf_counter() - started, bench.loads, journals),
        *report_tables(summaries),
        *plans_section(bench.plans),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    progress(f"wrote {args.output}")
    readme = args.readme
    if readme is None and args.output.resolve() == DEFAULT_OUTPUT.resolve():
        readme = ROOT / "README.md"
    if readme is not None and not args.no_readme and update_readme(readme, readme_table(summaries)):
        progress(f"wrote the summary table of {readme}")
    if not args.no_chart:
        ratio_chart(summaries, args.chart)
        progress(f"wrote {args.chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
