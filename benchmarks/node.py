"""The Node peers: Shopify's Drizzle and Prisma adapters running the same phases.

``tests/interop/node/bench.mjs`` runs the phases of ``phases.py`` against the real npm
packages pinned in ``tests/interop/node`` (install them with ``npm ci`` there), on the
same servers, one phase at a time when asked: :class:`NodePeer` keeps one Node process
open per adapter for a round, so the benchmark interleaves it with the Python sides
phase by phase. Prisma's generated client maps its model to a table named ``Session``,
so the peers use a database of their own on each server (``NODE_DATABASE``, created if
absent) and a SQLite file of their own, away from the tests' ``Session`` tables.
Without Node.js or the packages, :func:`node_missing` says why and the report marks
the Node columns absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .data import Dataset
from .phases import DELETE_BATCH, RUN_ORDER, WORKERS, PhaseResult
from .targets import Servers

NODE_DIR = Path(__file__).resolve().parent.parent / "tests" / "interop" / "node"
sys.path.insert(0, str(NODE_DIR.parent))  # the session JSON the Node scripts take
from node.session_spec import to_spec  # noqa: E402

NODE_DATABASE = "shopify_sessions_bench"
NODE_ENV = {**os.environ, "NODE_NO_WARNINGS": "1"}


def node_missing() -> str | None:
    """Why the Node peers cannot run here, or ``None`` when they can."""
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (NODE_DIR / "node_modules" / "@shopify").is_dir():
        return f"the npm packages are not installed: run `npm ci` in {NODE_DIR}"
    if not (NODE_DIR / "prisma" / "generated").is_dir():
        return f"the Prisma clients are not generated: run `npm run generate` in {NODE_DIR}"
    return None


class NodePeers:
    """Where the peers run, and what they are given: one per benchmark."""

    def __init__(
        self, servers: Servers, data: Dataset, workdir: Path, *, sqlite_wal: bool = False
    ) -> None:
        self.servers = servers
        self.workdir = workdir
        self.sqlite_wal = sqlite_wal
        self.payload = {
            "sessions": [to_spec(s) for s in data.sessions],
            "updated": [to_spec(s) for s in data.updated],
            "shops": data.shops,
            "expected_by_shop": data.expected_by_shop,
            "workers": WORKERS,
            "delete_batch": DELETE_BATCH,
        }
        self.versions: dict[str, str] = {}
        self._databases: set[str] = set()

    def url(self, dialect: str) -> str:
        """Where the peers of ``dialect`` run: a database of their own on the same server."""
        if dialect == "sqlite":
            path = self.workdir / "node-peers.sqlite3"
            if self.sqlite_wal and not path.exists():
                with contextlib.closing(sqlite3.connect(path)) as connection:
                    connection.execute("PRAGMA journal_mode = WAL")
            return str(path)
        self._create_database(dialect)
        base = self.servers.postgresql if dialect == "postgresql" else self.servers.mysql
        scheme = "postgres" if dialect == "postgresql" else "mysql"
        url = base.set(drivername=scheme, database=NODE_DATABASE)
        return url.render_as_string(hide_password=False)

    def sqlite_journal(self) -> str:
        """The journal mode of the peers' SQLite file (better-sqlite3's own unless WAL)."""
        path = self.workdir / "node-peers.sqlite3"
        if not path.exists():
            return "absent"
        with contextlib.closing(sqlite3.connect(path)) as connection:
            return str(connection.execute("PRAGMA journal_mode").fetchone()[0])

    def _create_database(self, dialect: str) -> None:
        if dialect in self._databases:
            return
        if dialect == "postgresql":
            import psycopg

            with psycopg.connect(self.servers.postgresql_dsn(), autocommit=True) as connection:
                exists = connection.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (NODE_DATABASE,)
                ).fetchone()
                if not exists:
                    connection.execute(f'CREATE DATABASE "{NODE_DATABASE}"')
        else:
            import pymysql

            connection = pymysql.connect(**self.servers.mysql_args(), autocommit=True)
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"CREATE DATABASE IF NOT EXISTS `{NODE_DATABASE}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
            finally:
                connection.close()
        self._databases.add(dialect)

    def cli(self, request: dict[str, Any]) -> None:
        """A table operation through cli.mjs (the tests' Node driver)."""
        done = subprocess.run(
            ["node", str(NODE_DIR / "cli.mjs")],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=300,
            env=NODE_ENV,
            check=False,
        )
        try:
            reply: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError:
            reply = {"error": done.stdout}
        if done.returncode != 0 or "error" in reply:
            raise RuntimeError(f"cli.mjs: {reply.get('error')}\n{done.stderr[-2000:]}")

    def open(self, adapter: str, dialect: str, table: str, url: str | None = None) -> NodePeer:
        """``adapter`` on a fresh table (on Redis: under the key prefix ``table`` at
        ``url``), ready to run phases; its table (keys) dropped at close."""
        return NodePeer(self, adapter, dialect, table, url)

    def run_redis(self, url: str, prefix: str) -> dict[str, PhaseResult]:
        """One round of every phase through the Node Redis adapter under ``prefix``."""
        peer = self.open("redis", "redis", prefix, url)
        try:
            return {phase: peer.run_phase(phase) for phase in RUN_ORDER}
        finally:
            peer.close()

    def run_dynamodb(self, endpoint: str, table: str) -> dict[str, PhaseResult]:
        """One round of every phase through the Node DynamoDB adapter on a table of its own
        at ``endpoint`` (created by the library: the adapter creates none)."""
        from shopify_sessions.dynamodb import DynamoDBSessionStorage

        creator = DynamoDBSessionStorage(
            table, endpoint_url=endpoint, region_name="us-east-1",
            client_options={"aws_access_key_id": "bench", "aws_secret_access_key": "bench"},
        )  # fmt: skip
        creator.create_table()
        peer = self.open("dynamodb", "dynamodb", table, endpoint)
        try:
            return {phase: peer.run_phase(phase) for phase in RUN_ORDER}
        finally:
            peer.close()
            creator.client.delete_table(TableName=table)
            creator.close()

    @staticmethod
    def drop_keys(url: str, prefix: str) -> None:
        import redis

        client = redis.Redis.from_url(url)
        for key in list(client.scan_iter(match=f"{prefix}*")):
            client.delete(key)
        client.close()


class NodePeer:
    """One adapter in one Node process for one round: phases run when asked."""

    def __init__(
        self, peers: NodePeers, adapter: str, dialect: str, table: str, url: str | None = None
    ) -> None:
        self.peers = peers
        self.dialect = dialect
        url = url or peers.url(dialect)
        table = "Session" if adapter == "prisma" else table
        self.base = {"adapter": adapter, "dialect": dialect, "url": url, "table": table}
        if dialect not in ("redis", "dynamodb"):  # no table for Redis; Python makes DynamoDB's
            peers.cli({**self.base, "op": "create_table"})
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self._process = subprocess.Popen(
            ["node", str(NODE_DIR / "bench.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=NODE_ENV,
        )
        try:
            ready = self._ask({**self.base, **peers.payload})
        except BaseException:
            self.close()
            raise
        peers.versions.update(ready.get("versions", {}))

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        try:
            reply: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            reply = {"error": line or "no answer"}
        if "error" in reply:
            self._stderr.seek(0)
            raise RuntimeError(f"bench.mjs: {reply['error']}\n{self._stderr.read()[-2000:]}")
        return reply

    def run_phase(self, phase: str) -> PhaseResult:
        """Run ``phase`` in Node now; its timing as Node measured it."""
        result = self._ask({"phase": phase})
        return PhaseResult(phase, int(result["elapsed_ns"]), list(result["latencies_ns"]))

    def close(self) -> None:
        """End the process and drop the table."""
        try:
            if self._process.poll() is None:
                with contextlib.suppress(RuntimeError, OSError, ValueError):
                    self._ask({"close": True})
                try:
                    self._process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
        finally:
            self._stderr.close()
            if self.dialect == "redis":
                self.peers.drop_keys(self.base["url"], self.base["table"])
            elif self.dialect != "dynamodb":  # its table goes with run_dynamodb
                self.peers.cli({**self.base, "op": "drop_table"})
