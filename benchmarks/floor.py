"""SQLAlchemy's floor, statement by statement: what each way of running the library's
statements costs on one held connection, next to the driver's own cursor.

    .venv/bin/python -m benchmarks.floor [--calls 2000] [--rounds 3] [--targets a,b]

For each target, on one connection of the engine the storage builds, the library's
``select_by_id`` (a load), its upsert (a store) and a 100-id delete run as:

- **cursor**: the driver's own cursor on the same connection (no SQLAlchemy);
- **exec_driver_sql**: ``connection.exec_driver_sql(sql, parameters)`` with the statement
  compiled once beforehand (what ``delete_sessions`` runs now); engine events still fire;
- **execute**: ``connection.execute(statement, parameters)`` from SQLAlchemy's compiled
  cache (what the other operations run);
- **library**: the storage's own call (checkout, checks, encoding, the statement, the
  result mapped to a ``Session``, the connection returned).

Median µs per call over ``--rounds`` rounds, the ways interleaved round by round. The
report goes to stdout and ``benchmarks/results/floor.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.sql.compiler import SQLCompiler

from benchmarks.data import generate
from benchmarks.targets import TARGETS, Admin, Servers, Target, library_storage

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "floor.md"
WAYS = ("cursor", "exec_driver_sql", "execute", "library")
DEFAULT_TARGETS = ",".join(t.name for t in TARGETS if not t.pooler)


def compiled(statement: Any, dialect: Any, values: dict[str, Any]) -> tuple[str, Any]:
    """``statement`` as the driver's SQL and its parameters, as ``_driver_sql`` makes them."""
    sql = statement.compile(dialect=dialect)
    assert isinstance(sql, SQLCompiler)
    processors = sql._bind_processors
    processed = {k: processors[k](v) if k in processors else v for k, v in values.items()}
    order = sql.positiontup
    return sql.string, processed if order is None else tuple(processed[k] for k in order)


class Cases:
    """The three statements of one target, each ready to run every way."""

    def __init__(self, storage: Any, core: Any, data: Any) -> None:
        dialect = storage.engine.dialect
        session = data.sessions[0]
        self.load = (core.select_by_id, {"id": session.id})
        self.store = (core.upsert, core.store_parameters(data.updated[0]))
        ids = [f"absent-{n}" for n in range(100)]
        if core.dialect.name == "postgresql":  # SQLAlchemy's statement of the driver SQL
            self.delete = (core._delete_by_id_array[0], {"ids": ids})
        else:
            self.delete = (core.delete_by_ids(100), {f"i{n}": id for n, id in enumerate(ids)})
        self.driver = {
            name: compiled(statement, dialect, values)
            for name, (statement, values) in (("load", self.load), ("store", self.store))
        }
        self.driver["delete"] = core.ids_deletes(ids)[0]
        self.session_id = session.id
        self.ids = ids
        self.updated = data.updated[0]


def _median_us(call: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1000


async def _median_us_async(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        await call()
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1000


def measure_sync(
    storage: Any, cases: Cases, calls: int, rounds: int
) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    with storage.engine.connect() as connection:
        dbapi = connection.connection.driver_connection

        def cursor_call(sql: str, parameters: Any, fetch: bool) -> Callable[[], Any]:
            def run() -> None:
                cursor = dbapi.cursor()
                cursor.execute(sql, parameters)
                if fetch:
                    cursor.fetchone()
                cursor.close()

            return run

        for _ in range(rounds):
            for name in ("load", "store", "delete"):
                sql, parameters = cases.driver[name]
                statement, values = getattr(cases, name)
                fetch = name == "load"
                ways: dict[str, Callable[[], Any]] = {
                    "cursor": cursor_call(sql, parameters, fetch),
                    "exec_driver_sql": (
                        lambda s=sql, p=parameters, f=fetch: (
                            connection.exec_driver_sql(s, p).first()
                            if f
                            else connection.exec_driver_sql(s, p)
                        )
                    ),
                    "library": {
                        "load": lambda: storage.load_session(cases.session_id),
                        "store": lambda: storage.store_session(cases.updated),
                        "delete": lambda: storage.delete_sessions(cases.ids),
                    }[name],
                }
                ways["execute"] = lambda s=statement, v=values, f=fetch: (
                    connection.execute(s, v).first() if f else connection.execute(s, v)
                )
                for way, call in ways.items():
                    out.setdefault((name, way), []).append(_median_us(call, calls))
    return out


async def measure_async(
    storage: Any, cases: Cases, calls: int, rounds: int
) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    async with storage.engine.connect() as connection:
        for _ in range(rounds):
            for name in ("load", "store", "delete"):
                sql, parameters = cases.driver[name]
                statement, values = getattr(cases, name)
                fetch = name == "load"

                async def driver_sql(s: str = sql, p: Any = parameters, f: bool = fetch) -> None:
                    result = await connection.exec_driver_sql(s, p)
                    if f:
                        result.first()

                async def execute(s: Any = statement, v: Any = values, f: bool = fetch) -> None:
                    result = await connection.execute(s, v)
                    if f:
                        result.first()

                library = {
                    "load": lambda: storage.load_session(cases.session_id),
                    "store": lambda: storage.store_session(cases.updated),
                    "delete": lambda: storage.delete_sessions(cases.ids),
                }[name]
                ways: dict[str, Callable[[], Awaitable[Any]]] = {
                    "exec_driver_sql": driver_sql,
                    "library": library,
                }
                ways["execute"] = execute
                for way, call in ways.items():
                    out.setdefault((name, way), []).append(await _median_us_async(call, calls))
    return out


def measure(
    target: Target, servers: Servers, calls: int, rounds: int
) -> dict[tuple[str, str], list[float]]:
    admin = Admin(target.dialect, servers)
    table = f"floor_{uuid.uuid4().hex[:8]}"
    admin.create_table(table)
    data = generate(50, 10, 2024)
    admin.store_rows(table, data.sessions)
    try:
        storage = library_storage(target, servers, table)
        if target.is_async:

            async def run() -> dict[tuple[str, str], list[float]]:
                await storage.check_table()
                cases = Cases(storage, storage._core, data)
                try:
                    return await measure_async(storage, cases, calls, rounds)
                finally:
                    await storage.close()

            return asyncio.run(run())
        storage.check_table()
        try:
            return measure_sync(storage, Cases(storage, storage._core, data), calls, rounds)
        finally:
            storage.close()
    finally:
        admin.drop_table(table)
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", default=DEFAULT_TARGETS)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    known = {t.name: t for t in TARGETS}
    servers = Servers(str(Path(tempfile.mkdtemp()) / "floor.sqlite3"))
    before = os.getloadavg()
    lines = [
        "# SQLAlchemy's floor, statement by statement",
        "",
        f"`python -m benchmarks.floor --calls {args.calls} --rounds {args.rounds}`, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}; load average before "
        f"{' '.join(f'{v:.2f}' for v in before)}. Median µs per call on one held connection of "
        "the engine the storage builds (the library's own call checks out a connection of its "
        "own); the median of the rounds' medians. `cursor`: the driver's cursor; "
        "`exec_driver_sql`: the statement compiled once, run by SQLAlchemy as driver SQL; "
        "`execute`: SQLAlchemy's execute from its compiled cache. The delete removes 100 "
        "absent ids (no rows: the statement's cost, not the server's writes). Asyncio "
        "drivers have no cursor column: their cursors are SQLAlchemy's adapters.",
        "",
        "| target | statement | cursor | exec_driver_sql | execute | library |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name in args.targets.split(","):
        target = known[name]
        results = measure(target, servers, args.calls, args.rounds)
        for statement in ("load", "store", "delete"):
            cells = []
            for way in WAYS:
                values = results.get((statement, way))
                cells.append("—" if not values else f"{statistics.median(values):,.0f}")
            lines.append(f"| {name} | {statement} | " + " | ".join(cells) + " |")
        print(f"{name}: done", file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
