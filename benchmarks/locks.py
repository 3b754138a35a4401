"""What a session lock costs: acquire + release, in µs and in round trips, per target.

    .venv/bin/python -m benchmarks.locks [--locks 2000] [--rounds 5] [--targets a,b]

Two mechanisms side by side, on the same engine, interleaved round by round:

- **lease**: ``storage.lock_session(id)``, entered and left at once (the lock this package
  takes: a lease row in ``<table>_locks`` on PostgreSQL and MySQL/MariaDB, ``flock`` on
  SQLite);
- **before**: the lock it took before, the same way (a connection of the pool, switched to
  autocommit, ``pg_try_advisory_lock`` / ``GET_LOCK(name, 0)``, then the release and the
  connection's return). Through PgBouncer it is timed for comparison only: it does not
  exclude there (``tests/storage/test_poolers.py``).

Round trips are counted at the wire (``tests/roundtrips.py``'s relay) for one acquire and
release after warm-up. The report goes to stdout and ``benchmarks/results/locks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: benchmarks/locks.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, MetaData, make_url, text

from benchmarks.targets import TARGETS, Servers, Target, pgbouncer
from shopify_sessions.sqlalchemy import (
    AsyncSQLAlchemySessionStorage,
    SQLAlchemySessionStorage,
    session_table,
)

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "locks.md"
LOCK_ID = "offline_bench.myshopify.com"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locks", type=int, default=2000, help="locks per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--targets", default=",".join(t.name for t in TARGETS))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    known = {t.name: t for t in TARGETS}
    args.target_list = [known[name.strip()] for name in args.targets.split(",") if name.strip()]
    return args


def previous_lock(
    engine: Engine, dialect: str, *, pooled: bool
) -> Callable[[], AbstractContextManager[None]]:
    """The lock this package took before the lease, on ``engine`` (through a pooler its
    take may fail, a lock left on another server connection: timed all the same)."""
    key = uuid.uuid4().int >> 65
    take, give = {
        "postgresql": (f"SELECT pg_try_advisory_lock({key})", f"SELECT pg_advisory_unlock({key})"),
        "mysql": (f"SELECT GET_LOCK('bench_{key}', 0)", f"SELECT RELEASE_LOCK('bench_{key}')"),
    }[dialect]

    @contextmanager
    def hold() -> Iterator[None]:
        connection = engine.connect()
        connection.execution_options(isolation_level="AUTOCOMMIT")
        taken = connection.execute(text(take)).scalar()
        assert taken or pooled
        try:
            yield
        finally:
            connection.execute(text(give))
            connection.close()

    return hold


def sync_engine_of(storage: Any) -> Engine:
    engine = storage.engine
    return getattr(engine, "sync_engine", engine)


def timed_sync(hold: Callable[[], AbstractContextManager[None]], count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with hold():
            pass
        times.append(time.perf_counter() - started)
    return times


async def timed_async(storage: AsyncSQLAlchemySessionStorage, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async with storage.lock_session(LOCK_ID):
            pass
        times.append(time.perf_counter() - started)
    return times


async def measure(
    target: Target, servers: Servers, table: str, args: argparse.Namespace
) -> dict[str, Any]:
    url = servers.url(target.dialect, target.driver, pooler=target.pooler)
    declared = session_table(MetaData(), table)
    sync_url = servers.url(target.dialect, _sync_driver(target), pooler=target.pooler)
    owner = SQLAlchemySessionStorage(sync_url, table=declared)
    owner.create_table()
    lease: list[float] = []
    before: list[float] = []
    try:
        storage: Any = (
            AsyncSQLAlchemySessionStorage(url, table=declared)
            if target.is_async
            else SQLAlchemySessionStorage(url, table=declared)
        )
        old = None
        if target.dialect != "sqlite":
            old = previous_lock(sync_engine_of(owner), target.dialect, pooled=target.pooler)
        for _ in range(args.rounds):
            if target.is_async:
                lease += await timed_async(storage, args.locks)
            else:
                lease += timed_sync(lambda: storage.lock_session(LOCK_ID), args.locks)
            if old is not None:
                before += timed_sync(old, args.locks)
        trips = round_trips(target, servers, table)
        closed = storage.close()
        if closed is not None:
            await closed
    finally:
        with sync_engine_of(owner).begin() as connection:
            for name in (table, f"{table}_locks"):
                connection.execute(text(f"DROP TABLE IF EXISTS {_quote(target, name)}"))
        owner.close()
    return {"lease": lease, "before": before, "trips": trips}


def round_trips(target: Target, servers: Servers, table: str) -> str:
    """Round trips of one acquire + release through the library, counted at the wire."""
    if target.dialect == "sqlite":
        return "0 (flock)"
    sys.path.insert(0, str(ROOT / "tests"))
    from roundtrips import WireCounter

    base = make_url(servers.url(target.dialect, target.driver, pooler=target.pooler))
    counter = WireCounter(target.dialect, base.host or "127.0.0.1", base.port or 5432)
    storage = SQLAlchemySessionStorage(
        counter.url(servers.url(target.dialect, _sync_driver(target), pooler=target.pooler)),
        table=session_table(MetaData(), table),
    )
    try:
        with storage.lock_session(LOCK_ID):  # warm: the first use looks at the server
            pass
        counter.take()
        with storage.lock_session(LOCK_ID):
            taken = len(counter.take())
        given = len(counter.take())
    finally:
        storage.close()
        counter.close()
    return f"{taken} + {given}"


def _sync_driver(target: Target) -> str:
    return {"postgresql": "psycopg", "mysql": "pymysql", "sqlite": "pysqlite"}[target.dialect]


def _quote(target: Target, name: str) -> str:
    return f"`{name}`" if target.dialect == "mysql" else f'"{name}"'


def _us(times: list[float]) -> str:
    if not times:
        return "n/a"
    ordered = sorted(times)
    median = statistics.median(ordered) * 1e6
    p90 = ordered[int(len(ordered) * 0.9)] * 1e6
    return f"{median:,.0f} (p90 {p90:,.0f})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    servers = Servers(str(Path(tempfile.mkdtemp(prefix="locks-")) / "locks.sqlite3"))
    rows = []
    with pgbouncer(servers, args.target_list) as absent:
        if absent is not None:
            print(f"PgBouncer targets skipped: {absent}", file=sys.stderr)
            args.target_list = [t for t in args.target_list if not t.pooler]
        for target in args.target_list:
            table = f"locks_{uuid.uuid4().hex[:8]}"
            result = asyncio.run(measure(target, servers, table, args))
            ratio = (
                f"{statistics.median(result['lease']) / statistics.median(result['before']):.2f}"
                if result["before"]
                else "n/a"
            )
            before = "flock (unchanged)" if target.dialect == "sqlite" else _us(result["before"])
            if target.pooler:
                before += ", not exclusive"
            lease, trips = _us(result["lease"]), result["trips"]
            rows.append(f"| {target.name} | {lease} | {before} | {ratio} | {trips} |")
            print(rows[-1], file=sys.stderr)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    lines = [
        "# Session lock: acquire + release",
        "",
        f"`python -m benchmarks.locks --locks {args.locks} --rounds {args.rounds}`, "
        f"{time.strftime('%Y-%m-%d')}; load average at the end {' '.join(load)}. "
        "Median µs per acquire + release (90th percentile), the lease beside the lock this "
        "package took before, on the same engine; round trips of one acquire + release, "
        "counted at the wire.",
        "",
        "| target | lease (µs) | before (µs) | lease / before | round trips (take + give back) |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    text_ = "\n".join(lines)
    print(text_)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text_, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
