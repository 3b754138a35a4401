"""The Node adapters' tables, read and written from Python: the values as Node writes them.

tests/interop proves the same against the real npm packages; these tests need no Node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import SQL_BACKENDS, Backend, Harness, close_harness, new_harness, require_server
from layouts import LAYOUTS, Layout, as_stored, keeps_milliseconds
from shopify_sessions import AssociatedUser, InvalidSessionError, OnlineAccessInfo, Session

UTC = timezone.utc
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
REFRESH_EXPIRES = datetime(2030, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
CASES = [(b, layout) for b in SQL_BACKENDS for layout in LAYOUTS if layout.server == b.server]


@pytest.fixture(params=CASES, ids=lambda case: f"{case[0].name}-{case[1].adapter}")
async def case(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Harness, Layout]]:
    backend: Backend
    layout: Layout
    backend, layout = request.param
    require_server(backend.server)
    harness = new_harness(backend, tmp_path)
    quote = "`" if backend.server == "mysql" else '"'
    harness.sql(layout.ddl(harness.drop_later(harness.table_name), quote))
    yield harness, layout
    await close_harness(harness)


def stored_form(layout: Layout, column: str, moment: datetime) -> Any:
    """How the Node adapter of ``layout`` writes ``moment`` into ``column``."""
    milliseconds = int(moment.timestamp() * 1000)
    if layout.adapter == "raw":
        return (
            milliseconds
            if keeps_milliseconds(layout.adapter, layout.server, column)
            else milliseconds // 1000
        )
    if layout.server == "sqlite":
        if layout.adapter == "drizzle":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        return milliseconds  # Prisma's native SQLite engine
    naive = moment.replace(tzinfo=None)
    return (
        naive
        if keeps_milliseconds(layout.adapter, layout.server, column)
        else naive.replace(microsecond=0)
    )


def loaded_form(layout: Layout, column: str, moment: datetime) -> datetime:
    return (
        moment
        if keeps_milliseconds(layout.adapter, layout.server, column)
        else moment.replace(microsecond=0)
    )


def offline_session() -> Session:
    return Session(
        "offline_layout.myshopify.com",
        "layout.myshopify.com",
        "",
        False,
        scope="write_products",
        expires=EXPIRES,
        access_token="shpat_offline",
        refresh_token="shprt_refresh",
        refresh_token_expires=REFRESH_EXPIRES,
    )


def online_session() -> Session:
    user = AssociatedUser(
        id=2**53 - 1,
        first_name="Zoë",
        last_name="山田",
        email="zoe@example.com",
        email_verified=True,
        account_owner=False,
        locale="fr",
        collaborator=True,
    )
    return Session(
        f"layout.myshopify.com_{2**53 - 1}",
        "layout.myshopify.com",
        "state",
        True,
        scope="read_products",
        expires=EXPIRES,
        access_token="shpat_online",
        online_access_info=OnlineAccessInfo(associated_user=user),
    )


async def test_python_round_trips_every_kind_of_session(case: tuple[Harness, Layout]) -> None:
    harness, layout = case
    storage = harness.storage(table=harness.table_name)
    bare = Session("offline_bare.myshopify.com", "layout.myshopify.com", "", False)
    for session in (offline_session(), online_session(), bare):
        await storage.store_session(session)
        assert await storage.load_session(session.id) == as_stored(
            layout.adapter, layout.server, session
        )
    found = await storage.find_sessions_by_shop("layout.myshopify.com")
    assert len(found) == 3


async def test_python_writes_rows_the_way_node_does(case: tuple[Harness, Layout]) -> None:
    harness, layout = case
    storage = harness.storage(table=harness.table_name)
    await storage.store_session(offline_session())
    await storage.store_session(online_session())
    q = harness.quote
    rows = harness.sql(
        f"SELECT {q('id')}, {q('expires')}, {q('refreshTokenExpires')}, {q('userId')}, "
        f"{q('isOnline')}, {q('accountOwner')}, {q('collaborator')} "
        f"FROM {q(harness.table_name)} ORDER BY {q('isOnline')}"
    )
    (_, expires, refresh, user_id, is_online, owner, _), online_row = rows
    assert expires == stored_form(layout, "expires", EXPIRES)
    assert refresh == stored_form(layout, "refreshTokenExpires", REFRESH_EXPIRES)
    assert user_id is None
    assert is_online in (False, 0)
    # Prisma writes absent user booleans as false (`|| false`); the others leave NULL.
    assert owner == (False if layout.adapter.startswith("prisma") else None)
    assert owner is None or owner in (False, 0)
    online_user_id, online_owner, online_collaborator = online_row[3], online_row[5], online_row[6]
    assert online_user_id == (b"9007199254740991" if layout.name == "drizzle-sqlite" else 2**53 - 1)
    assert (online_owner, online_collaborator) in ((False, True), (0, 1))


async def test_python_reads_rows_the_way_node_writes_them(case: tuple[Harness, Layout]) -> None:
    harness, layout = case
    q = harness.quote
    user_id: Any = b"42" if layout.name == "drizzle-sqlite" else 42
    columns = ["id", "shop", "state", "isOnline", "scope", "expires", "accessToken", "userId"]
    columns += ["firstName", "email", "accountOwner", "refreshToken", "refreshTokenExpires"]
    values = {
        "id": "node_written",
        "shop": "node.myshopify.com",
        "state": "s",
        "isOnline": True,
        "scope": "read_orders",
        "expires": stored_form(layout, "expires", EXPIRES),
        "accessToken": "shpat_from_node",
        "userId": user_id,
        "firstName": "Node",
        "email": "node@example.com",
        "accountOwner": True,
        "refreshToken": None,
        "refreshTokenExpires": None,
    }
    harness.sql(
        f"INSERT INTO {q(harness.table_name)} ({', '.join(q(c) for c in columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)})",
        **values,
    )
    storage = harness.storage(table=harness.table_name)
    expected_user = AssociatedUser(
        id=42, first_name="Node", email="node@example.com", account_owner=True
    )
    if layout.adapter == "prisma-v5":
        expected_user.collaborator = expected_user.email_verified = False
    expected = Session(
        "node_written",
        "node.myshopify.com",
        "s",
        True,
        scope="read_orders",
        expires=loaded_form(layout, "expires", EXPIRES),
        access_token="shpat_from_node",
        online_access_info=OnlineAccessInfo(associated_user=expected_user),
    )
    loaded = await storage.load_session("node_written")
    assert loaded == expected
    assert loaded.online_access_info.associated_user == expected_user


async def test_dates_past_2038_are_refused_by_32_bit_integer_columns(
    case: tuple[Harness, Layout],
) -> None:
    harness, layout = case
    storage = harness.storage(table=harness.table_name)
    late = offline_session()
    late.expires = datetime(2040, 1, 1, tzinfo=UTC)
    if layout.adapter == "raw" and layout.server != "sqlite":
        with pytest.raises(InvalidSessionError, match="2038-01-19T03:14:07"):
            await storage.store_session(late)
        assert await storage.load_session(late.id) is None
    elif layout.name == "drizzle-mysql":  # TIMESTAMP ends in 2038 as well
        with pytest.raises(InvalidSessionError, match="2038"):
            await storage.store_session(late)
    else:
        await storage.store_session(late)
        assert (await storage.load_session(late.id)).expires == late.expires


async def test_delete_expired_sessions_reads_every_encoding(case: tuple[Harness, Layout]) -> None:
    harness, _ = case
    storage = harness.storage(table=harness.table_name)
    now = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
    day = timedelta(days=1)
    sessions = {
        "expired": dict(expires=now - day),
        "renewable": dict(expires=now - day, refresh_token="r", refresh_token_expires=now + day),
        "dead_refresh": dict(expires=now - day, refresh_token="r", refresh_token_expires=now - day),
        "valid": dict(expires=now + day),
        "never": dict(),
    }
    for id, fields in sessions.items():
        await storage.store_session(Session(id, "purge.myshopify.com", "", False, **fields))
    assert await storage.delete_expired_sessions(now=now, batch_size=2) == 2
    kept = {s.id for s in await storage.find_sessions_by_shop("purge.myshopify.com")}
    assert kept == {"renewable", "valid", "never"}


async def test_the_layout_is_recognised(case: tuple[Harness, Layout]) -> None:
    """The storage writes by the rules of the adapter it recognises; `check` reports it."""
    from sqlalchemy import MetaData, Table

    from shopify_sessions.sqlalchemy._layout import detect_layout

    harness, layout = case
    assert harness.raw is not None
    real = Table(harness.table_name, MetaData(), autoload_with=harness.raw)
    assert detect_layout(real, harness.raw.dialect).value == layout.adapter


async def test_the_default_and_custom_tables_are_told_apart(sql_harness: Harness) -> None:
    from sqlalchemy import Column, MetaData, String, Table

    from shopify_sessions.sqlalchemy._layout import detect_layout

    assert sql_harness.raw is not None
    dialect = sql_harness.raw.dialect
    default = sql_harness.default_table()
    default.create(sql_harness.raw)
    real = Table(sql_harness.table_name, MetaData(), autoload_with=sql_harness.raw)
    assert detect_layout(real, dialect).value == "default"
    # The same columns with a bounded shop are no Node adapter's table.
    custom = Table(
        "x",
        MetaData(),
        *(c._copy() for c in default.columns if c.name != "shop"),
        Column("shop", String(255), nullable=False),
    )
    assert detect_layout(custom, dialect).value == "custom"
