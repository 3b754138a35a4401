"""A Redis Cluster of three masters for the tests: the machine's ``redis-server`` on free
ports, each in a temporary directory, joined by ``redis-cli --cluster create``, and
stopped (processes killed, directories removed) whatever happens."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MASTERS = 3


@dataclass(frozen=True)
class RedisCluster:
    ports: tuple[int, ...]

    @property
    def url(self) -> str:
        """The storages' URL of the cluster: its first node, with ``?cluster=true``."""
        return f"redis://127.0.0.1:{self.ports[0]}/0?cluster=true"


def cluster_unavailable() -> str | None:
    """Why no cluster can be started here, or None."""
    for program in ("redis-server", "redis-cli"):
        if shutil.which(program) is None:
            return f"{program} is not installed: the Redis Cluster tests need it"
    return None


def _free_ports(count: int) -> list[int]:
    # A cluster node also listens on its port + 10000 (the cluster bus): both must be free.
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 < 65536 and port not in ports and _is_free(port + 10000):
            ports.append(port)
    return ports


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cli(port: int, *arguments: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *arguments], capture_output=True, text=True, timeout=30
    )
    return done.stdout


def _wait(condition: object, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise RuntimeError(f"the test Redis Cluster did not come up: {what}")


@contextmanager
def start_cluster() -> Iterator[RedisCluster]:
    """Start the cluster; stop it and remove its files on the way out."""
    reason = cluster_unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    directory = Path(tempfile.mkdtemp(prefix="shopify-sessions-cluster-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        ports = _free_ports(MASTERS)
        for port in ports:
            node = directory / str(port)
            node.mkdir()
            processes.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--dir", str(node),
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", "5000",
                        "--save", "",
                        "--appendonly", "no",
                        "--daemonize", "no",
                        "--logfile", str(node / "redis.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in ports:
            _wait(lambda port=port: _cli(port, "ping").strip() == "PONG", f"port {port}")
        create = subprocess.run(
            ["redis-cli", "--cluster", "create"]
            + [f"127.0.0.1:{port}" for port in ports]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout[-2000:]}")
        for port in ports:
            _wait(
                lambda port=port: "cluster_state:ok" in _cli(port, "cluster", "info"),
                f"cluster_state on port {port}",
            )
        yield RedisCluster(tuple(ports))
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
