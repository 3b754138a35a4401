"""A two-node MariaDB Galera cluster, started by the tests (tests/servers/galera.cnf).

The machine's MariaDB with Debian's ``galera-4`` and ``rsync`` (``.ci/run`` installs
them): the first node is bootstrapped with ``--wsrep-new-cluster``, the second joins it
by an rsync state transfer. Both listen on free ports of 127.0.0.1, with data directories
of their own, and are stopped when the run ends; the machine's MariaDB is left alone.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from pgbouncer import free_port

CONFIG = Path(__file__).parent / "servers" / "galera.cnf"
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
PROVIDER = "/usr/lib/galera/libgalera_smm.so"
CLIENT = shutil.which("mariadb") or "mariadb"


def missing() -> str | None:
    """Why a Galera pair can't be started here, or None."""
    for path, package in (
        (MARIADBD, "mariadb-server"),
        (PROVIDER, "galera-4"),
        (shutil.which("rsync") or "/usr/bin/rsync", "rsync"),
    ):
        if not os.path.exists(path):
            return f"{path} is missing (Debian package {package}; .ci/run installs it)"
    return None


class GaleraPair:
    """Two Galera nodes of one cluster; ``urls`` are their MySQL URLs (user root)."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="galera-")
        self.ports = [free_port(), free_port()]
        groups = [free_port(), free_port()]
        peers = ",".join(f"127.0.0.1:{port}" for port in groups)
        self.nodes = [f"{self.directory}/node{n}" for n in (1, 2)]
        self.processes: list[subprocess.Popen[bytes]] = []
        # As root, the nodes run as mysql, as Debian's MariaDB does: rsync's daemon, which
        # receives a state transfer, would otherwise write as nobody.
        user = "mysql" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        try:
            for n, node in enumerate(self.nodes):
                os.makedirs(f"{node}/data")
                os.makedirs(f"{node}/tmp")
                Path(f"{node}/my.cnf").write_text(
                    CONFIG.read_text().format(
                        directory=node,
                        port=self.ports[n],
                        user=user,
                        peers=peers,
                        name=f"node{n + 1}",
                        group_port=groups[n],
                        ist_port=free_port(),
                        sst_port=free_port(),
                    )
                )
            if os.geteuid() == 0:
                account = pwd.getpwnam(user)
                for path in [
                    self.directory,
                    *self.nodes,
                    *(f"{n}/{d}" for n in self.nodes for d in ("data", "tmp")),
                ]:
                    os.chown(path, account.pw_uid, account.pw_gid)
            self._install(self.nodes[0], user)
            self._start(0, "--wsrep-new-cluster")
            # Users and the database before the second node joins: its state transfer copies them.
            self.sql(0, "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
            self.sql(0, "GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            self.sql(0, "CREATE DATABASE test")
            self._start(1)
            self._wait_for_cluster(2)
        except BaseException:
            self.close()
            raise

    @property
    def urls(self) -> list[str]:
        return [f"mysql://root@127.0.0.1:{port}/test" for port in self.ports]

    def _install(self, node: str, user: str) -> None:
        done = subprocess.run(
            [
                INSTALL_DB,
                f"--defaults-file={node}/my.cnf",
                f"--user={user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"mariadb-install-db exited with {done.returncode}: {done.stdout[-2000:]}"
                f"{done.stderr[-2000:]}\n{self.log(0)}"
            )

    def _start(self, n: int, *options: str) -> None:
        node = self.nodes[n]
        self.processes.append(
            subprocess.Popen(
                [MARIADBD, f"--defaults-file={node}/my.cnf", *options],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.processes[n].poll() is not None:
                raise RuntimeError(f"node{n + 1} exited: {self.log(n)}")
            if self._answers(n, "SELECT 1") == "1":
                return
            time.sleep(0.5)
        raise RuntimeError(f"node{n + 1} did not start: {self.log(n)}")

    def _wait_for_cluster(self, size: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = [
                self._answers(
                    n, "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_ready')"
                )
                for n in range(2)
            ]
            if status == [f"wsrep_cluster_size\t{size}\nwsrep_ready\tON"] * 2:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the cluster did not form: {self.log(0)}\n{self.log(1)}")

    def _answers(self, n: int, statement: str) -> str | None:
        done = subprocess.run(
            [CLIENT, f"--socket={self.nodes[n]}/mysqld.sock", "-u", "root", "-N", "-e", statement],
            capture_output=True,
            text=True,
        )
        return done.stdout.strip() if done.returncode == 0 else None

    def sql(self, n: int, statement: str) -> str:
        """Run ``statement`` on node ``n`` (0 or 1) through its socket; its output."""
        answer = self._answers(n, statement)
        if answer is None:
            raise RuntimeError(f"node{n + 1} refused {statement!r}")
        return answer

    def log(self, n: int) -> str:
        try:
            return Path(f"{self.nodes[n]}/error.log").read_text()[-3000:]
        except OSError:
            return ""

    def close(self) -> None:
        # The joiner first, then the first node, so that neither waits for the other.
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
