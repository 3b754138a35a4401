"""``shopify-sessions upgrade`` on tables made by older Node schemas, then both sides work.

The raw adapters' old schema (``scope varchar(255)``, the user id in a legacy
``onlineAccessInfo`` column, no refresh-token or user-info columns) and Prisma's v5
schema (no refresh-token columns, ``accountOwner NOT NULL``), on PostgreSQL, MariaDB
and SQLite. After the upgrade, the storage reads the old rows and writes new ones, and
the real Node adapter (its own migrations included) does too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, make_url

from command import run
from conftest import REQUIRE_SERVERS, SQL_BACKENDS, Harness, new_harness, require_server
from layouts import as_stored
from shopify_sessions import Session
from test_node import Node, kinds, node_missing, to_spec

SYNC = {b.server: b for b in SQL_BACKENDS if not b.is_async}
SERVERS = ("postgresql", "mysql", "sqlite")
SHOP = "upgrade.myshopify.com"

OLD_RAW = {
    "postgresql": 'CREATE TABLE "{t}" ("id" varchar(255) NOT NULL PRIMARY KEY, '
    '"shop" varchar(255) NOT NULL, "state" varchar(255) NOT NULL, "isOnline" boolean NOT NULL, '
    '"scope" varchar(255), "expires" integer, "onlineAccessInfo" varchar(255), '
    '"accessToken" varchar(255))',
    "mysql": "CREATE TABLE `{t}` (id varchar(255) NOT NULL PRIMARY KEY, "
    "shop varchar(255) NOT NULL, state varchar(255) NOT NULL, isOnline tinyint NOT NULL, "
    "scope varchar(255), expires integer, onlineAccessInfo varchar(255), "
    "accessToken varchar(255))",
    "sqlite": 'CREATE TABLE "{t}" (id varchar(255) NOT NULL PRIMARY KEY, '
    "shop varchar(255) NOT NULL, state varchar(255) NOT NULL, isOnline integer NOT NULL, "
    "expires integer, scope varchar(255), accessToken varchar(255), "
    "onlineAccessInfo varchar(255))",
}

_V5_COLUMNS = (
    '"shop" {text} NOT NULL, "state" {text} NOT NULL, "isOnline" BOOLEAN NOT NULL DEFAULT false, '
    '"scope" {text}, "expires" {time}, "accessToken" {text} NOT NULL, "userId" BIGINT, '
    '"firstName" {text}, "lastName" {text}, "email" {text}, '
    '"accountOwner" BOOLEAN NOT NULL DEFAULT false, "locale" {text}, '
    '"collaborator" BOOLEAN DEFAULT false, "emailVerified" BOOLEAN DEFAULT false'
)
PRISMA_V5 = {
    "postgresql": 'CREATE TABLE "Session" ("id" TEXT NOT NULL, '
    + _V5_COLUMNS.format(text="TEXT", time="TIMESTAMP(3)")
    + ', CONSTRAINT "Session_pkey" PRIMARY KEY ("id"))',
    "mysql": (
        'CREATE TABLE "Session" ("id" VARCHAR(191) NOT NULL, '
        + _V5_COLUMNS.format(text="VARCHAR(191)", time="DATETIME(3) NULL")
        + ', PRIMARY KEY ("id")) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
    ).replace('"', "`"),
    "sqlite": 'CREATE TABLE "Session" ("id" TEXT NOT NULL PRIMARY KEY, '
    + _V5_COLUMNS.format(text="TEXT", time="DATETIME")
    + ")",
}


def need_node() -> None:
    reason = node_missing()
    if reason is not None:
        if REQUIRE_SERVERS:
            pytest.fail(reason)
        pytest.skip(reason)


def command_url(harness: Harness, database: str | None = None) -> str:
    """The database as DATABASE_URL has it: no driver."""
    url = make_url(harness.backend.url(harness.sqlite_path))
    url = url.set(drivername=url.get_backend_name())
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=SERVERS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    need_node()
    require_server(request.param)
    harness = new_harness(SYNC[request.param], tmp_path)
    yield harness
    assert harness.raw is not None
    harness.raw.dispose()


def old_rows(harness: Harness) -> None:
    q = harness.quote
    harness.sql(
        f"INSERT INTO {q(harness.table_name)} (id, shop, state, {q('isOnline')}, scope, "
        f"expires, {q('onlineAccessInfo')}, {q('accessToken')}) VALUES "
        f"('offline_{SHOP}', '{SHOP}', '', false, 'read_products', NULL, NULL, 'shpat_old'), "
        f"('{SHOP}_42', '{SHOP}', 's', true, 'read_products', 1893456000, '42', 'shpua_old')"
    )


def test_upgrade_an_old_raw_adapter_table(harness: Harness) -> None:
    table = harness.table_name
    harness.drop_later(f"{table}_locks")  # upgrade creates it
    harness.sql(OLD_RAW[harness.backend.server].format(t=table))
    old_rows(harness)
    node = Node("raw", harness.backend, harness)
    url = command_url(harness)
    try:
        before = run("check", "--table", table, "--json", url=url)
        assert before.code == 5
        assert before.json["layout"] == "raw"

        printed = run("upgrade", "--table", table, "--sql", url=url)
        assert printed.code == 0, printed.stderr
        assert "ALTER TABLE" in printed.stdout and "refreshToken" in printed.stdout
        assert "refreshToken" not in _columns(harness, table)  # --sql changes nothing

        done = run("upgrade", "--table", table, "--json", url=url)
        assert done.code == 0, done.stderr
        steps = done.json["steps"]
        assert steps[0] == "widen scope from VARCHAR(255) to VARCHAR(1024)"
        assert {
            "copy onlineAccessInfo into userId",
            "create index on shop",
        } <= set(steps)
        assert any(step.startswith("add column refreshTokenExpires") for step in steps)
        assert steps[-1] == f'create the lock table "{table}_locks"'
        assert "onlineAccessInfo" not in _columns(harness, table)

        after = run("check", "--table", table, "--json", url=url)
        assert (after.code, after.json["layout"], after.json["advice"]) == (0, "raw", [])
        again = run("upgrade", "--table", table, "--json", url=url)
        assert (again.code, again.json["steps"]) == (0, [])

        _both_sides_work(harness, node, old_user_id=42)
    finally:
        node("drop_table")


@pytest.fixture
def prisma_v5(harness: Harness) -> Iterator[tuple[Harness, Node, str | None, str]]:
    """Prisma's v5 table "Session", in a schema (MySQL: database) of the test's own."""
    server = harness.backend.server
    harness.table_name = "Session"
    schema = None if server == "sqlite" else f"p_{uuid.uuid4().hex[:12]}"
    kind = "SCHEMA" if server == "postgresql" else "DATABASE"
    if schema is not None:
        harness.sql(f"CREATE {kind} {schema}")
    assert harness.raw is not None
    with harness.raw.begin() as connection:
        if schema is not None:
            use = "SET search_path TO" if server == "postgresql" else "USE"
            connection.exec_driver_sql(f"{use} {schema}")
        connection.exec_driver_sql(PRISMA_V5[server])
    node = Node("prisma", harness.backend, harness)
    if server == "postgresql":
        node.base["schema"] = schema
    if server == "mysql":
        node.base["url"] = (
            make_url(node.base["url"]).set(database=schema).render_as_string(hide_password=False)
        )
    url = command_url(harness)
    try:
        yield harness, node, schema, url
    finally:
        if schema is not None:
            harness.sql(f"DROP {kind} {schema}{' CASCADE' if kind == 'SCHEMA' else ''}")


def test_upgrade_a_prisma_v5_table(prisma_v5: tuple[Harness, Node, str | None, str]) -> None:
    harness, node, schema, url = prisma_v5
    where = ["--table", "Session"] + (["--schema", schema] if schema else [])
    session = kinds()[2]  # offline, with a refresh token
    with pytest.raises(AssertionError, match="refreshToken"):
        node("store", sessions=[to_spec(session)])  # today's adapter needs the new columns

    before = run("check", *where, "--json", url=url)
    assert (before.code, before.json["layout"]) == (5, "prisma-v5")
    done = run("upgrade", *where, "--json", url=url)
    assert done.code == 0, done.stderr
    *columns, locks = done.json["steps"]
    assert [step.split(" ")[2] for step in columns] == ["refreshToken", "refreshTokenExpires"]
    assert locks.startswith('create the lock table "') and locks.endswith('Session_locks"')
    after = run("check", *where, "--json", url=url)
    assert (after.code, after.json["layout"]) == (0, "prisma-v5")
    _both_sides_work(harness, node, schema=schema)


def _columns(harness: Harness, table: str, schema: str | None = None) -> list[str]:
    return [column["name"] for column in inspect(harness.raw).get_columns(table, schema=schema)]


def _both_sides_work(
    harness: Harness, node: Node, *, old_user_id: int | None = None, schema: str | None = None
) -> None:
    """The storage and the real Node adapter read old rows and each other's new rows."""
    from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage

    adapter = str(node.base["adapter"])
    server = harness.backend.server
    storage: Any = SQLAlchemySessionStorage(
        harness.backend.url(harness.sqlite_path), table=harness.table_name, schema=schema
    )
    if old_user_id is not None:
        old = storage.load_session(f"{SHOP}_{old_user_id}")
        assert old.online_access_info.associated_user.id == old_user_id
        assert node("load", ids=[old.id])["sessions"][0]["onlineAccessInfo"] == {
            "associated_user": {"id": old_user_id}
        }
        long_scope = Session(
            f"offline_long_{SHOP}", SHOP, "", False, scope="read_x," * 140, access_token="t"
        )
        storage.store_session(long_scope)  # 980 characters: too long before the upgrade
        assert storage.load_session(long_scope.id) == long_scope

    sessions = kinds()
    node("store", sessions=[to_spec(s) for s in sessions[:2]])
    for session in sessions[2:]:
        storage.store_session(session)
    expected = [as_stored(adapter, server, s) for s in sessions]
    assert node("load", ids=[s.id for s in sessions], expected=[to_spec(s) for s in expected])[
        "equals"
    ][2:] == [True, adapter != "prisma"]  # Prisma reads NULL user fields as "null"
    for session, wanted in zip(sessions[:2], expected[:2], strict=True):
        assert storage.load_session(session.id).id == wanted.id
    storage.close()
