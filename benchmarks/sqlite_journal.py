"""What a SQLite write costs under each journal mode and sync level: µs and fsyncs.

    .venv/bin/python -m benchmarks.sqlite_journal [--writes 2000] [--rounds 3]

Each configuration runs in a child process of its own, which stores ``--writes`` sessions
into a new database file (the library's upsert, one write per commit, as a storage
does), once timed and once under ``strace -f -c`` counting ``fsync`` and ``fdatasync``
(skipped without strace). Configurations:

- SQLite's defaults: a rollback journal, ``synchronous=FULL``; what an app's own engine
  and better-sqlite3 (Shopify's Node adapters on SQLite) get on a new file;
- WAL with ``synchronous=FULL`` (Python's sqlite3 build defaults WAL files to FULL);
- WAL with ``synchronous=NORMAL``: what an engine the storage builds uses (the library's
  own ``store_session`` on such an engine is measured too);
- better-sqlite3 (Node) on a new file with its defaults, when the npm packages are there.

The report goes to stdout and ``benchmarks/results/sqlite-journal.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.node import NODE_DIR, node_missing

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "sqlite-journal.md"

#: name -> (journal_mode, synchronous, how the writes are made, crash, power cut)
CONFIGS = {
    "rollback journal, FULL (SQLite's default)": ("delete", "FULL", "raw"),
    "WAL, FULL": ("wal", "FULL", "raw"),
    "WAL, NORMAL": ("wal", "NORMAL", "raw"),
    "WAL, NORMAL: the storage built from a URL": (None, None, "library"),
    "better-sqlite3 defaults (Node adapters)": (None, None, "node"),
}
SURVIVES = {
    "delete": ("yes", "yes"),
    "wal FULL": ("yes", "yes"),
    "wal NORMAL": ("yes", "the last commits may roll back; never corrupt"),
}

CHILD = r"""
import json, sqlite3, sys, time
sys.path.insert(0, {root!r})
from benchmarks import raw
from benchmarks.data import generate
from sqlalchemy import MetaData
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage, session_table
path, mode, sync, how, writes = {path!r}, {mode!r}, {sync!r}, {how!r}, {writes!r}
sessions = generate(writes, max(1, writes // 4), 2024).sessions
table = "journal_bench"
schema = "sqlite:///" + path + ".schema"
creator = SQLAlchemySessionStorage(schema, table=session_table(MetaData(), table))
creator.create_table()
ddl = [row[0] for row in sqlite3.connect(path + ".schema").execute(
    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '%locks%'")]
creator.close()
if how == "library":
    storage = SQLAlchemySessionStorage("sqlite:///" + path, table=session_table(MetaData(), table))
    storage.create_table()
    storage.load_session("warm-up")
    store = storage.store_session
else:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = " + mode)
    connection.execute("PRAGMA synchronous = " + sync)
    for statement in ddl:
        connection.execute(statement)
    upsert = raw.statements("sqlite", table, "qmark").upsert
    store = lambda session: connection.execute(upsert, raw.sqlite_params(session))
started = time.perf_counter()
for session in sessions:
    store(session)
elapsed = time.perf_counter() - started
journal = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
print(json.dumps({{"us": elapsed / writes * 1e6, "journal": journal}}))
"""

NODE_CHILD = r"""
import Database from 'better-sqlite3';
const db = new Database(process.argv[2]);
db.exec(`CREATE TABLE session (id TEXT PRIMARY KEY, shop TEXT NOT NULL, state TEXT NOT NULL,
  isOnline INTEGER NOT NULL, scope TEXT, expires TEXT, accessToken TEXT NOT NULL, userId BLOB,
  firstName TEXT, lastName TEXT, email TEXT, accountOwner INTEGER, locale TEXT,
  collaborator INTEGER, emailVerified INTEGER, refreshToken TEXT, refreshTokenExpires TEXT)`);
const upsert = db.prepare(`INSERT INTO session (id, shop, state, isOnline, scope, accessToken)
  VALUES (?, ?, '', 0, 'read_products', ?) ON CONFLICT (id) DO UPDATE SET
  shop = excluded.shop, accessToken = excluded.accessToken`);
const writes = Number(process.argv[3]);
const started = process.hrtime.bigint();
for (let i = 0; i < writes; i++) {
  upsert.run(`offline_shop-${i}.myshopify.com`, `shop-${i}.myshopify.com`, `shpat_${i}`);
}
const us = Number(process.hrtime.bigint() - started) / 1000 / writes;
console.log(JSON.stringify({us, journal: db.pragma('journal_mode', {simple: true})}));
"""


def run_child(
    name: str, workdir: Path, writes: int, traced: bool
) -> tuple[dict[str, object], int | None]:
    """One run of a configuration: (what it printed, fsyncs + fdatasyncs if traced)."""
    mode, sync, how = CONFIGS[name]
    path = workdir / f"{uuid_name()}.sqlite3"
    if how == "node":
        script = NODE_DIR / f"_journal_{os.getpid()}.mjs"  # resolves better-sqlite3 there
        script.write_text(NODE_CHILD, encoding="utf-8")
        command = ["node", str(script), str(path), str(writes)]
    else:
        script = None
        code = CHILD.format(
            root=str(ROOT), path=str(path), mode=mode, sync=sync, how=how, writes=writes
        )
        command = [sys.executable, "-c", code]
    counts = workdir / "strace.txt"
    if traced:
        command = ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(counts), *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    finally:
        if script is not None:
            script.unlink()
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    syncs = None
    if traced:
        text = counts.read_text(encoding="utf-8")
        syncs = sum(
            int(m.group(1))
            for m in re.finditer(
                r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?f(?:data)?sync$", text, re.M
            )
        )
    return reply, syncs


_counter = iter(range(1_000_000))


def uuid_name() -> str:
    return f"journal-{next(_counter)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    strace = shutil.which("strace") is not None
    names = [n for n in CONFIGS if CONFIGS[n][2] != "node" or node_missing() is None]
    workdir = Path(tempfile.mkdtemp(prefix="shopify-sessions-journal-"))
    load_before = os.getloadavg()
    timings: dict[str, list[float]] = {name: [] for name in names}
    syncs: dict[str, int | None] = {}
    journals: dict[str, str] = {}
    try:
        for _ in range(args.rounds):  # configurations interleaved, round by round
            for name in names:
                reply, _ = run_child(name, workdir, args.writes, traced=False)
                timings[name].append(float(reply["us"]))  # type: ignore[arg-type]
                journals[name] = str(reply["journal"])
        for name in names:
            syncs[name] = run_child(name, workdir, args.writes, traced=True)[1] if strace else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    lines = [
        "# SQLite: a write's cost by journal mode and sync level",
        "",
        f"`python -m benchmarks.sqlite_journal --writes {args.writes} --rounds {args.rounds}`, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, on the disk of this machine (ext4 on a "
        f"virtio disk); load average before {' '.join(f'{v:.2f}' for v in load_before)}, "
        f"after {' '.join(f'{v:.2f}' for v in load_after)}. One session stored per commit, "
        "into a new file; µs per write: median of the rounds (lowest-highest); fsyncs: "
        "`fsync` + `fdatasync` calls per write, counted with `strace -f -c` in a separate run.",
        "",
        "| configuration | journal | µs per write | fsyncs per write | survives a process crash "
        "| survives a power cut or OS crash |",
        "|---|---|---:|---:|---|---|",
    ]
    for name in names:
        values = timings[name]
        key = (
            "delete"
            if journals[name] != "wal"
            else ("wal NORMAL" if "NORMAL" in name else "wal FULL")
        )
        crash, power = SURVIVES[key]
        count = syncs[name]
        per_write = "—" if count is None else f"{count / args.writes:.2f}"
        lines.append(
            f"| {name} | {journals[name]} | {statistics.median(values):,.0f} "
            f"({min(values):,.0f}-{max(values):,.0f}) | {per_write} | {crash} | {power} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
