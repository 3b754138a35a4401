"""Tables of the user's choosing, and the checks of the real table at first use."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conftest import Harness
from shopify_sessions import (
    AssociatedUser,
    InvalidSessionError,
    MissingSessionTableError,
    OnlineAccessInfo,
    Session,
    SessionTableSchemaError,
)

UTC = timezone.utc


def sample(id: str = "offline_shop.myshopify.com", **fields: Any) -> Session:
    fields.setdefault("access_token", "shpat_abc")
    fields.setdefault("scope", "read_products")
    fields.setdefault("expires", datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    return Session(id, "shop.myshopify.com", "state", False, **fields)


def online_sample() -> Session:
    user = AssociatedUser(id=42, first_name="Ada", email="ada@example.com", account_owner=True)
    return Session(
        "shop.myshopify.com_42",
        "shop.myshopify.com",
        "state",
        True,
        access_token="shpat_online",
        online_access_info=OnlineAccessInfo(associated_user=user),
    )


async def test_mixed_case_table_name(sql_harness: Harness) -> None:
    name = f"MySession_{sql_harness.table_name}"
    storage = sql_harness.storage(table=sql_harness.default_table(name))
    await storage.create_table()
    session = sample()
    await storage.store_session(session)
    assert await storage.load_session(session.id) == session
    names = inspect(sql_harness.raw).get_table_names()
    assert name in names or name.lower() in names


async def test_schema_qualified_table(server_harness: Harness) -> None:
    schema = "shopify_sessions_test"
    if server_harness.backend.server == "postgresql":
        server_harness.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    else:
        server_harness.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    table = server_harness.default_table(schema=schema)
    storage = server_harness.storage(table=table)
    await storage.create_table()
    session = online_sample()
    await storage.store_session(session)
    assert await storage.load_session(session.id) == session
    assert server_harness.table_name in inspect(server_harness.raw).get_table_names(schema=schema)
    assert server_harness.table_name not in inspect(server_harness.raw).get_table_names()


async def test_schema_option_places_the_default_table(server_harness: Harness) -> None:
    # The default name is fixed ("session"): a schema of this driver's own, so that the
    # drivers of one server, run side by side, never share the table.
    schema = "shopify_sessions_test_" + re.sub(r"\W", "_", server_harness.backend.name)
    if server_harness.backend.server == "postgresql":
        server_harness.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    else:
        server_harness.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    server_harness.drop_later("session", schema)
    storage = server_harness.storage(schema=schema)
    await storage.create_table()
    assert storage.table.name == "session"
    await storage.store_session(sample())
    assert "session" in inspect(server_harness.raw).get_table_names(schema=schema)


async def test_declarative_model_with_extra_columns_left_untouched(sql_harness: Harness) -> None:
    name = sql_harness.drop_later(sql_harness.table_name)

    class Base(DeclarativeBase):
        pass

    class AppSession(Base):
        __tablename__ = name
        id: Mapped[str] = mapped_column(String(255), primary_key=True)
        shop: Mapped[str] = mapped_column(String(255), index=True)
        state: Mapped[str] = mapped_column(Text)
        is_online: Mapped[bool] = mapped_column("isOnline", Boolean, default=False)
        scope: Mapped[str | None] = mapped_column(Text)
        expires: Mapped[datetime | None] = mapped_column(DateTime)
        access_token: Mapped[str | None] = mapped_column("accessToken", Text)
        user_id: Mapped[int | None] = mapped_column("userId", BigInteger)
        first_name: Mapped[str | None] = mapped_column("firstName", Text)
        last_name: Mapped[str | None] = mapped_column("lastName", Text)
        email: Mapped[str | None] = mapped_column(Text)
        account_owner: Mapped[bool | None] = mapped_column("accountOwner", Boolean)
        locale: Mapped[str | None] = mapped_column(String(32))
        collaborator: Mapped[bool | None] = mapped_column(Boolean)
        email_verified: Mapped[bool | None] = mapped_column("emailVerified", Boolean)
        refresh_token: Mapped[str | None] = mapped_column("refreshToken", Text)
        refresh_token_expires: Mapped[datetime | None] = mapped_column(
            "refreshTokenExpires", DateTime
        )
        plan: Mapped[str] = mapped_column(String(32), server_default="free")
        note: Mapped[str | None] = mapped_column(Text)
        created_at: Mapped[datetime] = mapped_column(
            "createdAt", DateTime, server_default=func.now()
        )

    storage = sql_harness.storage(table=AppSession)
    await storage.create_table()
    session = online_sample()
    await storage.store_session(session)
    table = sql_harness.quote(name)
    sql_harness.sql(f"UPDATE {table} SET plan = 'pro', note = 'keep me'")

    session.access_token = "shpat_rotated"
    await storage.store_session(session)
    assert await storage.load_session(session.id) == session
    [(plan, note, created_at)] = sql_harness.sql(
        f"SELECT plan, note, {sql_harness.quote('createdAt')} FROM {table}"
    )
    assert (plan, note) == ("pro", "keep me")
    assert created_at is not None


async def test_table_given_by_name_is_reflected(sql_harness: Harness) -> None:
    sql_harness.default_table().create(sql_harness.raw)
    storage = sql_harness.storage(table=sql_harness.table_name)
    with pytest.raises(MissingSessionTableError, match="check_table"):
        storage.table  # noqa: B018 - not reflected before the first use
    session = online_sample()
    await storage.store_session(session)
    assert await storage.load_session(session.id) == session
    assert storage.table.name == sql_harness.table_name


async def test_create_table_is_idempotent_and_indexes_shop(sql_harness: Harness) -> None:
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    await storage.create_table()
    indexes = inspect(sql_harness.raw).get_indexes(sql_harness.table_name)
    assert [index["column_names"] for index in indexes] == [["shop"]]


async def test_missing_table_says_how_to_create_it(sql_harness: Harness) -> None:
    storage = sql_harness.storage(table=sql_harness.default_table())
    with pytest.raises(MissingSessionTableError, match="create_table"):
        await storage.load_session("any")
    await storage.create_table()
    assert await storage.load_session("any") is None


async def test_missing_table_given_by_name(sql_harness: Harness) -> None:
    storage = sql_harness.storage(table=sql_harness.table_name)
    with pytest.raises(MissingSessionTableError):
        await storage.store_session(sample())


async def test_schema_error_lists_every_problem_at_once(sql_harness: Harness) -> None:
    metadata = MetaData()
    Table(
        sql_harness.drop_later(sql_harness.table_name),
        metadata,
        Column("id", String(255), nullable=False),  # neither primary key nor unique
        Column("shop", Text, nullable=False),
        Column("state", Text, nullable=False),
        Column("isOnline", Text, nullable=False),  # cannot hold a boolean
        Column("scope", Text),
        Column("expires", DateTime),
        Column("accessToken", Text),
        Column("userId", BigInteger),
        Column("firstName", Text),
        Column("lastName", Text),
        Column("email", Text),
        Column("accountOwner", Boolean),
        Column("locale", Text),
        Column("collaborator", Boolean),
        Column("emailVerified", Boolean),
        Column("mandatory", Integer, nullable=False),  # extra, NOT NULL, no default
    ).create(sql_harness.raw)
    storage = sql_harness.storage(table=sql_harness.table_name)
    with pytest.raises(SessionTableSchemaError) as raised:
        await storage.load_session("any")
    problems = "\n".join(raised.value.problems)
    assert "refreshToken, refreshTokenExpires" in problems
    assert "id is neither the primary key nor unique" in problems
    assert "isOnline" in problems
    assert "mandatory" in problems
    assert len(raised.value.problems) == 4
    assert all(problem in str(raised.value) for problem in raised.value.problems)


async def test_declared_table_that_differs_from_the_database(sql_harness: Harness) -> None:
    real = sql_harness.default_table()
    real.c.userId.type = Integer() if sql_harness.backend.server != "sqlite" else real.c.userId.type
    real.c.expires.type = Integer()
    real.create(sql_harness.raw)
    storage = sql_harness.storage(table=sql_harness.default_table())
    with pytest.raises(SessionTableSchemaError) as raised:
        await storage.check_table()
    problems = "\n".join(raised.value.problems)
    assert "expires" in problems
    if sql_harness.backend.server != "sqlite":
        assert "BIGINT" in problems


async def test_short_database_column_refuses_long_values_before_sending(
    sql_harness: Harness,
) -> None:
    real = sql_harness.default_table()
    real.c.scope.type = String(20)
    real.create(sql_harness.raw)
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.store_session(sample(scope="read_products"))
    with pytest.raises(InvalidSessionError, match="scope"):
        await storage.store_session(sample(scope="read_products,write_products"))
    assert (await storage.load_session(sample().id)).scope == "read_products"


async def test_rows_are_written_the_way_drizzle_writes_them(sql_harness: Harness) -> None:
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    session = online_sample()
    session.expires = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    session.access_token = None
    await storage.store_session(session)
    q = sql_harness.quote
    [row] = sql_harness.sql(
        f"SELECT {q('expires')}, {q('userId')}, {q('accessToken')}, {q('isOnline')}, "
        f"{q('accountOwner')}, {q('collaborator')} FROM {q(sql_harness.table_name)}"
    )
    expires, user_id, access_token, is_online, account_owner, collaborator = row
    server = sql_harness.backend.server
    if server == "sqlite":
        assert expires == "2030-01-02T03:04:05.678Z"
        assert user_id == b"42"
    else:
        assert expires == datetime(2030, 1, 2, 3, 4, 5, 678000)  # naive UTC
        assert user_id == 42
    assert access_token == ""
    assert bool(is_online) is True
    assert bool(account_owner) is True
    assert collaborator is None


async def test_timestamp_with_time_zone_column(server_harness: Harness) -> None:
    table = server_harness.default_table()
    table.c.expires.type = DateTime(timezone=True)
    storage = server_harness.storage(table=table)
    await storage.create_table()
    session = sample()
    await storage.store_session(session)
    loaded = await storage.load_session(session.id)
    if server_harness.backend.server == "mysql":
        # MySQL has no zone-aware type: this is a DATETIME without fractional seconds.
        assert loaded.expires == session.expires.replace(microsecond=0)
        return
    assert loaded.expires == session.expires
    q = server_harness.quote
    [(epoch,)] = server_harness.sql(
        f"SELECT extract(epoch from {q('expires')}) FROM {q(server_harness.table_name)}"
    )
    assert float(epoch) == session.expires.timestamp()


async def test_a_transactional_engine_of_the_users(sql_harness: Harness) -> None:
    storage = sql_harness.engine_storage(table=sql_harness.default_table())
    await storage.create_table()
    sessions = [sample(f"user_engine_{i}") for i in range(1_200)]
    for session in sessions[:3]:
        await storage.store_session(session)
    assert await storage.load_session(sessions[0].id) == sessions[0]
    assert len(await storage.find_sessions_by_shop("shop.myshopify.com")) == 3
    # More than one DELETE statement: one transaction on this engine.
    assert await storage.delete_sessions([s.id for s in sessions]) is True
    assert await storage.find_sessions_by_shop("shop.myshopify.com") == []
