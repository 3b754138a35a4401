"""Each way a newcomer names a table, from a fresh database, on every SQL backend: the first
error names a way out that works when followed to the letter, and create_table() makes
the default layout under the name (and schema) given."""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import MetaData, inspect
from sqlalchemy.orm import DeclarativeBase

from conftest import Harness, unique_table_name
from shopify_sessions import MissingSessionTableError, Session
from shopify_sessions.sqlalchemy import COLUMNS, session_table

SESSION = Session("offline_newcomer.myshopify.com", "newcomer.myshopify.com", "", False)
SESSION.access_token = "shpat_newcomer"


@pytest.fixture
async def schema(sql_harness: Harness) -> AsyncIterator[str]:
    """A schema of the test's own: a PostgreSQL schema, a MySQL database, SQLite's main."""
    server = sql_harness.backend.server
    if server == "sqlite":
        yield "main"
        return
    name = unique_table_name("schema")
    create, drop = (
        (f"CREATE SCHEMA {name}", f"DROP SCHEMA IF EXISTS {name} CASCADE")
        if server == "postgresql"
        else (f"CREATE DATABASE {name}", f"DROP DATABASE IF EXISTS {name}")
    )
    sql_harness.sql(create)
    try:
        yield name
    finally:
        sql_harness.sql(drop)


async def works(storage: Any) -> None:
    await storage.store_session(SESSION)
    assert await storage.load_session(SESSION.id) == SESSION


def default_layout(harness: Harness, name: str, schema: str | None) -> None:
    """The table in the database is the default one: every column, the index on shop."""
    assert harness.raw is not None
    inspector = inspect(harness.raw)
    assert [c["name"] for c in inspector.get_columns(name, schema=schema)] == list(COLUMNS)
    indexes = inspector.get_indexes(name, schema=schema)
    assert [(i["name"], i["column_names"]) for i in indexes] == [(f"{name}_shop_idx", ["shop"])]


async def missing(operation: Any) -> str:
    with pytest.raises(MissingSessionTableError) as raised:
        await operation
    message = str(raised.value)
    assert "create_table()" in message, message
    assert "check_table() first" not in message and "create it first" not in message
    return message


@pytest.mark.parametrize("with_schema", [False, True], ids=["name", "name-and-schema"])
async def test_a_table_by_name_is_created_with_the_default_layout(
    sql_harness: Harness, schema: str, with_schema: bool
) -> None:
    name, where = sql_harness.drop_later(unique_table_name("newcomer")), {}
    if with_schema:
        where = {"schema": schema}
    storage = sql_harness.storage(table=name, **where)
    with pytest.raises(MissingSessionTableError) as raised:
        storage.table  # noqa: B018 - not read from the database yet
    assert "create_table()" in str(raised.value)
    assert "check_table() first" not in str(raised.value)
    await missing(storage.check_table())
    message = await missing(storage.load_session(SESSION.id))
    assert name in message and (not with_schema or schema in message)

    await storage.create_table()
    await works(storage)
    default_layout(sql_harness, name, where.get("schema"))
    assert storage.table.name == name and storage.table.schema == where.get("schema")


async def test_the_migration_the_error_names_creates_the_table(
    sql_harness: Harness, schema: str
) -> None:
    name = sql_harness.drop_later(unique_table_name("newcomer"))
    storage = sql_harness.storage(table=name, schema=schema)
    message = await missing(storage.load_session(SESSION.id))
    [call] = re.findall(r"session_table\(metadata[^)]*\)", message)
    assert call == f"session_table(metadata, {name!r}, schema={schema!r})"
    node = ast.parse(call, mode="eval").body
    assert isinstance(node, ast.Call)
    metadata = MetaData()  # as a migration would: the call, its arguments as written
    session_table(
        metadata,
        *(ast.literal_eval(argument) for argument in node.args[1:]),
        **{k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg},
    )
    assert sql_harness.raw is not None
    metadata.create_all(sql_harness.raw)
    await works(storage)


async def test_the_default_table_in_a_schema(sql_harness: Harness, schema: str) -> None:
    storage = sql_harness.storage(schema=schema)
    message = await missing(storage.load_session(SESSION.id))
    assert f"session_table(metadata, schema={schema!r})" in message
    await storage.create_table()
    await works(storage)
    default_layout(sql_harness, "session", schema)


async def test_a_model_or_a_table_of_ones_own(sql_harness: Harness) -> None:
    class Base(DeclarativeBase):
        pass

    class ShopSession(Base):
        __table__ = session_table(Base.metadata, sql_harness.drop_later(unique_table_name("m")))

    table = session_table(MetaData(), sql_harness.drop_later(unique_table_name("t")))
    for declared in (ShopSession, table):
        storage = sql_harness.storage(table=declared)
        message = await missing(storage.load_session(SESSION.id))
        assert "your own migrations" in message
        await storage.create_table()
        await works(storage)


async def test_a_name_of_an_existing_table_keeps_its_layout(sql_harness: Harness) -> None:
    """create_table() on a name leaves an existing table alone, whatever its layout."""
    name = unique_table_name("existing")
    sql_harness.default_table(name).create(sql_harness.raw)
    sql_harness.sql(f"ALTER TABLE {sql_harness.quote(name)} ADD COLUMN plan TEXT")
    storage = sql_harness.storage(table=name)
    await storage.create_table()
    await works(storage)
    assert "plan" in [c.name for c in storage.table.columns]
    assert sql_harness.sql(f"SELECT COUNT(*) FROM {sql_harness.quote(name)}") == [(1,)]
