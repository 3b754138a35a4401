"""Outages: killed connections are replaced invisibly; a stopped server is a typed error.

These tests kill backends and stop PostgreSQL and MariaDB for real (the commands of this
project's machines); every test starts its server again, whatever happens.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from conftest import MYSQL_URL, POSTGRESQL_URL, REQUIRE_SERVERS, Backend, Harness
from shopify_sessions import MissingSessionTableError, Session, StorageUnavailableError

# They stop and restart the machine's PostgreSQL and MariaDB: nothing else may run meanwhile.
pytestmark = pytest.mark.serial

TIMEOUT = 60.0


def sample(id: str = "offline_outage.myshopify.com", **fields: Any) -> Session:
    fields.setdefault("access_token", "shpat_outage")
    return Session(id, "outage.myshopify.com", "", False, **fields)


# --- servers ------------------------------------------------------------------------------


def _postgresql_version() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


def stop_server(server: str) -> None:
    if server == "postgresql":
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", _postgresql_version(), "main"]
        subprocess.run([*command, "stop", "-m", "fast"], check=True, capture_output=True)
    else:
        subprocess.run(
            ["mariadb-admin", "-h", "127.0.0.1", "-u", "root", "shutdown"],
            check=True,
            capture_output=True,
        )
    wait_for(server, reachable=False)


def _mariadb_pid_file() -> str:
    """The machine server's pid file, so that other mariadbd processes are not mistaken for it.

    The tests' own Galera pair runs ``/usr/sbin/mariadbd`` too: matched by executable alone,
    ``start-stop-daemon --oknodo`` would see it and start nothing.
    """
    defaults = subprocess.run(
        ["my_print_defaults", "--mysqld"], check=False, capture_output=True, text=True
    ).stdout
    for option in defaults.split():
        if option.startswith("--pid-file="):
            return option.removeprefix("--pid-file=")
    return "/run/mysqld/mysqld.pid"


def start_server(server: str) -> None:
    if server == "postgresql":
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", _postgresql_version(), "main"]
        subprocess.run([*command, "start"], check=False, capture_output=True)
    else:
        subprocess.run(
            [
                "start-stop-daemon",
                "--start",
                "--oknodo",
                "--background",
                "--pidfile",
                _mariadb_pid_file(),
                "--exec",
                "/usr/sbin/mariadbd",
            ],
            check=False,
            capture_output=True,
        )
    wait_for(server, reachable=True)


def reachable(server: str) -> bool:
    url = POSTGRESQL_URL if server == "postgresql" else MYSQL_URL
    driver = "postgresql+psycopg" if server == "postgresql" else "mysql+pymysql"
    engine = create_engine(
        url.replace(url.split("://")[0], driver, 1), connect_args={"connect_timeout": 2}
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def wait_for(server: str, *, reachable: bool) -> None:
    deadline = time.monotonic() + TIMEOUT
    while globals()["reachable"](server) != reachable:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{server} did not become {'reachable' if reachable else 'unreachable'}"
            )
        time.sleep(0.2)


@pytest.fixture
def controllable(server_backend: Backend) -> Iterator[str]:
    """The backend's server, which this test may stop; it is running again afterwards."""
    tools = (
        ("pg_ctlcluster",)
        if server_backend.server == "postgresql"
        else ("mariadb-admin", "start-stop-daemon")
    )
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        if REQUIRE_SERVERS:
            pytest.fail(f"cannot stop and start {server_backend.server}: {missing} not found")
        pytest.skip(f"cannot stop and start {server_backend.server}: {missing} not found")
    try:
        yield server_backend.server
    finally:
        start_server(server_backend.server)


# --- killing backends ---------------------------------------------------------------------


def sync_engine(storage: Any) -> Engine:
    engine = storage.target.engine if hasattr(storage, "target") else storage.engine
    return engine if isinstance(engine, Engine) else engine.sync_engine


def record_backends(storage: Any, server: str) -> set[int]:
    """The server-side ids of every connection the storage opens from now on."""
    backends: set[int] = set()
    query = "SELECT pg_backend_pid()" if server == "postgresql" else "SELECT CONNECTION_ID()"

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(query)
        backends.add(int(cursor.fetchone()[0]))
        cursor.close()

    event.listen(sync_engine(storage), "connect", on_connect)
    return backends


def kill(harness: Harness, backend: int) -> bool:
    try:
        if harness.backend.server == "postgresql":
            [(done,)] = harness.sql("SELECT pg_terminate_backend(:pid)", pid=backend)
            return bool(done)
        harness.sql(f"KILL {int(backend)}")
        return True
    except Exception:  # already gone
        return False


async def test_killed_connections_are_replaced_invisibly(
    server_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    storage = server_harness.storage(table=server_harness.default_table())
    backends = record_backends(storage, server_harness.backend.server)  # before any connection
    await storage.create_table()
    events = killed = 0
    progress = 0  # operations completed; a kill event waits for the loop to move on
    stop = threading.Event()

    def killer() -> None:
        # Each event kills every backend the storage has opened so far, idle or busy.
        nonlocal events, killed
        seen = 0
        while not stop.wait(0.02):
            if progress < seen + 5:
                continue
            seen = progress
            doomed = list(backends)
            backends.difference_update(doomed)
            killed += sum(kill(server_harness, backend) for backend in doomed)
            events += 1

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        index = 0
        deadline = time.monotonic() + 60
        while events < 30:
            session = sample(f"killed_{index % 25}", scope=f"s{index}")
            assert await storage.store_session(session) is True
            assert await storage.load_session(session.id) == session
            if index % 10 == 0:
                found = await storage.find_sessions_by_shop("outage.myshopify.com")
                assert len(found) == min(index + 1, 25)
            progress += 3
            index += 1
            assert time.monotonic() < deadline, "the kill events did not happen"
    finally:
        stop.set()
        thread.join()
    assert events >= 30
    retries = [r for r in caplog.records if r.name == "shopify_sessions"]
    assert retries, "the retries are logged"
    assert not [r for r in caplog.records if "shpat_outage" in r.getMessage()]
    assert killed >= 20  # a KILL can find its connection already gone (replaced meanwhile)
    name = server_harness.backend.name
    print(f"{name}: {killed} backends killed in {events} events, {progress} operations")


# --- stopping the server ------------------------------------------------------------------


async def test_a_stopped_server_is_unavailable_and_the_storage_recovers(
    server_harness: Harness, controllable: str
) -> None:
    storage = server_harness.storage(table=server_harness.default_table())
    await storage.create_table()
    stored = sample()
    await storage.store_session(stored)

    stop_server(controllable)
    for call in (
        lambda: storage.load_session(stored.id),
        lambda: storage.store_session(sample(scope="during the outage")),
        lambda: storage.find_sessions_by_shop(stored.shop),
        lambda: storage.delete_sessions([stored.id]),
        lambda: storage.check_table(),
    ):
        with pytest.raises(StorageUnavailableError) as raised:
            await call()
        assert not isinstance(raised.value, MissingSessionTableError)
        assert raised.value.__cause__ is not None
    assert await storage.is_ready() is False

    restart = threading.Timer(1.0, start_server, args=(controllable,))
    restart.start()
    try:
        assert await storage.is_ready(retries=60, retry_interval=0.5) is True
    finally:
        restart.join()
    assert await storage.load_session(stored.id) == stored
    await storage.store_session(sample(scope="after the outage"))
    assert (await storage.load_session(stored.id)).scope == "after the outage"


# --- readiness ----------------------------------------------------------------------------


async def test_check_table_waits_for_a_table_being_created(sql_harness: Harness) -> None:
    storage = sql_harness.storage(table=sql_harness.default_table())
    with pytest.raises(MissingSessionTableError):
        await storage.check_table(retries=2, retry_interval=0.05)
    assert await storage.is_ready() is False

    table = sql_harness.default_table()
    creator = threading.Timer(0.5, table.create, args=(sql_harness.raw,))
    creator.start()
    try:
        await storage.check_table(retries=40, retry_interval=0.1)
    finally:
        creator.join()
    assert await storage.is_ready() is True
    with pytest.raises(ValueError):
        await storage.check_table(retries=-1)
