"""Row parity: for a given Session, Python writes the row the real Node adapter writes.

For every Node layout on every dialect, and through every Python driver: the real npm
adapter stores a set of sessions and the raw rows are read with ``SELECT *``; the rows
are deleted; Python stores the same sessions; its raw rows must be equal to Node's,
column for column. The sessions cover what the adapters' own rules touch: empty
strings (Drizzle's and Prisma's ``|| null``), absent user fields, false booleans
(Prisma's ``|| false``), user id 0, a missing access token, and the usual kinds.

Prisma's table is always "Session": each test puts it in a PostgreSQL schema or a
MySQL database of its own, so that tests running at the same time do not share it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text

from conftest import (
    REQUIRE_SERVERS,
    SQL_BACKENDS,
    Harness,
    close_harness,
    new_harness,
    require_server,
)
from layouts import LAYOUTS
from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session
from test_node import SHOP, Node, kinds, node_missing, to_spec

UTC = timezone.utc
ADAPTERS = ("drizzle", "prisma", "prisma-v5", "raw")
CELLS = [
    (adapter, backend)
    for adapter in ADAPTERS
    for backend in SQL_BACKENDS
    if adapter != "prisma-v5" or backend.server == "postgresql"
]


def parity_sessions() -> list[Session]:
    """The usual kinds, and the values the adapters' write rules treat specially."""
    empty_user = AssociatedUser(
        id=1001,
        first_name="",
        last_name="",
        email="",
        locale="",
        account_owner=False,
        collaborator=False,
        email_verified=False,
    )
    return [
        *kinds(),
        Session(
            f"{SHOP}_1001",
            SHOP,
            "",
            True,
            scope="",
            expires=datetime(2030, 6, 1, tzinfo=UTC),
            access_token="shpua_e",
            refresh_token="",
            online_access_info=OnlineAccessInfo(associated_user=empty_user),
        ),
        Session(
            f"{SHOP}_7",
            SHOP,
            "st",
            True,
            access_token="shpua_f",
            online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=7)),
        ),
        Session(
            f"{SHOP}_0",
            SHOP,
            "",
            True,
            scope="read_orders",
            access_token="shpua_g",
            online_access_info=OnlineAccessInfo(
                associated_user=AssociatedUser(id=0, first_name="Zero", account_owner=True)
            ),
        ),
        Session(f"offline_bare_{SHOP}", SHOP, "state", False),
    ]


@dataclass
class Place:
    """Where one test's table lives: its name, schema (or MySQL database), and Node's URL."""

    adapter: str
    harness: Harness
    table: str
    schema: str | None
    node: Node

    def rows(self) -> list[dict[str, Any]]:
        qualified = self.harness.quote(self.table)
        if self.schema is not None:
            qualified = f"{self.harness.quote(self.schema)}.{qualified}"
        return [
            dict(row._mapping) for row in self.harness.sql(f"SELECT * FROM {qualified} ORDER BY id")
        ]

    def clear(self) -> None:
        qualified = self.harness.quote(self.table)
        if self.schema is not None:
            qualified = f"{self.harness.quote(self.schema)}.{qualified}"
        self.harness.sql(f"DELETE FROM {qualified}")


@pytest.fixture(params=CELLS, ids=lambda cell: f"{cell[0]}-{cell[1].name}")
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    adapter, backend = request.param
    reason = node_missing()
    if reason is not None:
        if REQUIRE_SERVERS:
            pytest.fail(f"{reason} (required: SHOPIFY_SESSIONS_REQUIRE_SERVERS or CI is set)")
        pytest.skip(reason)
    require_server(backend.server)
    harness = new_harness(backend, tmp_path)
    prisma = adapter.startswith("prisma")
    schema = None
    if prisma:
        harness.table_name = "Session"
        if backend.server != "sqlite":
            schema = f"p_{uuid.uuid4().hex[:12]}"
            kind = "SCHEMA" if backend.server == "postgresql" else "DATABASE"
            harness.sql(f"CREATE {kind} {schema}")
    node = Node("prisma" if prisma else adapter, backend, harness)
    if schema is not None and backend.server == "postgresql":
        node.base["schema"] = schema
    if schema is not None and backend.server == "mysql":
        url = make_url(node.base["url"]).set(database=schema)
        node.base["url"] = url.render_as_string(hide_password=False)
    if adapter == "prisma" and backend.server == "sqlite":
        # What Prisma's native engine writes (integer milliseconds); its driver adapters
        # default to ISO text instead, which the storage reads but does not write.
        node.base["timestamp_format"] = "unixepoch-ms"
    if adapter == "raw":
        node("drop_table")
        node("create_table")  # the adapter's own createTable and migrations
    else:
        layout = next(x for x in LAYOUTS if x.name == f"{adapter}-{backend.server}")
        assert harness.raw is not None
        with harness.raw.begin() as connection:
            if schema is not None:
                use = "SET search_path TO" if backend.server == "postgresql" else "USE"
                connection.execute(text(f"{use} {schema}"))
            quote = "`" if backend.server == "mysql" else '"'
            connection.execute(text(layout.ddl(harness.table_name, quote)))
        if schema is None:
            harness.drop_later(harness.table_name)
    yield Place(adapter, harness, harness.table_name, schema, node)
    if adapter == "raw":
        node("drop_table")
    if schema is not None:
        kind = "SCHEMA" if backend.server == "postgresql" else "DATABASE"
        harness.sql(f"DROP {kind} {schema}{' CASCADE' if kind == 'SCHEMA' else ''}")
    await close_harness(harness)


async def test_python_writes_the_row_node_writes(place: Place) -> None:
    sessions = parity_sessions()
    assert place.node("store", sessions=[to_spec(s) for s in sessions])["stored"] == [True] * len(
        sessions
    )
    node_rows = place.rows()
    assert len(node_rows) == len(sessions)
    place.clear()
    assert place.rows() == []

    storage = place.harness.storage(table=place.table, schema=place.schema)
    for session in sessions:
        await storage.store_session(session)
    python_rows = place.rows()

    differences = [
        f"{node_row['id']}.{column}: node {node_row[column]!r}, python {python_row.get(column)!r}"
        for node_row, python_row in zip(node_rows, python_rows, strict=True)
        for column in node_row
        if python_row.get(column) != node_row[column]
        or type(python_row.get(column)) is not type(node_row[column])
    ]
    assert differences == []
    assert [list(row) for row in python_rows] == [list(row) for row in node_rows]


def test_the_cells_cover_every_layout_and_dialect() -> None:
    """A parity test that silently lost a layout or a dialect would prove less than it says."""
    covered = {(adapter, backend.server) for adapter, backend in CELLS}
    assert covered == {
        *((a, s) for a in ("drizzle", "prisma", "raw") for s in ("postgresql", "mysql", "sqlite")),
        ("prisma-v5", "postgresql"),
    }
    assert {backend.name for _, backend in CELLS} == {b.name for b in SQL_BACKENDS}
