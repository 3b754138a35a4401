"""The I/O-free core of SQL session storage: codecs, schema checks, upserts, row mapping.

Every test here compiles against dialect objects; none needs a database.
"""

from __future__ import annotations

import contextlib
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    exc,
    func,
)
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import SchemaItem

from shopify_sessions import (
    AssociatedUser,
    InvalidSessionError,
    MissingSessionTableError,
    OnlineAccessInfo,
    Session,
    SessionStorageError,
    SessionTableSchemaError,
    StorageConflictError,
    StorageOperationError,
    StorageUnavailableError,
    UnsupportedDialectError,
)
from shopify_sessions.sqlalchemy import COLUMNS, session_table
from shopify_sessions.sqlalchemy._codecs import (
    BooleanCodec,
    Codec,
    DateTimeCodec,
    DigitsUserIdCodec,
    EpochDateTimeCodec,
    IsoTextDateTimeCodec,
    TextCodec,
    UserIdCodec,
    codec_for,
)
from shopify_sessions.sqlalchemy._core import IDS_COUNTS, SessionTableCore
from shopify_sessions.sqlalchemy._schema import plan_columns
from shopify_sessions.sqlalchemy._translate import (
    FAILURES,
    connect_failure,
    is_conflict,
    statement_failure,
)
from shopify_sessions.sqlalchemy._upsert import build_upsert, check_dialect

UTC = timezone.utc
DIALECTS: dict[str, Dialect] = {
    "postgresql": postgresql.dialect(),
    "mysql": mysql.dialect(),
    "sqlite": sqlite.dialect(),
}
ALL_DIALECTS = pytest.mark.parametrize("dialect_name", list(DIALECTS))
NON_ID_COLUMNS = [name for name in COLUMNS if name != "id"]
SECRET = "shpat_SECRET_token_value"
MYSQL_TIMESTAMP_RANGE = (
    datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC),
)
MYSQL_DATETIME_RANGE = (
    datetime(1000, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
)


# --- helpers -----------------------------------------------------------------


def default_core(dialect_name: str) -> SessionTableCore:
    return SessionTableCore(session_table(MetaData()), DIALECTS[dialect_name])


def default_column(name: str) -> Column[Any]:
    return session_table(MetaData()).c[name]


def generic_columns() -> dict[str, Column[Any]]:
    """A valid session table's columns in portable types, by name."""
    return {
        "id": Column("id", Text(), primary_key=True),
        "shop": Column("shop", Text(), nullable=False),
        "state": Column("state", Text(), nullable=False),
        "isOnline": Column("isOnline", Boolean(), nullable=False),
        "scope": Column("scope", Text()),
        "expires": Column("expires", DateTime()),
        "accessToken": Column("accessToken", Text()),
        "userId": Column("userId", BigInteger()),
        "firstName": Column("firstName", Text()),
        "lastName": Column("lastName", Text()),
        "email": Column("email", Text()),
        "accountOwner": Column("accountOwner", Boolean()),
        "locale": Column("locale", Text()),
        "collaborator": Column("collaborator", Boolean()),
        "emailVerified": Column("emailVerified", Boolean()),
        "refreshToken": Column("refreshToken", Text()),
        "refreshTokenExpires": Column("refreshTokenExpires", DateTime()),
    }


def make_table(*items: SchemaItem, omit: tuple[str, ...] = ()) -> Table:
    """A generic session table; a Column in ``items`` named like a session column replaces it,
    any other item (extra column, constraint, index) is added."""
    columns = generic_columns()
    extra: list[SchemaItem] = []
    for item in items:
        if isinstance(item, Column) and item.name in columns:
            columns[item.name] = item
        else:
            extra.append(item)
    kept = [column for name, column in columns.items() if name not in omit]
    return Table("session", MetaData(), *kept, *extra)


def column_codec(column: Column[Any], dialect_name: str) -> Codec:
    codec = codec_for(column, DIALECTS[dialect_name])
    assert isinstance(codec, Codec), codec
    return codec


def column_problem(column: Column[Any], dialect_name: str) -> str:
    problem = codec_for(column, DIALECTS[dialect_name])
    assert isinstance(problem, str), problem
    return problem


def compiled(core: SessionTableCore) -> str:
    """The upsert as it is executed: compiled for the keys of its parameters."""
    keys = list(core.store_parameters(online_session()))
    return str(core.upsert.compile(dialect=core.dialect, column_keys=keys))


def quote(dialect_name: str, name: str) -> str:
    return DIALECTS[dialect_name].identifier_preparer.quote(name)


def insert_columns(sql: str) -> list[str]:
    return sql.split(" (", 1)[1].split(") VALUES", 1)[0].split(", ")


def set_assignments(sql: str, dialect_name: str) -> list[str]:
    marker = " ON DUPLICATE KEY UPDATE " if dialect_name == "mysql" else " DO UPDATE SET "
    assert marker in sql
    return sql.split(marker, 1)[1].split(", ")


def expected_assignment(dialect_name: str, name: str) -> str:
    quoted = quote(dialect_name, name)
    if dialect_name == "mysql":
        return f"{quoted} = VALUES({quoted})"
    return f"{quoted} = excluded.{quoted}"


def online_session(**changes: Any) -> Session:
    values: dict[str, Any] = {
        "scope": "write_products,read_orders",
        "expires": datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "access_token": SECRET,
        "online_access_info": OnlineAccessInfo(
            associated_user=AssociatedUser(
                id=42,
                first_name="Ada",
                last_name="Lovelace",
                email="ada@example.com",
                email_verified=True,
                account_owner=False,
                locale="en",
                collaborator=True,
            )
        ),
        **changes,
    }
    return Session("shop.myshopify.com_42", "shop.myshopify.com", "state-nonce", True, **values)


def offline_session() -> Session:
    return Session(
        "offline_shop.myshopify.com",
        "shop.myshopify.com",
        "",
        False,
        scope="read_products",
        access_token=SECRET,
        refresh_token="shprt_refresh",
        refresh_token_expires=datetime(2031, 1, 1, tzinfo=UTC),
    )


def row_of(core: SessionTableCore, params: dict[str, Any]) -> list[Any]:
    return [params[column.key] for column in core.select_by_id.selected_columns]


def is_utc(value: datetime) -> bool:
    return value.utcoffset() == timedelta(0)


def operational_error(*, connection_invalidated: bool = False) -> exc.OperationalError:
    return exc.OperationalError(
        "SELECT id FROM session WHERE secret",
        {"accessToken": SECRET},
        Exception("boom"),
        connection_invalidated=connection_invalidated,
    )


# --- 1. the upsert -------------------------------------------------------------


@ALL_DIALECTS
def test_upsert_inserts_every_session_column(dialect_name: str) -> None:
    sql = compiled(default_core(dialect_name))
    assert sql.startswith("INSERT INTO session (")
    assert insert_columns(sql) == [quote(dialect_name, name) for name in COLUMNS]


@pytest.mark.parametrize("dialect_name", ["postgresql", "sqlite"])
def test_upsert_on_conflict_id_sets_every_other_column_from_excluded(dialect_name: str) -> None:
    sql = compiled(default_core(dialect_name))
    assert " ON CONFLICT (id) DO UPDATE SET " in sql
    assert set_assignments(sql, dialect_name) == [
        expected_assignment(dialect_name, name) for name in NON_ID_COLUMNS
    ]


def test_upsert_mysql_on_duplicate_key_sets_every_other_column_from_values() -> None:
    sql = compiled(default_core("mysql"))
    assert "ON CONFLICT" not in sql
    assert set_assignments(sql, "mysql") == [
        expected_assignment("mysql", name) for name in NON_ID_COLUMNS
    ]


@ALL_DIALECTS
def test_upsert_never_sets_id(dialect_name: str) -> None:
    assignments = set_assignments(compiled(default_core(dialect_name)), dialect_name)
    assert not [a for a in assignments if a.startswith(f"{quote(dialect_name, 'id')} =")]


@ALL_DIALECTS
def test_upsert_leaves_extra_user_columns_alone(dialect_name: str) -> None:
    table = session_table(MetaData())
    table.append_column(Column("createdAt", DateTime(), server_default=func.now()))
    sql = compiled(SessionTableCore(table, DIALECTS[dialect_name]))
    assert "createdAt" not in sql
    assert insert_columns(sql) == [quote(dialect_name, name) for name in COLUMNS]
    assert len(set_assignments(sql, dialect_name)) == len(NON_ID_COLUMNS)


@ALL_DIALECTS
def test_upsert_sets_a_column_whose_key_differs_from_its_name(dialect_name: str) -> None:
    table = make_table(Column("isOnline", Boolean(), key="is_online", nullable=False))
    core = SessionTableCore(table, DIALECTS[dialect_name])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sql = compiled(core)
    assert expected_assignment(dialect_name, "isOnline") in set_assignments(sql, dialect_name)
    assert [str(w.message) for w in caught] == []


def test_id_column_whose_key_differs_from_its_name_gives_no_untyped_error() -> None:
    table = make_table(Column("id", Text(), key="session_id", primary_key=True))
    with contextlib.suppress(SessionStorageError):
        SessionTableCore(table, DIALECTS["sqlite"])


@pytest.mark.parametrize("dialect_name", ["mssql", "oracle", ""])
def test_check_dialect_refuses_unsupported_dialects(dialect_name: str) -> None:
    with pytest.raises(UnsupportedDialectError, match="supported: postgresql, mysql"):
        check_dialect(dialect_name)


@pytest.mark.parametrize("dialect_name", ["postgresql", "mysql", "mariadb", "sqlite"])
def test_check_dialect_accepts_supported_dialects(dialect_name: str) -> None:
    check_dialect(dialect_name)


def test_build_upsert_refuses_unsupported_dialect() -> None:
    table = session_table(MetaData())
    with pytest.raises(UnsupportedDialectError, match="'mssql'"):
        build_upsert(table, list(table.columns), "mssql")


def test_core_refuses_unsupported_dialect() -> None:
    with pytest.raises(UnsupportedDialectError):
        SessionTableCore(session_table(MetaData()), mssql.dialect())


# --- 2. codec_for ----------------------------------------------------------------


def test_codec_default_expires_postgresql_is_naive_datetime() -> None:
    codec = column_codec(default_column("expires"), "postgresql")
    assert type(codec) is DateTimeCodec
    assert (codec.aware, codec.whole_seconds, codec.low, codec.high) == (False, False, None, None)


def test_codec_default_expires_mysql_is_datetime3() -> None:
    codec = column_codec(default_column("expires"), "mysql")
    assert type(codec) is DateTimeCodec
    assert (codec.aware, codec.whole_seconds) == (False, False)
    assert (codec.low, codec.high) == MYSQL_DATETIME_RANGE


def test_codec_default_expires_sqlite_is_iso_text() -> None:
    codec = column_codec(default_column("refreshTokenExpires"), "sqlite")
    assert type(codec) is IsoTextDateTimeCodec


@pytest.mark.parametrize("dialect_name", ["postgresql", "mysql"])
def test_codec_default_user_id_is_bigint(dialect_name: str) -> None:
    codec = column_codec(default_column("userId"), dialect_name)
    assert type(codec) is UserIdCodec
    assert codec.limit == 2**63 - 1


def test_codec_default_user_id_sqlite_is_digits_blob() -> None:
    codec = column_codec(default_column("userId"), "sqlite")
    assert type(codec) is DigitsUserIdCodec
    assert codec.as_bytes is True


def test_codec_postgresql_timestamptz_is_aware() -> None:
    codec = column_codec(Column("expires", DateTime(timezone=True)), "postgresql")
    assert isinstance(codec, DateTimeCodec)
    assert codec.aware is True


def test_codec_mysql_timestamp_has_timestamp_range_and_whole_seconds() -> None:
    codec = column_codec(Column("expires", mysql.TIMESTAMP()), "mysql")
    assert isinstance(codec, DateTimeCodec)
    assert (codec.low, codec.high) == MYSQL_TIMESTAMP_RANGE
    assert codec.whole_seconds is True
    assert codec.aware is False


def test_codec_mysql_datetime_without_fsp_has_whole_seconds() -> None:
    codec = column_codec(Column("expires", mysql.DATETIME()), "mysql")
    assert isinstance(codec, DateTimeCodec)
    assert codec.whole_seconds is True
    assert (codec.low, codec.high) == MYSQL_DATETIME_RANGE


@pytest.mark.parametrize("dialect_name", ["postgresql", "mysql"])
def test_codec_32_bit_user_id_is_a_problem(dialect_name: str) -> None:
    problem = column_problem(Column("userId", Integer()), dialect_name)
    assert problem.startswith("userId is INTEGER")
    assert "BIGINT" in problem


def test_codec_integer_user_id_on_sqlite_is_64_bit() -> None:
    codec = column_codec(Column("userId", Integer()), "sqlite")
    assert type(codec) is UserIdCodec
    assert codec.limit == 2**63 - 1


def test_codec_not_null_user_id_is_a_problem() -> None:
    problem = column_problem(Column("userId", BigInteger(), nullable=False), "postgresql")
    assert "userId is NOT NULL" in problem


@ALL_DIALECTS
def test_codec_text_is_online_is_a_problem(dialect_name: str) -> None:
    problem = column_problem(Column("isOnline", Text(), nullable=False), dialect_name)
    assert problem.startswith("isOnline is ")
    assert "boolean" in problem


def test_codec_problem_names_a_postgresql_text_column_text() -> None:
    problem = column_problem(Column("isOnline", Text(), nullable=False), "postgresql")
    assert problem == "isOnline is TEXT, which cannot hold a boolean"


def test_codec_mysql_tinyint_boolean_is_int_codec() -> None:
    table = make_table(Column("isOnline", mysql.TINYINT(1), nullable=False))
    codec = column_codec(table.c.isOnline, "mysql")
    assert type(codec) is BooleanCodec
    assert codec.as_int is True


def test_codec_boolean_is_bool_codec() -> None:
    codec = column_codec(default_column("accountOwner"), "mysql")
    assert type(codec) is BooleanCodec
    assert codec.as_int is False


@ALL_DIALECTS
def test_codec_not_null_expires_is_a_problem(dialect_name: str) -> None:
    problem = column_problem(Column("expires", DateTime(), nullable=False), dialect_name)
    assert "expires is NOT NULL" in problem


@ALL_DIALECTS
def test_codec_integer_expires_is_epoch_milliseconds(dialect_name: str) -> None:
    codec = column_codec(Column("expires", BigInteger()), dialect_name)
    assert type(codec) is EpochDateTimeCodec
    assert codec.unit_ms == 1


# --- 3. codec behaviour -----------------------------------------------------------


def test_text_codec_refuses_too_long_value_without_showing_it() -> None:
    codec = TextCodec("accessToken", optional=True, length=10, forbid_nul=False, not_null=False)
    value = "shpat_" + "x" * 10
    with pytest.raises(InvalidSessionError) as raised:
        codec.encode(value)
    assert "accessToken" in str(raised.value)
    assert value not in str(raised.value)
    assert "shpat" not in str(raised.value)


def test_text_codec_accepts_value_of_exactly_the_length() -> None:
    codec = TextCodec("scope", optional=True, length=5, forbid_nul=False, not_null=False)
    assert codec.encode("abcde") == "abcde"


@pytest.mark.parametrize(
    ("dialect_name", "refused"), [("postgresql", True), ("mysql", False), ("sqlite", False)]
)
def test_text_codec_refuses_nul_on_postgresql_only(dialect_name: str, refused: bool) -> None:
    codec = column_codec(Column("scope", Text()), dialect_name)
    value = "read\x00write"
    if refused:
        with pytest.raises(InvalidSessionError, match="NUL"):
            codec.encode(value)
    else:
        assert codec.encode(value) == value


@pytest.mark.parametrize("value", [1, b"bytes", ["list"]])
def test_text_codec_refuses_non_str(value: object) -> None:
    codec = TextCodec("scope", optional=True, length=None, forbid_nul=False, not_null=False)
    with pytest.raises(InvalidSessionError, match="scope must be a str"):
        codec.encode(value)


def test_text_codec_required_refuses_none() -> None:
    codec = column_codec(default_column("shop"), "postgresql")
    with pytest.raises(InvalidSessionError, match="shop is required"):
        codec.encode(None)


def test_not_null_optional_text_stores_none_as_empty_string() -> None:
    codec = column_codec(default_column("accessToken"), "postgresql")
    assert codec.encode(None) == ""
    assert codec.decode("") is None
    assert codec.decode("tok") == "tok"


def test_nullable_text_keeps_empty_string() -> None:
    codec = column_codec(default_column("scope"), "postgresql")
    assert codec.encode(None) is None
    assert codec.encode("") == ""
    assert codec.decode("") == ""


@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_boolean_codec_refuses_non_bool(value: object) -> None:
    codec = BooleanCodec("isOnline", optional=False, as_int=False, not_null=True)
    with pytest.raises(InvalidSessionError, match="isOnline"):
        codec.encode(value)


def test_boolean_codec_as_int_encodes_one_and_zero() -> None:
    codec = BooleanCodec("collaborator", optional=True, as_int=True, not_null=False)
    assert codec.encode(True) == 1
    assert type(codec.encode(True)) is int
    assert codec.encode(False) == 0
    assert codec.encode(None) is None


def test_boolean_codec_decodes_ints_and_none() -> None:
    codec = BooleanCodec("collaborator", optional=True, as_int=True, not_null=False)
    assert codec.decode(1) is True
    assert codec.decode(0) is False
    assert codec.decode(None) is None


def test_boolean_codec_not_null_optional_stores_none_as_false() -> None:
    as_bool = BooleanCodec("collaborator", optional=True, as_int=False, not_null=True)
    as_int = BooleanCodec("collaborator", optional=True, as_int=True, not_null=True)
    assert as_bool.encode(None) is False
    assert as_int.encode(None) == 0


@pytest.mark.parametrize("value", [True, False, "42", 4.0])
def test_user_id_codec_refuses_non_int(value: object) -> None:
    codec = UserIdCodec("userId", limit=2**63 - 1)
    with pytest.raises(InvalidSessionError, match="userId must be an int"):
        codec.encode(value)


@pytest.mark.parametrize("value", [0, 42, 2**63 - 1, -(2**63)])
def test_user_id_codec_accepts_int64(value: int) -> None:
    assert UserIdCodec("userId", limit=2**63 - 1).encode(value) == value


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_user_id_codec_refuses_out_of_int64(value: int) -> None:
    with pytest.raises(InvalidSessionError, match="out of the column's range"):
        UserIdCodec("userId", limit=2**63 - 1).encode(value)


def test_digits_user_id_codec_encodes_ascii_digits() -> None:
    assert DigitsUserIdCodec("userId", as_bytes=True).encode(42) == b"42"
    assert DigitsUserIdCodec("userId", as_bytes=False).encode(42) == "42"


@pytest.mark.parametrize("value", [0, 42, 2**63 - 1])
def test_digits_user_id_codec_round_trips_bytes(value: int) -> None:
    codec = DigitsUserIdCodec("userId", as_bytes=True)
    encoded = codec.encode(value)
    assert isinstance(encoded, bytes)
    assert codec.decode(encoded) == value
    assert codec.decode(memoryview(encoded)) == value


def test_digits_user_id_codec_refuses_out_of_range() -> None:
    with pytest.raises(InvalidSessionError):
        DigitsUserIdCodec("userId", as_bytes=True).encode(2**63)


def test_datetime_codec_treats_naive_input_as_utc() -> None:
    codec = DateTimeCodec("expires", aware=False, whole_seconds=False)
    assert codec.encode(datetime(2030, 1, 1, 12, 0, 0, 123000)) == datetime(
        2030, 1, 1, 12, 0, 0, 123000
    )


def test_datetime_codec_converts_aware_input_to_naive_utc() -> None:
    codec = DateTimeCodec("expires", aware=False, whole_seconds=False)
    plus_two = timezone(timedelta(hours=2))
    encoded = codec.encode(datetime(2030, 1, 1, 12, 0, tzinfo=plus_two))
    assert encoded == datetime(2030, 1, 1, 10, 0)
    assert encoded.tzinfo is None


def test_datetime_codec_aware_outputs_aware_utc() -> None:
    codec = DateTimeCodec("expires", aware=True, whole_seconds=False)
    plus_two = timezone(timedelta(hours=2))
    encoded = codec.encode(datetime(2030, 1, 1, 12, 0, tzinfo=plus_two))
    assert encoded == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    assert encoded.tzinfo is not None
    assert is_utc(encoded)


def test_datetime_codec_whole_seconds_drops_microseconds() -> None:
    codec = DateTimeCodec("expires", aware=False, whole_seconds=True)
    assert codec.encode(datetime(2030, 1, 1, 0, 0, 5, 999999, tzinfo=UTC)) == datetime(
        2030, 1, 1, 0, 0, 5
    )


def test_datetime_codec_keeps_milliseconds_otherwise() -> None:
    codec = DateTimeCodec("expires", aware=False, whole_seconds=False)
    assert codec.encode(datetime(2030, 1, 1, 0, 0, 5, 999999, tzinfo=UTC)) == datetime(
        2030, 1, 1, 0, 0, 5, 999000
    )


@pytest.mark.parametrize(
    "value", [datetime(2040, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, tzinfo=UTC)]
)
def test_datetime_codec_timestamp_range_refuses_outside(value: datetime) -> None:
    codec = column_codec(Column("expires", mysql.TIMESTAMP()), "mysql")
    with pytest.raises(InvalidSessionError, match="outside the column's range"):
        codec.encode(value)


def test_datetime_codec_timestamp_range_accepts_inside() -> None:
    codec = column_codec(Column("expires", mysql.TIMESTAMP()), "mysql")
    assert codec.encode(datetime(2030, 1, 1, tzinfo=UTC)) == datetime(2030, 1, 1)


def test_datetime_codec_refuses_non_datetime() -> None:
    with pytest.raises(InvalidSessionError, match="expires must be a datetime"):
        DateTimeCodec("expires", aware=False, whole_seconds=False).encode("2030-01-01")


def test_datetime_codec_decodes_naive_as_aware_utc() -> None:
    decoded = DateTimeCodec("expires", aware=False, whole_seconds=False).decode(
        datetime(2030, 1, 1, 0, 0)
    )
    assert decoded == datetime(2030, 1, 1, tzinfo=UTC)
    assert is_utc(decoded)


def test_iso_text_codec_encodes_like_to_iso_string() -> None:
    codec = IsoTextDateTimeCodec("expires", optional=True)
    value = datetime(2030, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert codec.encode(value) == "2030-01-01T00:00:00.123Z"


def test_iso_text_codec_encodes_aware_non_utc_as_utc() -> None:
    codec = IsoTextDateTimeCodec("expires", optional=True)
    value = datetime(2030, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert codec.encode(value) == "2030-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2030-01-01T00:00:00.123Z", datetime(2030, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)),
        ("2030-01-01 00:00:00.123", datetime(2030, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)),
        ("2030-01-01T00:00:00+02:00", datetime(2029, 12, 31, 22, 0, tzinfo=UTC)),
        (1893456000123, datetime(2030, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)),
        ("1893456000123", datetime(2030, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)),
    ],
)
def test_iso_text_codec_decodes_leniently(stored: object, expected: datetime) -> None:
    decoded = IsoTextDateTimeCodec("expires", optional=True).decode(stored)
    assert decoded == expected
    assert is_utc(decoded)


def test_iso_text_codec_decodes_none() -> None:
    assert IsoTextDateTimeCodec("expires", optional=True).decode(None) is None


def test_epoch_codec_in_seconds_rounds_down() -> None:
    codec = EpochDateTimeCodec("expires", unit_ms=1000)
    assert codec.encode(datetime(2030, 1, 1, 0, 0, 0, 999000, tzinfo=UTC)) == 1893456000
    assert codec.decode(1893456000) == datetime(2030, 1, 1, tzinfo=UTC)


def test_epoch_codec_in_milliseconds_keeps_them() -> None:
    codec = EpochDateTimeCodec("expires", unit_ms=1)
    assert codec.encode(datetime(2030, 1, 1, 0, 0, 0, 999000, tzinfo=UTC)) == 1893456000999
    assert codec.decode(1893456000999) == datetime(2030, 1, 1, 0, 0, 0, 999000, tzinfo=UTC)


# --- 4. plan_columns problems -----------------------------------------------------


def test_plan_of_the_default_table_has_no_problems() -> None:
    for dialect in DIALECTS.values():
        plan = plan_columns(session_table(MetaData()), dialect)
        assert plan.problems == ()
        assert [column.name for column in plan.columns] == list(COLUMNS)
        assert [codec.column for codec in plan.codecs] == list(COLUMNS)


def test_plan_lists_all_missing_columns_in_one_problem_and_other_problems_too() -> None:
    table = make_table(
        Column("isOnline", String(40), nullable=False),
        omit=("email", "locale", "refreshToken"),
    )
    problems = plan_columns(table, DIALECTS["postgresql"]).problems
    assert len(problems) == 2
    assert problems[0] == "missing column(s): email, locale, refreshToken"
    assert problems[1] == "isOnline is VARCHAR(40), which cannot hold a boolean"


def test_plan_id_neither_primary_key_nor_unique_is_a_problem() -> None:
    table = make_table(Column("id", Text(), nullable=False))
    problems = plan_columns(table, DIALECTS["postgresql"]).problems
    assert len(problems) == 1
    assert problems[0].startswith("id is neither the primary key nor unique")


@pytest.mark.parametrize(
    "unique_key",
    [
        lambda: UniqueConstraint("id"),
        lambda: Index("session_id_key", "id", unique=True),
    ],
    ids=["constraint", "index"],
)
def test_plan_id_unique_without_primary_key_is_fine(unique_key: Any) -> None:
    table = make_table(Column("id", Text(), nullable=False), unique_key())
    assert plan_columns(table, DIALECTS["mysql"]).problems == ()


def test_plan_id_column_unique_flag_is_fine() -> None:
    table = make_table(Column("id", Text(), nullable=False, unique=True))
    assert plan_columns(table, DIALECTS["postgresql"]).problems == ()


def test_plan_unique_index_over_more_than_id_is_a_problem() -> None:
    table = make_table(
        Column("id", Text(), nullable=False), Index("session_key", "id", "shop", unique=True)
    )
    problems = plan_columns(table, DIALECTS["postgresql"]).problems
    assert [p.split(" is ", 1)[0] for p in problems] == ["id"]


def test_plan_composite_primary_key_is_a_problem() -> None:
    table = make_table(
        Column("id", Text(), primary_key=True),
        Column("tenant", Integer(), primary_key=True),
    )
    problems = plan_columns(table, DIALECTS["postgresql"]).problems
    assert len(problems) == 1
    assert problems[0].startswith("id is neither the primary key nor unique")


def test_plan_extra_not_null_column_without_default_is_a_problem() -> None:
    table = make_table(Column("tenant", Text(), nullable=False))
    problems = plan_columns(table, DIALECTS["sqlite"]).problems
    assert problems == ("extra column tenant is NOT NULL without a default, so inserts would fail",)


@pytest.mark.parametrize(
    "column",
    [
        lambda: Column("createdAt", DateTime(), nullable=False, server_default=func.now()),
        lambda: Column("tenant", Text(), nullable=False, default="main"),
        lambda: Column("note", Text()),
    ],
    ids=["server_default", "default", "nullable"],
)
def test_plan_extra_column_that_inserts_can_omit_is_fine(column: Any) -> None:
    assert plan_columns(make_table(column()), DIALECTS["sqlite"]).problems == ()


def test_core_raises_schema_error_with_every_problem() -> None:
    table = make_table(
        Column("id", Text(), nullable=False),
        Column("userId", Integer()),
        Column("expires", DateTime(), nullable=False),
        Column("tenant", Text(), nullable=False),
        omit=("locale",),
    )
    with pytest.raises(SessionTableSchemaError) as raised:
        SessionTableCore(table, DIALECTS["postgresql"])
    problems = raised.value.problems
    assert problems == plan_columns(table, DIALECTS["postgresql"]).problems
    assert len(problems) == 5
    assert [p.split(" ", 1)[0] for p in problems] == ["missing", "expires", "userId", "id", "extra"]
    message = str(raised.value)
    assert message.startswith('table "session" cannot store sessions:\n')
    for problem in problems:
        assert f"  - {problem}" in message


# --- 5. adopting the database's table ---------------------------------------------


def test_adopt_missing_table_raises_missing_table_error() -> None:
    core = default_core("postgresql")
    with pytest.raises(MissingSessionTableError, match="create_table") as raised:
        core.adopt_database_table(None)
    assert '"session"' in str(raised.value)


def test_adopt_generic_table_is_fine() -> None:
    core = default_core("postgresql")
    core.adopt_database_table(make_table())


def test_adopt_table_whose_expires_is_text_raises_schema_error() -> None:
    core = default_core("postgresql")
    with pytest.raises(SessionTableSchemaError, match="expires") as raised:
        core.adopt_database_table(make_table(Column("expires", Text())))
    assert raised.value.problems == (
        "expires is declared as DateTime but the database column holds IsoTextDateTime",
    )


def test_adopt_table_with_problems_raises_them() -> None:
    core = default_core("mysql")
    with pytest.raises(SessionTableSchemaError) as raised:
        core.adopt_database_table(make_table(omit=("scope",)))
    assert raised.value.problems == ("missing column(s): scope",)


def test_adopt_takes_column_lengths_from_the_database() -> None:
    core = default_core("mysql")
    session = online_session(scope="s" * 200)
    assert core.store_parameters(session)["scope"] == "s" * 200
    core.adopt_database_table(make_table(Column("scope", String(191))))
    with pytest.raises(InvalidSessionError, match="scope is 200 characters long"):
        core.store_parameters(session)
    assert core.store_parameters(online_session(scope="s" * 191))["scope"] == "s" * 191


# --- 6. parameters and rows -------------------------------------------------------


@ALL_DIALECTS
@pytest.mark.parametrize("make_session", [online_session, offline_session])
def test_store_parameters_round_trip_through_a_row(dialect_name: str, make_session: Any) -> None:
    core = default_core(dialect_name)
    session = make_session()
    params = core.store_parameters(session)
    assert list(params) == list(COLUMNS)
    restored = core.session_from_row(row_of(core, params))
    assert restored == session
    assert restored.online_access_info == session.online_access_info
    assert restored.expires == session.expires
    assert restored.refresh_token_expires == session.refresh_token_expires


def test_store_parameters_sqlite_values() -> None:
    core = default_core("sqlite")
    params = core.store_parameters(online_session())
    assert params["userId"] == b"42"
    assert params["expires"] == "2030-01-02T03:04:05.678Z"
    assert params["refreshTokenExpires"] is None
    assert params["isOnline"] is True
    assert params["collaborator"] is True
    assert params["refreshToken"] is None


def test_store_parameters_offline_session_has_no_user() -> None:
    params = default_core("postgresql").store_parameters(offline_session())
    for name in ("userId", "firstName", "lastName", "email", "locale"):
        assert params[name] is None
    for name in ("accountOwner", "collaborator", "emailVerified"):
        assert params[name] is None


def test_store_parameters_refuses_a_non_session() -> None:
    with pytest.raises(InvalidSessionError, match="expected a Session"):
        default_core("sqlite").store_parameters({"id": "x"})  # type: ignore[arg-type]


def test_session_from_row_of_offline_row_has_no_online_access_info() -> None:
    core = default_core("sqlite")
    restored = core.session_from_row(row_of(core, core.store_parameters(offline_session())))
    assert restored.is_online is False
    assert restored.online_access_info is None


@pytest.mark.parametrize("dialect_name", sorted(DIALECTS))
@pytest.mark.parametrize("make_session", [online_session, offline_session])
def test_session_from_row_builds_what_the_constructor_builds(
    dialect_name: str, make_session: Any
) -> None:
    """The load path skips the constructor's conversions; the object must not differ."""
    core = default_core(dialect_name)
    session = make_session()
    restored = core.session_from_row(row_of(core, core.store_parameters(session)))
    rebuilt = Session(
        restored.id,
        restored.shop,
        restored.state,
        restored.is_online,
        scope=restored.scope,
        expires=restored.expires,
        access_token=restored.access_token,
        refresh_token=restored.refresh_token,
        refresh_token_expires=restored.refresh_token_expires,
        online_access_info=restored.online_access_info,
    )
    assert vars(restored) == vars(rebuilt)
    assert restored == session


def ids_of(deletes: list[tuple[Any, Any]]) -> list[list[str]]:
    """The ids each DELETE of ``ids_deletes`` removes, padding taken out."""
    out = []
    for _, parameters in deletes:
        values = parameters.values() if isinstance(parameters, dict) else parameters
        if isinstance(parameters, dict) and list(parameters) == ["ids"]:  # PostgreSQL's array
            values = parameters["ids"]
        out.append(list(dict.fromkeys(values)))
    return out


def test_ids_deletes_empty_gives_no_statements() -> None:
    assert default_core("sqlite").ids_deletes([]) == []


def test_ids_deletes_chunks_by_500() -> None:
    ids = [f"id-{n}" for n in range(1201)]
    deletes = default_core("sqlite").ids_deletes(ids)
    assert [len(chunk) for chunk in ids_of(deletes)] == [500, 500, 201]
    assert [id for chunk in ids_of(deletes) for id in chunk] == ids


def test_ids_deletes_removes_duplicates_keeping_first_order() -> None:
    assert ids_of(default_core("sqlite").ids_deletes(["b", "a", "b", "c", "a"])) == [
        ["b", "a", "c"]
    ]


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
@pytest.mark.parametrize("count", [1, 9, 100, 101, 499, 500])
def test_ids_deletes_pad_to_a_few_fixed_statements(dialect: str, count: int) -> None:
    core = default_core(dialect)
    ids = [f"id-{n}" for n in range(count)]
    [(sql, parameters)] = core.ids_deletes(ids)
    arity = len(parameters)
    assert arity in IDS_COUNTS and arity >= count
    assert arity <= max(count * 1.3, 8)
    # Compiled once to the driver's SQL (run with exec_driver_sql), from the fixed statement.
    assert sql == str(core.delete_by_ids(arity).compile(dialect=core.dialect))
    assert sql.count("%s" if dialect == "mysql" else "?") == arity  # both take positions
    assert list(parameters) == ids + [ids[-1]] * (arity - count)
    assert core.ids_deletes(ids)[0][0] is sql  # not compiled again


@pytest.mark.parametrize("count", [1, 9, 100, 500])
def test_ids_deletes_take_an_array_on_postgresql(count: int) -> None:
    """One statement text for any number of ids: prepared once per connection."""
    core = default_core("postgresql")
    ids = [f"id-{n}" for n in range(count)]
    [(sql, parameters)] = core.ids_deletes(ids)
    assert sql == "DELETE FROM session WHERE session.id = ANY (%(ids)s::TEXT[])"
    assert parameters == {"ids": ids}


def test_ids_deletes_leave_a_processed_id_type_to_sqlalchemy() -> None:
    """An id column whose type changes values on their way (an app's TypeDecorator) is
    run by SQLAlchemy's execute, which applies it, never as driver SQL."""

    class Lowered(TypeDecorator[str]):
        impl = String(255)
        cache_ok = True

        def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
            return None if value is None else value.lower()

    table = session_table(MetaData(), "custom")
    table.c.id.type = Lowered()
    for dialect in ("postgresql", "sqlite"):
        core = SessionTableCore(table, DIALECTS[dialect])
        [(statement, _)] = core.ids_deletes(["A", "B"])
        assert not isinstance(statement, str)


def test_ids_deletes_refuses_a_single_string() -> None:
    with pytest.raises(InvalidSessionError, match="not a single string"):
        default_core("sqlite").ids_deletes("offline_shop.myshopify.com")


# --- 7. error translation ---------------------------------------------------------


def test_statement_failure_hides_statement_and_parameters() -> None:
    original = operational_error()
    failure = statement_failure("load", '"session"', original)
    assert isinstance(failure, StorageOperationError)
    assert not isinstance(failure, StorageUnavailableError)
    message = str(failure)
    assert SECRET not in message
    assert "SELECT" not in message
    assert "boom" in message


def test_statement_failure_of_a_lost_connection_is_unavailable() -> None:
    failure = statement_failure("load", '"session"', operational_error(connection_invalidated=True))
    assert isinstance(failure, StorageUnavailableError)
    assert SECRET not in str(failure)
    assert "SELECT" not in str(failure)


@pytest.mark.parametrize("error", [OSError("disk"), exc.NoSuchTableError("session")])
def test_statement_failure_of_other_failures(error: Exception) -> None:
    assert isinstance(error, FAILURES)
    assert type(statement_failure("store", "t", error)) is StorageOperationError


@pytest.mark.parametrize("error", [OSError("network down"), ConnectionRefusedError(111, "refused")])
def test_connect_failure_of_os_errors_is_unavailable(error: OSError) -> None:
    failure = connect_failure('"session"', error)
    assert isinstance(failure, StorageUnavailableError)
    assert '"session"' in str(failure)


def test_connect_failure_without_the_statement() -> None:
    failure = connect_failure("t", operational_error())
    assert SECRET not in str(failure)
    assert "SELECT" not in str(failure)


class _Driver(Exception):
    def __init__(self, *args: object, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("driver_error", "conflict"),
    [
        (_Driver(1213, "Deadlock found when trying to get lock"), True),
        (_Driver(1205, "Lock wait timeout exceeded"), True),
        (_Driver("deadlock detected", sqlstate="40P01"), True),
        (_Driver("could not serialize access", sqlstate="40001"), True),
        (_Driver("database is locked"), True),
        (_Driver(1062, "Duplicate entry"), False),
        (_Driver("syntax error", sqlstate="42601"), False),
    ],
)
def test_conflicts_are_told_apart(driver_error: Exception, conflict: bool) -> None:
    error = exc.OperationalError("UPDATE ...", {}, driver_error)
    assert is_conflict(error) is conflict
    assert isinstance(statement_failure("store", "t", error), StorageConflictError) is conflict


@pytest.mark.parametrize(
    "error",
    [
        InvalidSessionError("bad"),
        MissingSessionTableError("gone"),
        StorageUnavailableError("down"),
        KeyError("not a database failure"),
    ],
)
def test_only_database_failures_are_translated(error: Exception) -> None:
    # The storages translate what FAILURES catches; everything else passes through as it is.
    assert not isinstance(error, FAILURES)


# --- hot statements ------------------------------------------------------------


def _driver_dialects() -> list[Dialect]:
    """The dialects of the drivers the storages run on (no connection made)."""
    from sqlalchemy import create_engine
    from sqlalchemy.ext.asyncio import create_async_engine

    sync = ("postgresql+psycopg://", "mysql+pymysql://", "sqlite://")
    asynchronous = ("postgresql+asyncpg://", "mysql+aiomysql://", "sqlite+aiosqlite://")
    return [create_engine(url).dialect for url in sync] + [
        create_async_engine(url).dialect for url in asynchronous
    ]


def sqlalchemy_sends(statement: Any, dialect: Dialect, parameters: dict[str, Any]) -> Any:
    """The text and driver parameters SQLAlchemy's execute would send (its compiled form,
    its bind processors, its parameter order)."""
    compiled = statement.compile(dialect=dialect)
    processed = {
        name: (compiled._bind_processors.get(name) or (lambda value: value))(value)
        for name, value in compiled.construct_params(parameters).items()
    }
    if compiled.positiontup is None:
        return compiled.string, processed
    return compiled.string, tuple(processed[name] for name in compiled.positiontup)


@pytest.mark.parametrize(
    "dialect",
    [postgresql.dialect(), mysql.dialect(), sqlite.dialect(), *_driver_dialects()],
    ids=lambda d: f"{d.name}+{d.driver}",
)
def test_hot_statements_send_what_sqlalchemy_would(dialect: Dialect) -> None:
    core = SessionTableCore(session_table(MetaData()), dialect)
    session = Session(
        "shop_1",
        "shop.myshopify.com",
        "state",
        True,
        scope="read_products",
        expires=datetime(2031, 6, 1, 12, 0, 0, 123000, tzinfo=UTC),
        access_token=SECRET,
        online_access_info=OnlineAccessInfo(
            associated_user=AssociatedUser(id=7, email_verified=True, account_owner=False)
        ),
    )
    parameters = core.store_parameters(session)
    assert core.hot_upsert is not None
    sql, arguments, _, _ = core.hot_upsert.call(parameters)
    assert (sql, arguments) == sqlalchemy_sends(core.upsert, dialect, parameters)
    for hot, statement, given in (
        (core.hot_select_by_id, core.select_by_id, {"id": "shop_1"}),
        (core.hot_select_by_shop, core.select_by_shop, {"shop": "shop.myshopify.com"}),
        (core.hot_delete_by_id, core.delete_by_id, {"id": "shop_1"}),
    ):
        assert hot is not None
        assert hot.call(given)[:2] == sqlalchemy_sends(statement, dialect, given)


def test_hot_selects_apply_the_result_processors_the_codecs_dont_repeat() -> None:
    """MySQL's booleans come back as 0/1: SQLAlchemy's int_to_boolean is what the codecs'
    bool does already, so it is dropped; an app's type's result processor is kept."""

    class Reversed(TypeDecorator[str]):
        impl = String(255)
        cache_ok = True

        def process_result_value(self, value: Any, dialect: Dialect) -> Any:
            return None if value is None else value[::-1]

    columns = generic_columns()
    columns["locale"] = Column("locale", Reversed())
    core = SessionTableCore(Table("s", MetaData(), *columns.values()), mysql.dialect())
    assert core.hot_select_by_id is not None
    processed = dict(core.hot_select_by_id.results)
    locale = list(COLUMNS).index("locale")
    assert set(processed) == {locale}
    assert processed[locale]("ne") == "en"


def test_statements_sqlalchemy_does_more_for_are_left_to_it() -> None:
    """An extra column with a Python-side default: SQLAlchemy computes it at each insert,
    so the upsert is not a hot statement (the selects and deletes still are)."""
    table = session_table(MetaData())
    table.append_column(Column("createdBy", String(20), default="python"))
    core = SessionTableCore(table, sqlite.dialect())
    assert core.hot_upsert is None
    assert core.hot_select_by_id is not None and core.hot_delete_by_id is not None


def test_hot_delete_is_the_one_driver_statement_of_a_call() -> None:
    core = default_core("sqlite")
    [(sql, arguments)] = core.ids_deletes(["a", "b"])
    assert core.hot_delete(core.ids_deletes(["a", "b"])) == (sql, arguments, 0, ())
    assert core.hot_delete(core.ids_deletes([f"id{n}" for n in range(501)])) is None
