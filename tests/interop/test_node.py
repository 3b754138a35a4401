"""A shared table, proven against the real npm packages.

For each Node adapter (Drizzle, Prisma, raw) on each dialect, the Node stack creates
its table; then Node writes and Python reads, and Python writes and Node reads, through
every Python driver of that dialect. tests/interop/node/cli.mjs drives the real
packages (pinned in its package-lock.json; install with `npm ci` in that folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from conftest import (
    MYSQL_URL,
    POSTGRESQL_URL,
    REQUIRE_SERVERS,
    SQL_BACKENDS,
    Backend,
    Harness,
    close_harness,
    new_harness,
    require_server,
)
from layouts import as_stored
from node.session_spec import to_spec
from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session
from shopify_sessions._time import from_epoch_ms

NODE_DIR = Path(__file__).parent / "node"
UTC = timezone.utc
SHOP = "interop-shop.myshopify.com"
ADAPTERS = ("drizzle", "prisma", "raw")
CELLS = [(adapter, backend) for adapter in ADAPTERS for backend in SQL_BACKENDS]


def node_missing() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (NODE_DIR / "node_modules" / "@shopify").is_dir():
        return f"the npm packages are not installed: run `npm ci` in {NODE_DIR}"
    return None


@pytest.fixture(params=CELLS, ids=lambda cell: f"{cell[0]}-{cell[1].name}")
async def cell(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, Harness]]:
    adapter, backend = request.param
    reason = node_missing()
    if reason is not None:
        if REQUIRE_SERVERS:
            pytest.fail(f"{reason} (required: SHOPIFY_SESSIONS_REQUIRE_SERVERS or CI is set)")
        pytest.skip(reason)
    require_server(backend.server)
    harness = new_harness(backend, tmp_path)
    kind = "SCHEMA" if backend.server == "postgresql" else "DATABASE"
    if adapter == "prisma":
        harness.table_name = "Session"  # the Prisma client maps its model to one table
        if backend.server != "sqlite":  # in a schema (MySQL: database) of the test's own
            harness.schema = f"p_{uuid.uuid4().hex[:12]}"
            harness.sql(f"CREATE {kind} {harness.schema}")
    node = Node(adapter, backend, harness)
    node("drop_table")
    node("create_table")
    yield adapter, harness
    await close_harness(harness)
    node("drop_table")
    if harness.schema is not None:
        drop = new_harness(backend, tmp_path)  # close_harness disposed of the raw engine
        drop.sql(f"DROP {kind} {harness.schema}" + (" CASCADE" if kind == "SCHEMA" else ""))
        await close_harness(drop)


class Node:
    """Calls tests/interop/node/cli.mjs for one adapter, dialect and table."""

    def __init__(self, adapter: str, backend: Backend, harness: Harness) -> None:
        self.base = {
            "adapter": adapter,
            "dialect": backend.server,
            "url": node_url(backend, harness),
            "table": harness.table_name,
        }
        if harness.schema is not None and backend.server == "postgresql":
            self.base["schema"] = harness.schema
        elif harness.schema is not None:
            self.base["url"] = (
                make_url(self.base["url"])
                .set(database=harness.schema)
                .render_as_string(hide_password=False)
            )

    def __call__(self, op: str, **fields: Any) -> dict[str, Any]:
        request = json.dumps({**self.base, "op": op, **fields})
        done = subprocess.run(
            ["node", str(NODE_DIR / "cli.mjs")],
            input=request,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        if done.returncode != 0:
            raise AssertionError(f"cli.mjs {op} failed: {done.stdout}\n{done.stderr}")
        reply: dict[str, Any] = json.loads(done.stdout)
        return reply


def node_url(backend: Backend, harness: Harness) -> str:
    if backend.server == "sqlite":
        return str(harness.sqlite_path)
    url = make_url(POSTGRESQL_URL if backend.server == "postgresql" else MYSQL_URL)
    scheme = "postgres" if backend.server == "postgresql" else "mysql"
    return url.set(drivername=scheme).render_as_string(hide_password=False)


# --- the sessions -----------------------------------------------------------------------

MS_EXPIRY = from_epoch_ms(1_893_456_000_123)  # 2030-01-01T00:00:00.123Z


def kinds() -> list[Session]:
    """Offline; online with full user info; expiring with refresh token; milliseconds;
    no expiry; unicode names; user id 2^53-1 (the largest a JS number holds exactly)."""
    user = AssociatedUser(
        id=2**53 - 1,
        first_name="Zoë",
        last_name="山田 🦩",
        email="zoë@exämple.com",
        email_verified=True,
        account_owner=False,
        locale="ja-JP",
        collaborator=True,
    )
    return [
        Session(f"offline_{SHOP}", SHOP, "", False, scope="write_products", access_token="shpat_a"),
        Session(
            f"{SHOP}_{2**53 - 1}",
            SHOP,
            "état",
            True,
            scope="read_products,write_orders",
            expires=MS_EXPIRY,
            access_token="shpua_b",
            online_access_info=OnlineAccessInfo(associated_user=user),
        ),
        Session(
            f"offline_refreshing_{SHOP}",
            SHOP,
            "",
            False,
            scope="write_products",
            expires=datetime(2030, 1, 1, 1, 0, tzinfo=UTC),
            access_token="shpat_c",
            refresh_token="shprt_c",
            refresh_token_expires=from_epoch_ms(1_901_232_000_456),
        ),
        Session(
            f"{SHOP}_42",
            SHOP,
            "",
            True,
            scope="read_products",
            expires=from_epoch_ms(1_893_456_789_999),
            access_token="shpua_d",
            online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=42, locale="en")),
        ),
    ]


def as_node_writes(adapter: str, session: Session) -> Session:
    """``session`` as the Node adapter stores it: Prisma writes absent user booleans as false."""
    copy = session.copy()
    if adapter == "prisma" and copy.online_access_info is not None:
        user = copy.online_access_info.associated_user
        for name in ("account_owner", "collaborator", "email_verified"):
            if getattr(user, name) is None:
                setattr(user, name, False)
    return copy


def without_prisma_booleans(adapter: str, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Specs without the user booleans that Prisma writes as false and Python as NULL.

    Prisma's adapter stores an absent accountOwner/collaborator/emailVerified as false;
    the column is nullable and Python (like Drizzle) stores NULL. Both load the same in
    Python; Node shows false for one and nothing for the other.
    """
    if adapter != "prisma":
        return specs
    trimmed = json.loads(json.dumps(specs))
    for spec in trimmed:
        user = spec.get("onlineAccessInfo", {}).get("associated_user", {})
        for name in ("account_owner", "collaborator", "email_verified"):
            if user.get(name) is False:
                del user[name]
    return trimmed


def python_storage(harness: Harness) -> Any:
    return harness.storage(table=harness.table_name, schema=harness.schema)


# --- both directions ----------------------------------------------------------------------


async def test_node_writes_python_reads(cell: tuple[str, Harness]) -> None:
    adapter, harness = cell
    node = Node(adapter, harness.backend, harness)
    sessions = kinds()
    assert node("store", sessions=[to_spec(s) for s in sessions])["stored"] == [True] * 4

    storage = python_storage(harness)
    for session in sessions:
        loaded = await storage.load_session(session.id)
        written = as_node_writes(adapter, session)
        expected = as_stored(adapter, harness.backend.server, written)
        assert loaded == expected, session.id
        if session.online_access_info is not None:
            assert (
                loaded.online_access_info.associated_user
                == expected.online_access_info.associated_user
            )
    found = await storage.find_sessions_by_shop(SHOP)
    assert sorted(s.id for s in found) == sorted(s.id for s in sessions)

    await storage.delete_session(sessions[0].id)
    assert node("load", ids=[sessions[0].id])["sessions"] == [None]
    assert node("delete_many", ids=[s.id for s in sessions[1:]])["result"] is True
    assert await storage.find_sessions_by_shop(SHOP) == []


async def test_python_writes_node_reads(cell: tuple[str, Harness]) -> None:
    adapter, harness = cell
    node = Node(adapter, harness.backend, harness)
    storage = python_storage(harness)
    sessions = kinds()
    ids = [s.id for s in sessions]
    expected = [to_spec(as_stored(adapter, harness.backend.server, s)) for s in sessions]

    # What Node reads from rows Node wrote itself is the yardstick ...
    node("store", sessions=[to_spec(s) for s in sessions])
    own = node("load", ids=ids, expected=expected)
    node("delete_many", ids=ids)
    # ... and rows Python wrote must read the same.
    for session in sessions:
        await storage.store_session(session)
    loaded = node("load", ids=ids, expected=expected)
    assert without_prisma_booleans(adapter, loaded["sessions"]) == without_prisma_booleans(
        adapter, own["sessions"]
    )
    assert loaded["equals"] == own["equals"]
    # Node's equals() holds for every kind, except where the Node adapter cannot round-trip
    # its own rows: Prisma reads NULL user columns as the string "null" (shopify-anchors 1.3).
    assert loaded["equals"] == [True, True, True, adapter != "prisma"]
    if adapter == "prisma":
        partial_user = loaded["sessions"][3]["onlineAccessInfo"]["associated_user"]
        assert partial_user["first_name"] == "null"

    found = node("find", shop=SHOP)["sessions"]
    assert sorted(spec["id"] for spec in found) == sorted(ids)
    node("delete", ids=[sessions[0].id])
    assert await storage.load_session(sessions[0].id) is None
    await storage.delete_sessions(ids[1:])
    assert node("find", shop=SHOP)["sessions"] == []


async def test_an_update_from_one_side_is_seen_by_the_other(cell: tuple[str, Harness]) -> None:
    adapter, harness = cell
    node = Node(adapter, harness.backend, harness)
    storage = python_storage(harness)
    session = kinds()[2]
    node("store", sessions=[to_spec(session)])

    refreshed = session.copy()  # what a token refresh in Python writes
    refreshed.access_token, refreshed.refresh_token = "shpat_new", "shprt_new"
    refreshed.expires = datetime(2030, 1, 1, 2, 0, tzinfo=UTC)
    await storage.store_session(refreshed)
    expected = as_stored(adapter, harness.backend.server, refreshed)
    assert node("load", ids=[session.id], expected=[to_spec(expected)])["equals"] == [True]

    invalidated = expected.copy()  # what invalidateAccessToken does in Node
    invalidated.access_token = None
    node("store", sessions=[to_spec(invalidated)])
    loaded = await storage.load_session(session.id)
    if (adapter, harness.backend.server) == ("raw", "postgresql"):
        # That adapter's upsert sets only the columns present, so Node's own invalidation
        # leaves the old token in the row (shopify-anchors 1.3): Python reads what is there.
        assert loaded.access_token == "shpat_new"
    else:
        assert loaded.access_token is None


# --- the property arrays ------------------------------------------------------------------


async def test_property_arrays_are_what_node_makes(tmp_path: Path) -> None:
    reason = node_missing()
    if reason is not None:
        if REQUIRE_SERVERS:
            pytest.fail(reason)
        pytest.skip(reason)
    backend = next(b for b in SQL_BACKENDS if b.server == "sqlite")
    harness = new_harness(backend, tmp_path)
    node = Node("drizzle", backend, harness)
    sessions = kinds()
    arrays = node("property_arrays", sessions=[to_spec(s) for s in sessions])["arrays"]
    for session, made in zip(sessions, arrays, strict=True):
        assert json.loads(json.dumps(session.to_property_array())) == made["without_user"]
        assert json.loads(json.dumps(session.to_property_array(True))) == made["with_user"]

    requests = [
        {"entries": made[key], "return_user_data": flag}
        for made in arrays
        for key, flag in (("without_user", False), ("with_user", True), ("with_user", False))
    ]
    requests.append(
        {
            "entries": [
                ["ID", "x"],
                ["Shop", "s"],
                ["STATE", "st"],
                ["createdAt", 5],
                ["isonline", "TRUE"],
            ],
            "return_user_data": False,
        }
    )
    from_node = node("from_property_arrays", arrays=requests)["sessions"]
    for request, spec in zip(requests, from_node, strict=True):
        ours = Session.from_property_array(request["entries"], request["return_user_data"])
        mine = to_spec(ours)
        assert {k: v for k, v in mine.items() if k != "extra"} == {
            k: v for k, v in spec.items() if k != "extra"
        }
        assert mine.get("extra", {}) == spec.get("extra", {})
    await close_harness(harness)
