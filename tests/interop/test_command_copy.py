"""``shopify-sessions copy``: between every pair of databases, and from every Node layout.

Run as a user runs it (a subprocess). Between dialects, the first run is killed half-way
and the second must finish the job; every copy ends verified, and the target's sessions
are loaded back in Python and compared.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, make_url, text
from test_row_parity import parity_sessions

from command import COMMAND, run
from conftest import MYSQL_URL, POSTGRESQL_URL, REQUIRE_SERVERS, require_server, unique_table_name
from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session
from shopify_sessions.cli._compare import same_up_to_layout
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
from test_node import Node, node_missing, to_spec

UTC = timezone.utc
SERVERS = ("postgresql", "mysql", "sqlite")
PAIRS = [(a, b) for a in SERVERS for b in SERVERS if a != b]
SHOP = "copy.myshopify.com"
MANY = 1500


class Database:
    """A real database, its URL without a driver, and a table name of the test's own."""

    def __init__(self, server: str, tmp_path: Path, name: str) -> None:
        require_server(server)
        self.server = server
        if server == "sqlite":
            self.url = f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
        else:
            url = make_url(POSTGRESQL_URL if server == "postgresql" else MYSQL_URL)
            self.url = url.set(drivername=url.get_backend_name()).render_as_string(
                hide_password=False
            )
        sync = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
        # The test reads a SQLite file while the command writes it: wait out its writes.
        waits = {"connect_args": {"timeout": 60}} if server == "sqlite" else {}
        self.raw: Engine = create_engine(make_url(self.url).set(drivername=sync[server]), **waits)
        self.table = unique_table_name("copy")

    def storage(self, table: str | None = None, schema: str | None = None) -> Any:
        return SQLAlchemySessionStorage(self.url, table=table or self.table, schema=schema)

    def count(self) -> int:
        if not inspect(self.raw).has_table(self.table):
            return 0
        quoted = self.raw.dialect.identifier_preparer.quote(self.table)
        with self.raw.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {quoted}")).scalar_one())

    def close(self) -> None:
        quote = self.raw.dialect.identifier_preparer.quote
        with self.raw.begin() as connection:
            for table in (self.table, f"{self.table}_locks"):  # copy may have created both
                connection.execute(text(f"DROP TABLE IF EXISTS {quote(table)}"))
        self.raw.dispose()


def many_sessions(count: int) -> list[Session]:
    """Offline, online and expiring sessions with every field in use, milliseconds kept."""
    base = datetime(2030, 1, 1, tzinfo=UTC)
    sessions = []
    for index in range(count):
        shop = f"shop{index % 97}.myshopify.com"
        if index % 3 == 0:
            user = AssociatedUser(id=index + 1, first_name=f"F{index}", email=f"{index}@x.io")
            sessions.append(
                Session(
                    f"{shop}_{index + 1}",
                    shop,
                    "",
                    True,
                    scope="read_products",
                    expires=base + timedelta(milliseconds=index * 1001),
                    access_token=f"shpua_{index}",
                    online_access_info=OnlineAccessInfo(associated_user=user),
                )
            )
        else:
            sessions.append(
                Session(
                    f"offline_{index}_{shop}",
                    shop,
                    "",
                    False,
                    scope="write_products,read_orders",
                    expires=base + timedelta(hours=index),
                    access_token=f"shpat_{index}",
                    refresh_token=f"shprt_{index}" if index % 2 else None,
                    refresh_token_expires=base + timedelta(days=90) if index % 2 else None,
                )
            )
    return sessions


@pytest.fixture(params=PAIRS, ids=lambda pair: f"{pair[0]}-to-{pair[1]}")
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    source_server, target_server = request.param
    source = Database(source_server, tmp_path, "source")
    target = Database(target_server, tmp_path, "target")
    yield source, target
    source.close()
    target.close()


def test_copy_between_databases_interrupted_and_run_again(
    pair: tuple[Database, Database],
) -> None:
    source, target = pair
    assert run("init", "--table", source.table, url=source.url).code == 0
    sessions = many_sessions(MANY)
    storage = source.storage()
    for session in sessions:
        storage.store_session(session)
    storage.close()
    arguments = [
        "copy",
        source.url,
        target.url,
        "--source-table",
        source.table,
        "--target-table",
        target.table,
        "--batch-size",
        "50",
    ]

    # The first run is killed as soon as part of the sessions are on the target.
    first = subprocess.Popen([COMMAND, *arguments], stdout=subprocess.DEVNULL)
    copied_when_killed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        copied_when_killed = target.count()
        if copied_when_killed >= 100:
            first.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, "the copy ended before it could be interrupted"
    assert 0 < copied_when_killed < MANY
    assert target.count() < MANY

    second = run(*arguments, "--json")
    assert second.code == 0, second.stderr
    document = second.json
    assert document["target_created"] is False  # the first run had created it
    assert (document["sessions"], document["copied"], document["failed"]) == (MANY, MANY, 0)
    assert (document["verified_equal"], document["different"]) == (MANY, 0)
    assert target.count() == MANY

    copied = target.storage()
    for session in sessions[:: MANY // 50]:
        assert copied.load_session(session.id) == session
    copied.close()
    for token in ("shpat_", "shpua_", "shprt_"):
        assert token not in second.stdout + second.stderr


def test_copy_reports_what_it_cannot_copy(tmp_path: Path) -> None:
    """A scope too long for a Prisma MySQL VARCHAR(191) is not copied, and said so: exit 1."""
    source = Database("sqlite", tmp_path, "source")
    target = Database("sqlite", tmp_path, "target")
    target.raw.dispose()
    assert run("init", "--table", source.table, url=source.url).code == 0
    storage = source.storage()
    storage.store_session(Session(f"offline_{SHOP}", SHOP, "", False, access_token="a"))
    storage.store_session(Session(f"offline_2{SHOP}", SHOP, "", False, scope="s" * 300))
    storage.close()
    with target.raw.begin() as connection:
        connection.exec_driver_sql(
            f'CREATE TABLE "{target.table}" (id varchar(255) PRIMARY KEY, shop varchar(255) '
            'NOT NULL, state varchar(255) NOT NULL, "isOnline" integer NOT NULL, scope '
            'varchar(191), expires integer, "accessToken" varchar(255), "userId" integer, '
            '"firstName" varchar(255), "lastName" varchar(255), email varchar(255), '
            '"accountOwner" integer, locale varchar(255), collaborator integer, '
            '"emailVerified" integer, "refreshToken" varchar(255), "refreshTokenExpires" integer)'
        )
    result = run(
        "copy",
        source.url,
        target.url,
        "--source-table",
        source.table,
        "--target-table",
        target.table,
        "--json",
    )
    assert result.code == 1
    document = result.json
    assert (document["copied"], document["failed"], document["different"]) == (1, 1, 0)
    assert document["failures"][0]["id"] == f"offline_2{SHOP}"
    assert "scope is 300 characters long" in document["failures"][0]["error"]
    source.close()
    target.close()


# --- from every Node layout ---------------------------------------------------------------

LAYOUT_CELLS = [(adapter, server) for adapter in ("drizzle", "prisma", "raw") for server in SERVERS]


@pytest.mark.parametrize(("adapter", "server"), LAYOUT_CELLS, ids=lambda v: str(v))
def test_copy_from_a_node_layout(adapter: str, server: str, tmp_path: Path) -> None:
    reason = node_missing()
    if reason is not None:
        if REQUIRE_SERVERS:
            pytest.fail(reason)
        pytest.skip(reason)
    from conftest import SQL_BACKENDS, new_harness

    require_server(server)
    backend = next(b for b in SQL_BACKENDS if b.server == server and not b.is_async)
    harness = new_harness(backend, tmp_path)
    schema = None
    prisma = adapter == "prisma"
    kind = "SCHEMA" if server == "postgresql" else "DATABASE"
    if prisma:
        harness.table_name = "Session"
        if server != "sqlite":
            schema = f"p_{uuid.uuid4().hex[:12]}"
            harness.sql(f"CREATE {kind} {schema}")
    node = Node(adapter, backend, harness)
    if schema is not None and server == "postgresql":
        node.base["schema"] = schema
    if schema is not None and server == "mysql":
        node.base["url"] = (
            make_url(node.base["url"]).set(database=schema).render_as_string(hide_password=False)
        )
    target = Database("sqlite" if server != "sqlite" else "postgresql", tmp_path, "target")
    try:
        if prisma:
            from layouts import LAYOUTS

            layout = next(x for x in LAYOUTS if x.name == f"prisma-{server}")
            assert harness.raw is not None
            with harness.raw.begin() as connection:
                if schema is not None:
                    use = "SET search_path TO" if server == "postgresql" else "USE"
                    connection.exec_driver_sql(f"{use} {schema}")
                connection.exec_driver_sql(layout.ddl("Session", "`" if server == "mysql" else '"'))
        else:
            node("drop_table")
            node("create_table")
        sessions = parity_sessions()
        assert node("store", sessions=[to_spec(s) for s in sessions])["stored"] == [True] * len(
            sessions
        )
        source_url = make_url(backend.url(harness.sqlite_path))
        source_url = source_url.set(drivername=source_url.get_backend_name())
        where = ["--source-table", harness.table_name]
        if schema is not None:
            where += ["--source-schema", schema]
        result = run(
            "copy",
            source_url.render_as_string(hide_password=False),
            target.url,
            *where,
            "--target-table",
            target.table,
            "--json",
        )
        assert result.code == 0, result.stdout + result.stderr
        document = result.json
        assert document["target_created"] is True
        assert document["copied"] == len(sessions) and document["failed"] == 0
        assert document["verified_equal"] + document["verified_equivalent"] == len(sessions)
        assert document["different"] == 0
        source = SQLAlchemySessionStorage(
            backend.url(harness.sqlite_path), table=harness.table_name, schema=schema
        )
        copied = target.storage()
        for session in sessions:
            # Equal, or equal up to what the default table keeps (the raw adapters' ''
            # becomes NULL, as Drizzle writes it).
            there, here = copied.load_session(session.id), source.load_session(session.id)
            assert there == here or same_up_to_layout(here, there)
        source.close()
        copied.close()
    finally:
        if adapter != "prisma":
            node("drop_table")
        if schema is not None:
            harness.sql(f"DROP {kind} {schema}{' CASCADE' if kind == 'SCHEMA' else ''}")
        assert harness.raw is not None
        harness.raw.dispose()
        target.close()
