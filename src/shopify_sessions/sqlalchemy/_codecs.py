"""Column codecs: how one session field is written to and read from one column.

The codec is chosen from the column's SQL type for the dialect in use, so the same
storage reads and writes a Drizzle table, a Prisma table and a table of our own.
Encoding validates: a value the column cannot hold raises InvalidSessionError
before any statement runs. Messages name the column, never the value (it may be a token).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, types
from sqlalchemy.engine import Dialect

from .._errors import InvalidSessionError
from .._time import UTC, as_utc, from_epoch_ms, to_epoch_ms
from ._table import COLUMNS, REQUIRED_COLUMNS, Kind

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1


class Codec:
    """Encode a session field for one column, and decode it back."""

    __slots__ = ("column", "optional")

    def __init__(self, column: str, *, optional: bool) -> None:
        self.column = column
        self.optional = optional

    def encode(self, value: Any) -> Any:
        if value is None:
            return self.encode_none()
        return self.encode_value(value)

    def encode_none(self) -> Any:
        if not self.optional:
            raise InvalidSessionError(f"{self.column} is required and must not be None")
        return None

    def encode_value(self, value: Any) -> Any:
        raise NotImplementedError

    def decode(self, value: Any) -> Any:
        return value

    def _type_error(self, expected: str, value: object) -> InvalidSessionError:
        return InvalidSessionError(f"{self.column} must be {expected}, got {type(value).__name__}")


class TextCodec(Codec):
    """A string column. On a NOT NULL column an absent value is written as ``''``."""

    __slots__ = ("empty_is_none", "forbid_nul", "length")

    def __init__(
        self, column: str, *, optional: bool, length: int | None, forbid_nul: bool, not_null: bool
    ) -> None:
        super().__init__(column, optional=optional)
        self.length = length
        self.forbid_nul = forbid_nul
        # An optional field in a NOT NULL column (Drizzle's accessToken) is stored as ''
        # and so '' reads back as absent.
        self.empty_is_none = optional and not_null

    def encode_none(self) -> Any:
        return "" if self.empty_is_none else super().encode_none()

    def encode_value(self, value: Any) -> Any:
        if type(value) is not str:
            if not isinstance(value, str):
                raise self._type_error("a str", value)
            value = str(value)
        if self.length is not None and len(value) > self.length:
            raise InvalidSessionError(
                f"{self.column} is {len(value)} characters long; its column holds {self.length}"
            )
        if self.forbid_nul and "\x00" in value:
            raise InvalidSessionError(
                f"{self.column} contains a NUL character, which the column cannot hold"
            )
        return value

    def decode(self, value: Any) -> Any:
        if value == "" and self.empty_is_none:
            return None
        return value


class BooleanCodec(Codec):
    """A boolean column, or an integer one holding 0/1. Absent is ``False`` in a NOT NULL column."""

    __slots__ = ("as_int", "none_value")

    def __init__(self, column: str, *, optional: bool, as_int: bool, not_null: bool) -> None:
        super().__init__(column, optional=optional)
        self.as_int = as_int
        self.none_value: bool | int | None = None
        if not_null and optional:
            self.none_value = 0 if as_int else False

    def encode_none(self) -> Any:
        if self.none_value is not None:
            return self.none_value
        return super().encode_none()

    def encode_value(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise self._type_error("a bool", value)
        return int(value) if self.as_int else value

    def decode(self, value: Any) -> Any:
        return None if value is None else bool(value)


class UserIdCodec(Codec):
    """An integer user id in an integer column (``limit`` is its largest value)."""

    __slots__ = ("limit",)

    def __init__(self, column: str, *, limit: int) -> None:
        super().__init__(column, optional=True)
        self.limit = limit

    def encode_value(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._type_error("an int", value)
        if not -self.limit - 1 <= value <= self.limit:
            raise InvalidSessionError(f"{self.column} {value} is out of the column's range")
        return value

    def decode(self, value: Any) -> Any:
        return None if value is None else int(value)


class DigitsUserIdCodec(UserIdCodec):
    """A user id as its decimal digits, in a BLOB (Drizzle on SQLite) or a text column."""

    __slots__ = ("as_bytes",)

    def __init__(self, column: str, *, as_bytes: bool) -> None:
        super().__init__(column, limit=INT64_MAX)
        self.as_bytes = as_bytes

    def encode_value(self, value: Any) -> Any:
        digits = str(super().encode_value(value))
        return digits.encode("ascii") if self.as_bytes else digits

    def decode(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value).decode("ascii")
        return int(value)


class DateTimeCodec(Codec):
    """A SQL date-time column. Written as UTC (naive or aware, as the column takes it)."""

    __slots__ = ("aware", "high", "low", "whole_seconds")

    def __init__(
        self,
        column: str,
        *,
        aware: bool,
        whole_seconds: bool,
        low: datetime | None = None,
        high: datetime | None = None,
    ) -> None:
        super().__init__(column, optional=True)
        self.aware = aware
        self.whole_seconds = whole_seconds
        self.low = low
        self.high = high

    def encode_value(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            raise self._type_error("a datetime", value)
        value = as_utc(value)
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise InvalidSessionError(
                f"{self.column} {value.isoformat()} is outside the column's range "
                f"{self.low and self.low.isoformat()} to {self.high and self.high.isoformat()}"
            )
        if self.whole_seconds:
            value = value.replace(microsecond=0)
        return value if self.aware else value.replace(tzinfo=None)

    def decode(self, value: Any) -> Any:
        return None if value is None else as_utc(value)


class IsoTextDateTimeCodec(Codec):
    """A date-time as JavaScript ``toISOString()`` text (Drizzle on SQLite).

    Reading is lenient, as rows written by other tools differ: ISO text with or
    without ``Z``/offset or ``T``, and integer epoch milliseconds (Prisma's SQLite engine).
    """

    __slots__ = ()

    def encode_value(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            raise self._type_error("a datetime", value)
        value = as_utc(value)
        if not 1 <= value.year <= 9999:  # pragma: no cover - datetime cannot leave this range
            raise InvalidSessionError(f"{self.column} is out of range")
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

    def decode(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime):
            return as_utc(value)
        if isinstance(value, (int, float)):
            return from_epoch_ms(int(value))
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            return from_epoch_ms(int(text))
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        return as_utc(datetime.fromisoformat(text))


class EpochDateTimeCodec(Codec):
    """A date-time as an integer count of ``unit_ms`` milliseconds since the epoch."""

    __slots__ = ("unit_ms",)

    def __init__(self, column: str, *, unit_ms: int) -> None:
        super().__init__(column, optional=True)
        self.unit_ms = unit_ms

    def encode_value(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            raise self._type_error("a datetime", value)
        return to_epoch_ms(value) // self.unit_ms

    def decode(self, value: Any) -> Any:
        return None if value is None else from_epoch_ms(int(value) * self.unit_ms)


_MYSQL_TIMESTAMP_RANGE = (
    datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC),
)
_MYSQL_DATETIME_RANGE = (
    datetime(1000, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc),
)


def sql_type(column: Column[Any], dialect: Dialect) -> types.TypeEngine[Any]:
    """The type that carries ``column`` on ``dialect`` (variants and decorators resolved)."""
    type_ = column.type.dialect_impl(dialect)
    while isinstance(type_, types.TypeDecorator):
        type_ = type_.impl_instance.dialect_impl(dialect)
    return type_


def codec_for(column: Column[Any], dialect: Dialect) -> Codec | str:
    """The codec for a session column, or a sentence saying why the column cannot hold it."""
    name = column.name
    kind = COLUMNS[name]
    optional = name not in REQUIRED_COLUMNS
    not_null = not column.nullable
    type_ = sql_type(column, dialect)
    type_name = _describe(column.type, dialect)
    mysql = dialect.name in ("mysql", "mariadb")

    if kind is Kind.TEXT:
        if isinstance(type_, types.String) and not isinstance(type_, types.Enum):
            return TextCodec(
                name,
                optional=optional,
                length=type_.length,
                forbid_nul=dialect.name == "postgresql",
                not_null=not_null,
            )
    elif kind is Kind.BOOLEAN:
        if isinstance(type_, types.Boolean):
            return BooleanCodec(name, optional=optional, as_int=False, not_null=not_null)
        if isinstance(type_, types.Integer):
            return BooleanCodec(name, optional=optional, as_int=True, not_null=not_null)
    elif kind is Kind.USER_ID:
        if not_null:
            return f"{name} is NOT NULL, but offline sessions have no user id"
        if isinstance(type_, types.BigInteger) or (
            isinstance(type_, types.Integer) and dialect.name == "sqlite"
        ):
            return UserIdCodec(name, limit=INT64_MAX)
        if isinstance(type_, types.Integer):
            return f"{name} is {type_name}, too small for Shopify user ids: use BIGINT"
        if isinstance(type_, types._Binary):
            return DigitsUserIdCodec(name, as_bytes=True)
        if isinstance(type_, types.String) and (type_.length is None or type_.length >= 20):
            return DigitsUserIdCodec(name, as_bytes=False)
    elif kind is Kind.DATETIME:
        if not_null:
            return f"{name} is NOT NULL, but sessions may have no {name}"
        if isinstance(type_, types.DateTime):
            timestamp = mysql and isinstance(type_, types.TIMESTAMP)
            low, high = (
                _MYSQL_TIMESTAMP_RANGE
                if timestamp
                else _MYSQL_DATETIME_RANGE
                if mysql
                else (None, None)
            )
            return DateTimeCodec(
                name,
                aware=bool(type_.timezone) and dialect.name == "postgresql",
                whole_seconds=mysql and not getattr(type_, "fsp", None),
                low=low,
                high=high,
            )
        if isinstance(type_, types.String):
            return IsoTextDateTimeCodec(name, optional=True)
        if isinstance(type_, types.Integer):
            return EpochDateTimeCodec(name, unit_ms=1)
    return f"{name} is {type_name}, which cannot hold a {kind.value}"


def _describe(type_: types.TypeEngine[Any], dialect: Dialect) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # a type without DDL on this dialect still deserves a name
        return type(type_).__name__
