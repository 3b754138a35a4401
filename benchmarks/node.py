"""The Node peers: Shopify's Drizzle and Prisma adapters running the same phases.

``tests/interop/node/bench.mjs`` runs the phases of ``phases.py`` against the real npm
packages pinned in ``tests/interop/node`` (install them with ``npm ci`` there), on the
same servers. Prisma's generated client maps its model to a table named ``Session``,
so the peers use a database of their own on each server (``NODE_DATABASE``, created if
absent) and a SQLite file of their own, away from the tests' ``Session`` tables.
Without Node.js or the packages, :func:`node_missing` says why and the report marks
the Node columns absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .data import Dataset
from .phases import DELETE_BATCH, WORKERS, PhaseResult
from .targets import Servers

NODE_DIR = Path(__file__).resolve().parent.parent / "tests" / "interop" / "node"
sys.path.insert(0, str(NODE_DIR.parent))  # the session JSON the Node scripts take
from node.session_spec import to_spec  # noqa: E402

ADAPTERS = ("drizzle", "prisma")
NODE_DATABASE = "shopify_sessions_bench"


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
    """Runs bench.mjs for one adapter on one dialect, once per round."""

    def __init__(self, servers: Servers, data: Dataset, workdir: Path) -> None:
        self.servers = servers
        self.workdir = workdir
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
            return str(self.workdir / "node-peers.sqlite3")
        self._create_database(dialect)
        base = self.servers.postgresql if dialect == "postgresql" else self.servers.mysql
        scheme = "postgres" if dialect == "postgresql" else "mysql"
        url = base.set(drivername=scheme, database=NODE_DATABASE)
        return url.render_as_string(hide_password=False)

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

    def _cli(self, request: dict[str, Any]) -> None:
        """A table operation through cli.mjs (the tests' Node driver)."""
        self._node("cli.mjs", request)

    def _node(self, script: str, request: dict[str, Any]) -> dict[str, Any]:
        done = subprocess.run(
            ["node", str(NODE_DIR / script)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=1200,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
            check=False,
        )
        try:
            reply: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError:
            reply = {"error": done.stdout}
        if done.returncode != 0 or "error" in reply:
            raise RuntimeError(f"{script}: {reply.get('error')}\n{done.stderr[-2000:]}")
        return reply

    def run(self, adapter: str, dialect: str, table: str) -> dict[str, PhaseResult]:
        """One round of every phase through ``adapter`` on a fresh table."""
        url = self.url(dialect)
        table = "Session" if adapter == "prisma" else table
        base = {"adapter": adapter, "dialect": dialect, "url": url, "table": table}
        self._cli({**base, "op": "create_table"})
        try:
            reply = self._node("bench.mjs", {**base, **self.payload})
        finally:
            self._cli({**base, "op": "drop_table"})
        self.versions.update(reply.get("versions", {}))
        return {
            phase: PhaseResult(phase, int(result["elapsed_ns"]), list(result["latencies_ns"]))
            for phase, result in reply["phases"].items()
        }

    def run_redis(self, url: str, prefix: str) -> dict[str, PhaseResult]:
        """One round of every phase through the Node Redis adapter under ``prefix``."""
        base = {"adapter": "redis", "dialect": "redis", "url": url, "table": prefix}
        try:
            reply = self._node("bench.mjs", {**base, **self.payload})
        finally:
            import redis

            client = redis.Redis.from_url(url)
            for key in list(client.scan_iter(match=f"{prefix}*")):
                client.delete(key)
            client.close()
        self.versions.update(reply.get("versions", {}))
        return {
            phase: PhaseResult(phase, int(result["elapsed_ns"]), list(result["latencies_ns"]))
            for phase, result in reply["phases"].items()
        }
