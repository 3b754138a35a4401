"""Where the time of a phase goes, side by side: py-spy samples grouped by layer.

    .venv/bin/python -m benchmarks.profile [--targets a,b] [--phases load,delete]
        [--sides library,raw] [--seconds 4] [--output benchmarks/results/profiles.md]

For each target, phase and side, a child process sets up a table (untimed), then runs
the phase over and over for ``--seconds`` while ``py-spy record --native --idle``
samples every thread, waiting included (py-spy pauses the process for each sample: the
rate is kept low, 250 a second, and the phase runs slower than unprofiled). Each sample
is put in the layer of the innermost frame that says where the time went:

- **waiting: I/O**: blocked in the kernel on a socket, the event loop's poll or a file
  (the server's time, the network's, the disk's); **waiting: other threads**: on a lock,
  an event or a condition; **waiting: the GIL**: for the interpreter lock;
- **SQLite (C)**: inside the SQLite library (the database's own work, in-process);
- **driver**, **SQLAlchemy**, **library** (shopify_sessions), **asyncio and threads**,
  **hand-written code** (the raw side, ``raw.py``), **Python** (the interpreter and
  the standard library), **harness**: Python code, or a C extension it calls, of that
  package.

µs per op = the layer's share x the phase's wall time per op (x the number of threads
for ``concurrent_load`` on threads, as every thread is sampled). On threads the
concurrent phase also gets a table of ops/s and CPU use as threads are added (no
profiler), and a profile of the thread holding the GIL only (``--gil``, sampled without
pausing). Needs py-spy (``pip install py-spy``, in the ``bench`` extra) and permission to
attach to a child (root, or ``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import raw
from benchmarks.data import Dataset, generate
from benchmarks.phases import WARM_UP_ID, WORKERS, delete_batches
from benchmarks.targets import (
    TARGETS,
    Admin,
    Servers,
    Target,
    engine_storage,
    library_storage,
    pgbouncer,
    raw_async_storage,
    raw_sync_storage,
)

ROOT = Path(__file__).resolve().parent.parent
PGBOUNCER_URL = "SHOPIFY_SESSIONS_BENCH_PGBOUNCER"
OUTPUT = ROOT / "benchmarks" / "results" / "profiles.md"
#: The thread counts of the scaling table (sync concurrent_load).
SCALING = (1, 2, 4, 8, 16)
PHASES = ("store_insert", "store_update", "load", "find", "delete", "concurrent_load")
LAYERS = (
    "waiting: I/O",
    "waiting: other threads",
    "waiting: the GIL",
    "SQLite (C)",
    "driver",
    "SQLAlchemy",
    "library",
    "asyncio and threads",
    "hand-written code",
    "Python",
    "harness",
)
DRIVERS = ("psycopg", "psycopg_c", "psycopg_binary", "asyncpg", "pymysql", "aiomysql", "aiosqlite")
DRIVERS += ("_sqlite3", "sqlite3")
#: Native frames that block in the kernel on I/O (a socket, the event loop's poll, a file).
IO_WAITS = re.compile(
    r"^(?:__)?(?:poll|ppoll|epoll_wait|select|pselect6?|recv\w*|read|__libc_read|send\w*|write|"
    r"fdatasync|fsync|fcntl64|accept4?|connect|__GI___\w+)\b"
)
#: Native frames of a thread blocked on a lock, an event or a condition.
LOCK_WAITS = re.compile(
    r"^(?:PyThread_acquire_lock_timed|pthread_cond_\w*wait\w*|sem_\w*wait\w*|futex\w*|"
    r"do_futex_wait\w*|nanosleep|clock_nanosleep)\b"
)
#: Python frames that stand for a blocked wait when no native frame says so.
PYTHON_WAITS = ("wait (psycopg/", "select (selectors.py", "_read_bytes (")
FRAME = re.compile(r"^(?P<name>.+?) \((?P<where>[^()]*)\)$")


# ------------------------------------------------------------------------ child


class Child:
    """The phase under the profiler: set up untimed, then run for ``seconds`` after "go"."""

    def __init__(self, target: Target, side: str, phase: str, data: Dataset) -> None:
        self.scaling = phase == "scaling"
        phase = "concurrent_load" if self.scaling else phase
        self.target, self.side, self.phase, self.data = target, side, phase, data
        self.servers = Servers(str(Path(tempfile.mkdtemp()) / "profile.sqlite3"))
        if PGBOUNCER_URL in os.environ:  # the parent's PgBouncer
            self.servers.pgbouncer = make_url(os.environ[PGBOUNCER_URL])
        self.admin = Admin(target.dialect, self.servers)
        self.table = f"profile_{uuid.uuid4().hex[:8]}"
        self.admin.create_table(self.table)
        self.upsert = raw.statements(target.dialect, self.table, self.admin.paramstyle).upsert

    def untimed_fill(self) -> None:
        self.admin.store_rows(self.table, self.data.sessions)

    def untimed_empty(self) -> None:
        self.admin.empty(self.table)

    def wait_for_go(self) -> None:
        print(json.dumps({"ready": os.getpid()}), flush=True)
        sys.stdin.readline()

    def report(self, ops: int, seconds: float, threads: int) -> None:
        """The timed part's counts (``threads``: how many threads ran it) and the end."""
        print(json.dumps({"ops": ops, "seconds": seconds, "workers": threads}), flush=True)
        os._exit(0)  # nothing after the timed part: no teardown in the samples

    def storage(self) -> Any:
        if self.side == "library":
            return library_storage(self.target, self.servers, self.table)
        if self.side == "engine":
            return engine_storage(self.target, self.servers, self.table)
        return raw_sync_storage(self.target, self.servers, self.table)

    def calls(self) -> tuple[str, list[Any]]:
        """The storage method of the phase and its arguments, for one pass."""
        return {
            "store_insert": ("store_session", self.data.sessions),
            "store_update": ("store_session", self.data.updated),
            "load": ("load_session", self.data.ids),
            "find": ("find_sessions_by_shop", self.data.shops),
            "concurrent_load": ("load_session", self.data.ids),
            "delete": ("delete_sessions", delete_batches(self.data.ids)),
        }[self.phase]

    def before_pass(self) -> None:
        if self.phase == "store_insert":
            self.untimed_empty()
        elif self.phase == "delete":
            self.untimed_fill()

    def run_sync(self, seconds: float) -> None:
        storage = self.storage()
        storage.load_session(WARM_UP_ID)
        if self.phase != "store_insert":
            self.untimed_fill()
        method, args = self.calls()
        call = getattr(storage, method)
        if self.scaling:
            print(json.dumps(scaling(call, args, seconds)), flush=True)
            os._exit(0)
        self.wait_for_go()
        if self.phase == "concurrent_load":
            ops, elapsed = timed_threads(call, args, seconds)
            self.report(ops, elapsed, WORKERS)
        ops, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.before_pass()
            ops += timed_phase(call, args)
        self.report(ops, time.perf_counter() - started, 1)

    async def run_async(self, seconds: float) -> None:
        if self.side == "raw":
            storage = await raw_async_storage(self.target, self.servers, self.table)
        else:
            storage = self.storage()
        await storage.load_session(WARM_UP_ID)
        if self.phase != "store_insert":
            self.untimed_fill()
        method, args = self.calls()
        call = getattr(storage, method)
        self.wait_for_go()
        ops, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.before_pass()
            if self.phase == "concurrent_load":
                ops += await timed_tasks(call, args)
            else:
                ops += await timed_phase_async(call, args)
        self.report(ops, time.perf_counter() - started, 1)  # tasks: one thread


def timed_phase(call: Callable[[Any], Any], args: list[Any]) -> int:
    for arg in args:
        call(arg)
    return len(args)


async def timed_phase_async(call: Callable[[Any], Any], args: list[Any]) -> int:
    for arg in args:
        await call(arg)
    return len(args)


async def timed_tasks(call: Callable[[Any], Any], args: list[Any]) -> int:
    async def timed_worker(part: list[Any]) -> None:
        for arg in part:
            await call(arg)

    await asyncio.gather(*(timed_worker(args[k::WORKERS]) for k in range(WORKERS)))
    return len(args)


def timed_threads(
    call: Callable[[Any], Any], args: list[Any], seconds: float, workers: int = WORKERS
) -> tuple[int, float]:
    done = [0] * workers
    started = time.perf_counter()

    def timed_worker(k: int) -> None:
        call(WARM_UP_ID)
        part = args[k::workers]
        while time.perf_counter() - started < seconds:
            for arg in part:
                call(arg)
            done[k] += len(part)

    threads = [threading.Thread(target=timed_worker, args=(k,)) for k in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - started


def scaling(call: Callable[[Any], Any], args: list[Any], seconds: float) -> list[dict[str, float]]:
    """ops/s and the process's CPU use (cores) with more and more threads, no profiler."""
    rows = []
    for workers in SCALING:
        cpu = time.process_time()
        ops, elapsed = timed_threads(call, args, seconds, workers)
        rows.append(
            {
                "threads": workers,
                "ops": ops / elapsed,
                "cores": (time.process_time() - cpu) / elapsed,
            }
        )
    return rows


def child_main(target_name: str, side: str, phase: str, seconds: float, sessions: int) -> None:
    target = next(t for t in TARGETS if t.name == target_name)
    child = Child(target, side, phase, generate(sessions, max(1, sessions // 4), 2024))
    if target.is_async:
        asyncio.run(child.run_async(seconds))
    else:
        child.run_sync(seconds)


# ----------------------------------------------------------------------- parent


def _function(frame: str) -> str:
    """``Class.method (file:line)`` -> ``method``."""
    return frame.split(" (", 1)[0].rsplit(".", 1)[-1]


def layer_of(thread: str, stack: list[str]) -> str | None:
    """The layer of one sampled stack (root first) of ``thread``, or None for a sample
    outside the timed part: before "go", an untimed refill, another thread than the
    workers, or the main thread while it waits for the worker threads."""
    functions = [_function(frame) for frame in stack]
    if not stack or any(
        f in ("wait_for_go", "report") or f.startswith("untimed_") for f in functions
    ):
        return None
    joining = "timed_threads" in functions or not thread.endswith("MainThread")
    if "timed_worker" not in functions and joining:
        return None
    native: list[tuple[str, str]] = []  # the native frames under the innermost Python one
    for frame in reversed(stack):
        match = FRAME.match(frame)
        name, where = (match["name"], match["where"]) if match else (frame, "")
        if ".py:" not in where:
            native.append((name, where))
            continue
        if any(n == "take_gil" for n, _ in native):
            return "waiting: the GIL"
        if any("libsqlite3" in w for _, w in native):
            return "SQLite (C)"
        if any(IO_WAITS.match(n) for n, _ in native):
            return "waiting: I/O"
        if any(LOCK_WAITS.match(n) for n, _ in native):
            return "waiting: other threads"
        native = []
        if any(frame.startswith(w) for w in PYTHON_WAITS):
            return "waiting: I/O"
        package = where.split("/", 1)[0].split(".", 1)[0]
        if package in DRIVERS or where.startswith(("psycopg", "asyncpg", "_sqlite3")):
            return "driver"
        if package == "sqlalchemy" or "sqlalchemy" in where:
            return "SQLAlchemy"
        if package == "shopify_sessions":
            return "library"
        if package in ("asyncio", "selectors", "threading", "queue", "concurrent", "uvloop"):
            return "asyncio and threads"
        if where.startswith("benchmarks/raw.py"):
            return "hand-written code"
        if package in ("benchmarks", "profile"):
            return "harness"
        if where.endswith(".py") or ".py:" in where:
            return "Python"
    return "Python"


def pgbouncer_env(servers: Servers) -> dict[str, str]:
    if servers.pgbouncer is None:
        return {}
    return {PGBOUNCER_URL: servers.pgbouncer.render_as_string(hide_password=False)}


def profile_one(
    target: Target,
    side: str,
    phase: str,
    args: argparse.Namespace,
    servers: Servers,
    *,
    gil: bool,
) -> dict[str, Any]:
    """Run one child under py-spy: layer shares, leaf functions, and the child's counts."""
    with tempfile.TemporaryDirectory() as workdir:
        samples = Path(workdir) / "samples.txt"
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.profile",
                "--child",
                target.name,
                side,
                phase,
                str(args.seconds),
                str(args.sessions),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **pgbouncer_env(servers)},
        )
        assert child.stdin is not None and child.stdout is not None
        ready = json.loads(child.stdout.readline())
        spy = subprocess.Popen(
            [
                args.py_spy,
                "record",
                "--pid",
                str(ready["ready"]),
                "--rate",
                str(args.rate),
                "--format",
                "raw",
                "--output",
                str(samples),
                *(["--nonblocking"] if gil else ["--native"]),
                "--duration",
                str(int(args.seconds) + 30),
                "--threads",
                *(["--gil"] if gil else ["--idle"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # py-spy attached and sampling
        child.stdin.write("go\n")
        child.stdin.flush()
        counts = json.loads(child.stdout.readline())
        child.wait()
        _, errors = spy.communicate(timeout=120)
        if not samples.exists():
            raise RuntimeError(f"py-spy recorded nothing: {errors[-2000:]}")
        layers: Counter[str] = Counter()
        leaves: Counter[str] = Counter()
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            kind = "gil" if gil else "idle"
            shutil.copy(samples, args.keep / f"{target.name}-{phase}-{side}-{kind}.txt")
        for line in samples.read_text(encoding="utf-8").splitlines():
            stack_text, _, count = line.rpartition(" ")
            thread, *stack = stack_text.split(";")  # the first item names the thread
            layer = layer_of(thread, stack)
            if layer is None:
                continue
            layers[layer] += int(count)
            python = [f for f in stack if ".py:" in f]
            leaves[f"{layer}: {python[-1] if python else stack[-1]}"] += int(count)
    return {"layers": layers, "leaves": leaves, **counts}


def scaling_table(
    target: Target, side: str, args: argparse.Namespace, servers: Servers
) -> list[str]:
    """The scaling child's answer as a table."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.profile",
            "--child",
            target.name,
            side,
            "scaling",
            str(args.seconds / 2),
            str(args.sessions),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **pgbouncer_env(servers)},
    )
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [
        "Without the profiler: ops/s and the process's CPU time per second of wall time "
        "(cores busy) as threads are added.",
        "",
        "| threads | ops/s | cores busy | CPU µs per op |",
        "|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['threads']} | {row['ops']:,.0f} | {row['cores']:.2f} "
            f"| {row['cores'] / row['ops'] * 1e6:,.0f} |"
        )
    return [*lines, ""]


def describe(result: dict[str, Any], top: int, rate: int, gil: bool) -> list[str]:
    """A profile as Markdown: the layers' shares and µs per op, and the top frames."""
    total = sum(result["layers"].values()) or 1
    per_op_us = result["seconds"] / result["ops"] * 1e6
    if gil:  # sampled without pausing the process: shares only
        budget = None
        summary = "only the thread holding the GIL sampled (shares of the GIL's busy time)"
    else:  # every thread sampled, waiting included
        budget = per_op_us * result["workers"]
        summary = f"{result['workers']} thread(s) sampled, waiting included"
    lines = [
        f"{result['ops']:,} ops in {result['seconds']:.1f} s "
        f"({result['ops'] / result['seconds']:,.0f} ops/s, {per_op_us:,.0f} µs of wall time "
        f"per op); {total:,} samples; {summary}.",
        "",
        "| layer | share | µs per op |",
        "|---|---:|---:|",
    ]
    for layer in LAYERS:
        share = result["layers"].get(layer, 0) / total
        if share:
            per_op = "—" if budget is None else f"{share * budget:,.1f}"
            lines.append(f"| {layer} | {share:.0%} | {per_op} |")
    lines += ["", f"Top {top} innermost Python frames:", ""]
    for leaf, count in result["leaves"].most_common(top):
        lines.append(f"- {count / total:.0%} `{leaf}`")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _, target, side, phase, seconds, sessions = argv
        child_main(target, side, phase, float(seconds), int(sessions))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--targets", default="postgresql-asyncpg,mariadb-aiomysql,sqlite-sqlite3")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--sides", default="library,raw")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=250)
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw samples in this folder")
    parser.add_argument(
        "--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    )
    args = parser.parse_args(argv)
    known = {t.name: t for t in TARGETS}
    targets = [known[n] for n in args.targets.split(",") if n]
    lines = [
        "# Where the time goes: py-spy profiles of the benchmark's phases",
        "",
        f"`python -m benchmarks.profile --targets {args.targets} --phases {args.phases} "
        f"--sides {args.sides} --seconds {args.seconds:g}`, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, "
        f"load average at the start {' '.join(f'{v:.2f}' for v in os.getloadavg())}. "
        "The layers are explained in `benchmarks/profile.py`.",
        "",
    ]
    servers = Servers("")
    with pgbouncer(servers, targets) as absent:
        if absent is not None:
            targets = [t for t in targets if not t.pooler]
        for target in targets:
            for phase in args.phases.split(","):
                lines += [f"## {target.name}: {phase}", ""]
                for side in args.sides.split(","):
                    result = profile_one(target, side, phase, args, servers, gil=False)
                    lines += [f"### {side}", "", *describe(result, args.top, args.rate, gil=False)]
                    if phase == "concurrent_load" and not target.is_async:
                        lines += [
                            f"### {side}, threads",
                            "",
                            *scaling_table(target, side, args, servers),
                        ]
                        held = profile_one(target, side, phase, args, servers, gil=True)
                        lines += [
                            f"### {side}, GIL holder only",
                            "",
                            *describe(held, args.top, args.rate, gil=True),
                        ]
                    print(f"{target.name} {phase} {side}: done", file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
