"""PgBouncer, started by the tests in front of the test PostgreSQL (tests/servers/pgbouncer.ini).

PgBouncer is a Debian package (``pgbouncer``); ``.ci/run`` installs it. Without it, the
pooler tests skip with the reason, unless servers are required (CI), when they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import make_url

CONFIG = Path(__file__).parent / "servers" / "pgbouncer.ini"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def missing() -> str | None:
    """Why PgBouncer can't be started here, or None."""
    if not os.path.exists(PGBOUNCER):
        return "PgBouncer is not installed (Debian package pgbouncer; .ci/run installs it)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgBouncer:
    """One PgBouncer process in ``pool_mode`` in front of ``server_url``'s database."""

    def __init__(self, server_url: str, pool_mode: str, pool_size: int = 4) -> None:
        server = make_url(server_url)
        self.pool_mode = pool_mode
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix=f"pgbouncer-{pool_mode}-")
        self.url = server.set(host="127.0.0.1", port=self.port)
        user = server.username or "postgres"
        (Path(self.directory) / "userlist.txt").write_text(f'"{user}" ""\n')
        (Path(self.directory) / "pgbouncer.ini").write_text(
            CONFIG.read_text().format(
                database=server.database,
                host=server.host or "127.0.0.1",
                port=server.port or 5432,
                user=user,
                listen_port=self.port,
                directory=self.directory,
                pool_mode=pool_mode,
                pool_size=pool_size,
            )
        )
        command = [PGBOUNCER, f"{self.directory}/pgbouncer.ini"]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            for name in os.listdir(self.directory):
                os.chown(f"{self.directory}/{name}", account.pw_uid, account.pw_gid)
            command += ["-u", "postgres"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"PgBouncer exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError(f"PgBouncer did not listen on {self.port}: {self.log()}")

    def url_for(self, driver: str) -> str:
        """This PgBouncer's URL with a SQLAlchemy ``driver``."""
        return self.url.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)

    def log(self) -> str:
        try:
            return (Path(self.directory) / "pgbouncer.log").read_text()[-2000:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.directory, ignore_errors=True)
