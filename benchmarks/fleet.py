"""Fleet runs: ``refresh_expiring`` and ``migrate_all_legacy`` over many shops, against
FakeShopify with Shopify's latency, on PostgreSQL, Redis and SQLite, sync and asyncio.

    .venv/bin/python -m benchmarks.fleet                      # everything (~30 min here)
    .venv/bin/python -m benchmarks.fleet --targets redis --forms sync --shops 1000
    .venv/bin/python -m benchmarks.fleet --no-sweep --no-memory   # the 10,000-shop runs only

What it measures, each case on a fresh FakeShopify state (in a process of its own, so that
its server threads don't share the benchmark's interpreter) and a fresh table or key prefix:

- **throughput**: shops a second of ``refresh_expiring`` at concurrency 1, 4, 16 and 64
  (``--sweep``, on a number of shops that keeps each case a few seconds), and on
  ``--shops`` (10,000) at ``--concurrency`` (64), with the latency of ``--latency`` (0.1 s)
  at the token endpoint; then ``migrate_all_legacy`` on as many legacy shops;
- **correctness**, from FakeShopify's counters (strict mode: a refresh token used twice, or
  a legacy token exchanged twice, would show): refresh requests beyond one a shop (double
  refreshes), reuses, exchange requests beyond one a shop (double exchanges), repeats;
- **memory**: the peak RSS of a child process (``ru_maxrss``) over its RSS before the run,
  for a run on 1,000 shops (refreshed for real), and on 100,000 shops: the storage walk
  alone (``sessions_due_for_refresh``, no HTTP), and a whole run whose refresh tokens
  FakeShopify does not know (each answered ``invalid_grant`` after the latency: the same
  walk, lock and call a shop, no pair stored; 100,000 pairs would take FakeShopify minutes
  to issue).

The load average is printed beside each case (other work on the machine slows it). The
report goes to stdout and ``benchmarks/results/fleet.md``. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: benchmarks/fleet.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import make_url, text

from shopify_sessions import Session
from shopify_sessions.testing import Counters, FakeShopify
from shopify_sessions.tokens import AsyncOfflineTokens, OfflineTokens

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "fleet.md"
POSTGRESQL_URL = os.environ.get("TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGETS = ("postgresql", "redis", "sqlite")
FORMS = ("sync", "async")
#: Concurrency of the sweep, and the shops each is run on (a few seconds each at 0.1 s).
SWEEP = {1: 40, 4: 160, 16: 640, 64: 2560}
DRIVERS = {
    ("postgresql", "sync"): "psycopg",
    ("postgresql", "async"): "asyncpg",
    ("sqlite", "sync"): "pysqlite",
    ("sqlite", "async"): "aiosqlite",
    ("redis", "sync"): "redis-py",
    ("redis", "async"): "redis-py asyncio",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--forms", default=",".join(FORMS))
    parser.add_argument("--shops", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--migrate", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--memory-shops", default="1000,100000")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a memory case, as JSON
    args = parser.parse_args(argv)
    args.target_list = [t for t in args.targets.split(",") if t]
    args.form_list = [f for f in args.forms.split(",") if f]
    return args


# ------------------------------------------------------------------ FakeShopify's process


def _serve(urls: Any, stop: Any) -> None:
    with FakeShopify() as shopify:
        urls.put(shopify.url)
        stop.wait()


class FakeProcess:
    """A FakeShopify in a process of its own, and a handle on it here."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        urls, self._stop = context.Queue(), context.Event()
        self._process = context.Process(target=_serve, args=(urls, self._stop), daemon=True)
        self._process.start()
        self.shopify = FakeShopify.attach(urls.get(timeout=60))

    def close(self) -> None:
        self._stop.set()
        self._process.join(10)


# ------------------------------------------------------------------ storages


@dataclass
class Place:
    """Where one case's sessions live: a fresh table (SQL) or key prefix (Redis)."""

    target: str
    name: str
    sqlite_path: str

    def url(self, form: str) -> str:
        if self.target == "postgresql":
            driver = "psycopg" if form == "sync" else "asyncpg"
            url = make_url(POSTGRESQL_URL).set(drivername=f"postgresql+{driver}")
            return url.render_as_string(hide_password=False)
        if self.target == "sqlite":
            driver = "pysqlite" if form == "sync" else "aiosqlite"
            return f"sqlite+{driver}:///{self.sqlite_path}"
        return REDIS_URL

    def storage(self, form: str) -> Any:
        """The library's storage, built from a URL, with its defaults."""
        if self.target == "redis":
            from shopify_sessions.redis import AsyncRedisSessionStorage, RedisSessionStorage

            kind: Any = RedisSessionStorage if form == "sync" else AsyncRedisSessionStorage
            return kind(REDIS_URL, key_prefix=self.name)
        from shopify_sessions.sqlalchemy import (
            AsyncSQLAlchemySessionStorage,
            SQLAlchemySessionStorage,
        )

        kind = SQLAlchemySessionStorage if form == "sync" else AsyncSQLAlchemySessionStorage
        return kind(self.url(form), table=self.name)

    def create(self) -> Any:
        """The sync storage that seeds the case (its table created)."""
        storage = self.storage("sync")
        if self.target != "redis":
            storage.create_table()
        return storage

    def drop(self, storage: Any) -> None:
        if self.target == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{self.name}*", count=5000))
            for start in range(0, len(keys), 5000):
                client.delete(*keys[start : start + 5000])
            client.close()
        else:
            with storage.engine.begin() as connection:
                for table in (self.name, f"{self.name}_locks"):
                    connection.execute(text(f'DROP TABLE IF EXISTS "{table}"'))
        storage.close()
        if self.target == "sqlite":
            for path in Path(self.sqlite_path).parent.glob(Path(self.sqlite_path).name + "*"):
                if path.is_file():
                    path.unlink()


def new_place(target: str, directory: str) -> Place:
    name = f"fleet_{uuid.uuid4().hex[:10]}"
    return Place(target, name, str(Path(directory) / f"{name}.sqlite3"))


def seed(
    shopify: FakeShopify, storage: Any, shops: int, *, legacy: bool, known: bool = True
) -> None:
    """``shops`` offline sessions due for a refresh (or legacy), issued by FakeShopify (or,
    ``known=False``, with tokens it never issued)."""
    soon = datetime.now(UTC) + timedelta(days=1)
    for n in range(shops):
        shop = f"fleet-{n:06}.myshopify.com"
        if known:
            session = shopify.seed_offline(shop, legacy=legacy, refresh_token_expires_in=86400)
        else:
            session = Session.offline(shop, scope="read_products", access_token=f"shpat_x{n}")
            session.expires = soon
            session.refresh_token = f"shprt_unknown_{n}"
            session.refresh_token_expires = soon
        storage.store_session(session)


# ------------------------------------------------------------------ one run


def run_fleet(
    place: Place,
    form: str,
    shopify: FakeShopify,
    method: str,
    concurrency: int,
    progress: Callable[[int], object] | None = None,
) -> tuple[float, Any]:
    """Time ``method`` of OfflineTokens (or AsyncOfflineTokens) on the case's storage."""
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency)
    options = {
        "client_id": shopify.client_id,
        "client_secret": shopify.client_secret,
    }
    arguments: dict[str, Any] = {"concurrency": concurrency, "progress": progress}
    if method == "refresh_expiring":
        arguments["within"] = timedelta(days=7)
    if form == "sync":
        storage = place.storage("sync")
        with shopify.http_client(limits=limits, timeout=60.0) as client:
            tokens = OfflineTokens(storage, http_client=client, **options)
            started = time.perf_counter()
            report = getattr(tokens, method)(**arguments)
            elapsed = time.perf_counter() - started
        storage.close()
        return elapsed, report

    async def run() -> tuple[float, Any]:
        storage = place.storage("async")
        async with shopify.async_http_client(limits=limits, timeout=60.0) as client:
            tokens = AsyncOfflineTokens(storage, http_client=client, **options)
            started = time.perf_counter()
            report = await getattr(tokens, method)(**arguments)
            elapsed = time.perf_counter() - started
        await storage.close()
        return elapsed, report

    return asyncio.run(run())


def throughput_case(
    fake: FakeProcess,
    directory: str,
    target: str,
    form: str,
    shops: int,
    concurrency: int,
    latency: float,
    *,
    legacy: bool,
) -> dict[str, Any]:
    shopify = fake.shopify
    shopify.reset(latency=latency)  # the token endpoint's; seeding is not slowed
    place = new_place(target, directory)
    owner = place.create()
    try:
        seed(shopify, owner, shops, legacy=legacy)
        load = os.getloadavg()[0]
        method = "migrate_all_legacy" if legacy else "refresh_expiring"
        elapsed, report = run_fleet(place, form, shopify, method, concurrency)
        load = max(load, os.getloadavg()[0])
        totals = shopify.totals()
    finally:
        place.drop(owner)
    return {
        "target": target,
        "form": form,
        "method": method,
        "shops": shops,
        "concurrency": concurrency,
        "seconds": elapsed,
        "rate": shops / elapsed,
        "renewed": len(report.refreshed),
        "elsewhere": len(report.done_elsewhere),
        "failed": len(report.failed) + len(report.reauthorization_required),
        "failures": sorted({str(error).split(": ", 1)[-1] for error in report.failed.values()}),
        "rate_limited": report.rate_limited,
        "counters": _counters(totals),
        "load": load,
    }


def _counters(totals: Counters) -> dict[str, int]:
    return {
        "token_requests": totals.token_requests,
        "refresh_requests": totals.refresh_requests,
        "refreshes": totals.refreshes,
        "reuses": totals.reuses,
        "lockouts": totals.lockouts,
        "exchange_requests": totals.exchange_requests,
        "exchanges": totals.exchanges,
        "exchange_repeats": totals.exchange_repeats,
    }


# ------------------------------------------------------------------ memory, in a child


def memory_case(
    fake: FakeProcess,
    directory: str,
    target: str,
    shops: int,
    concurrency: int,
    latency: float,
    what: str,
) -> dict[str, Any]:
    """Seed here, then run ``what`` (``run``: refresh_expiring on pairs FakeShopify issued;
    ``unknown``: on pairs it never issued; ``walk``: the storage walk alone) in a child
    process, whose peak RSS over its RSS before the run is the figure."""
    shopify = fake.shopify
    shopify.reset(latency=latency)
    place = new_place(target, directory)
    owner = place.create()
    try:
        seed(shopify, owner, shops, legacy=False, known=what == "run")
        child = {
            "place": [place.target, place.name, place.sqlite_path],
            "url": shopify.url,
            "what": what,
            "concurrency": concurrency,
        }
        load = os.getloadavg()[0]
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.fleet", "--child", json.dumps(child)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        load = max(load, os.getloadavg()[0])
        totals = shopify.totals()
    finally:
        place.drop(owner)
    return {
        "target": target,
        "what": what,
        "shops": shops,
        "concurrency": concurrency,
        "load": load,
        "counters": _counters(totals),
        **result,
    }


def child(spec: dict[str, Any]) -> None:
    """A memory case in this process: prints its RSS before and at the peak (MB)."""
    place = Place(*spec["place"])
    shopify = FakeShopify.attach(spec["url"])
    storage = place.storage("sync")
    storage.load_session("offline_none.myshopify.com")  # connected, warm
    with open("/proc/self/clear_refs", "w") as refs:  # the peak (VmHWM) starts again from now
        refs.write("5")
    before = _status_mb("VmRSS")
    started = time.perf_counter()
    seen = 0
    if spec["what"] == "walk":
        limit = datetime.now(UTC) + timedelta(days=7)
        for batch in storage.sessions_due_for_refresh(limit):
            seen += len(batch)
    else:
        _, report = run_fleet(place, "sync", shopify, "refresh_expiring", spec["concurrency"])
        seen = len(report.outcomes)
    elapsed = time.perf_counter() - started
    storage.close()
    peak = _status_mb("VmHWM")
    print(json.dumps({"rss_before": before, "rss_peak": peak, "seen": seen, "seconds": elapsed}))


def _status_mb(field: str) -> float:
    """A field of this process's /proc/self/status in MB: ``VmRSS`` (resident now) or
    ``VmHWM`` (its peak since the last reset; ``ru_maxrss`` would keep the parent's across
    the fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


# ------------------------------------------------------------------ the report


def report(
    args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], command: str = ""
) -> str:
    command = command or " ".join(sys.argv[1:])
    loads = [r["load"] for rows in results.values() for r in rows]
    lines = [
        "# Fleet runs",
        "",
        f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.system()} {platform.machine()},"
        f" {os.cpu_count()} CPUs, Python {platform.python_version()}; FakeShopify (strict) in a"
        f" process of its own, {args.latency * 1000:.0f} ms at its token endpoint",
        f"- 1-minute load average during the cases: {min(loads, default=0):.1f} to"
        f" {max(loads, default=0):.1f} (other work shared the machine)",
        f"- `python -m benchmarks.fleet {command}`",
        "- double refreshes (exchanges): requests FakeShopify saw beyond one a shop; reuses"
        " (repeats): refresh tokens (legacy tokens) it saw twice; failed: shops the run"
        " reported failed (their causes below the tables)",
        "",
    ]
    if results.get("sweep"):
        lines += [
            "## refresh_expiring: shops a second by concurrency",
            "",
            "| target | driver | concurrency | shops | seconds | shops/s"
            " | failed | double refreshes | reuses | load |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [_throughput_row(r) for r in results["sweep"]]
        lines.append("")
    if results.get("fleet"):
        lines += [
            f"## {args.shops:,} shops at concurrency {args.concurrency}",
            "",
            "| target | driver | run | shops | seconds | shops/s | renewed | elsewhere | failed"
            " | double refreshes / exchanges | reuses / repeats | load |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["fleet"]:
            c = r["counters"]
            if r["method"] == "refresh_expiring":
                double, repeat = max(0, c["refresh_requests"] - r["shops"]), c["reuses"]
            else:
                double = max(0, c["exchange_requests"] - r["shops"])
                repeat = c["exchange_repeats"]
            lines.append(
                f"| {r['target']} | {DRIVERS[(r['target'], r['form'])]} | {r['method']} |"
                f" {r['shops']:,} | {r['seconds']:.1f} | {r['rate']:,.0f} | {r['renewed']:,} |"
                f" {r['elsewhere']:,} | {r['failed']:,} | {double} | {repeat} | {r['load']:.1f} |"
            )
        lines.append("")
    failures = [
        f"- {r['target']} {DRIVERS[(r['target'], r['form'])]} {r.get('method', '')}"
        f" ({r['shops']:,} shops, concurrency {r['concurrency']}): {r['failed']} failed"
        + (": " + "; ".join(r["failures"]) if r.get("failures") else "")
        for rows in (results.get("sweep", []), results.get("fleet", []))
        for r in rows
        if r["failed"]
    ]
    if failures:
        lines += ["Failures:", "", *failures, ""]
    if results.get("memory"):
        lines += [
            "## Memory (sync, the peak RSS of a child process over its RSS before the run)",
            "",
            "| target | run | shops | concurrency | seconds | RSS before MB | peak MB"
            " | growth MB | load |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["memory"]:
            what = {
                "run": "refresh_expiring",
                "unknown": "refresh_expiring, invalid_grant each",
                "walk": "the walk alone",
            }[r["what"]]
            lines.append(
                f"| {r['target']} | {what} | {r['shops']:,} | {r['concurrency']} |"
                f" {r['seconds']:.1f} | {r['rss_before']:.0f} | {r['rss_peak']:.0f} |"
                f" {r['rss_peak'] - r['rss_before']:.0f} | {r['load']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _throughput_row(r: dict[str, Any]) -> str:
    c = r["counters"]
    return (
        f"| {r['target']} | {DRIVERS[(r['target'], r['form'])]} | {r['concurrency']} |"
        f" {r['shops']:,} | {r['seconds']:.1f} | {r['rate']:,.1f} | {r['failed']} |"
        f" {max(0, c['refresh_requests'] - r['shops'])} | {c['reuses']} | {r['load']:.1f} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    directory = tempfile.mkdtemp(prefix="fleet-")
    results: dict[str, list[dict[str, Any]]] = {"sweep": [], "fleet": [], "memory": []}
    fake = FakeProcess()

    def say(row: dict[str, Any]) -> None:
        print(json.dumps(row), file=sys.stderr, flush=True)

    try:
        for target in args.target_list:
            for form in args.form_list:
                if args.sweep:
                    for concurrency, shops in SWEEP.items():
                        row = throughput_case(
                            fake,
                            directory,
                            target,
                            form,
                            shops,
                            concurrency,
                            args.latency,
                            legacy=False,
                        )
                        results["sweep"].append(row)
                        say(row)
                for legacy in (False, True) if args.migrate else (False,):
                    row = throughput_case(
                        fake,
                        directory,
                        target,
                        form,
                        args.shops,
                        args.concurrency,
                        args.latency,
                        legacy=legacy,
                    )
                    results["fleet"].append(row)
                    say(row)
        if args.memory:
            for shops in (int(n) for n in args.memory_shops.split(",") if n):
                for target in args.target_list:
                    cases = ["run", "walk"] if shops <= 10_000 else ["walk"]
                    if shops > 10_000 and target == args.target_list[0]:
                        cases.append("unknown")
                    for what in cases:
                        row = memory_case(
                            fake, directory, target, shops, args.concurrency, args.latency, what
                        )
                        results["memory"].append(row)
                        say(row)
    finally:
        fake.close()
    text_report = report(args, results)
    print(text_report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text_report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
