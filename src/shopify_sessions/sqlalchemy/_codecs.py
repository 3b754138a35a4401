"""Column codecs: how one session field is written to and read from one column.

The codec is chosen from the column's SQL type for the dialect in use, so the same
storage reads and writes a Drizzle table, a Prisma table and a table of our own.
Encoding validates: a value the column cannot hold raises InvalidSessionError
before any statement runs. Messages name the column, never the value (it may be a token).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Column, types
from sqlalchemy.engine import Dialect

from .._encryption import TokenCipher
from .._errors import InvalidSessionError
from .._time import UTC, as_utc, from_epoch_ms, to_epoch_ms
from ._table import COLUMNS, REQUIRED_COLUMNS, ColumnKind

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1


class Codec:
    """Encode a session field for one column, and decode it back.

    ``carrier`` is the SQLAlchemy type values travel as, when the column's own type
    would get in the way (SQLite DATETIME processors cannot read integers or ISO
    text); ``None`` means the column's type.
    """

    __slots__ = ("carrier", "column", "optional")

    def __init__(
        self, column: str, *, optional: bool, carrier: types.TypeEngine[Any] | None = None
    ) -> None:
        self.column = column
        self.optional = optional
        self.carrier = carrier

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

    def decoder(self) -> Callable[[Any], Any] | None:
        """:meth:`decode`, or ``None`` where it returns values unchanged (no call needed)."""
        return None if type(self).decode is Codec.decode else self.decode

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

    def decoder(self) -> Callable[[Any], Any] | None:
        return self.decode if self.empty_is_none else None


class EncryptedTextCodec(Codec):
    """A token column whose values a :class:`~shopify_sessions.TokenCipher` encrypts.

    The column's own checks (length, NUL) apply to the stored text, the ciphertext.
    """

    __slots__ = ("cipher", "inner")

    def __init__(self, inner: TextCodec, cipher: TokenCipher) -> None:
        super().__init__(inner.column, optional=inner.optional, carrier=inner.carrier)
        self.inner = inner
        self.cipher = cipher

    def encode_none(self) -> Any:
        return self.inner.encode_none()

    def encode_value(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise self._type_error("a str", value)
        return self.inner.encode_value(self.cipher.encrypt(value))

    def decode(self, value: Any) -> Any:
        stored = self.inner.decode(value)
        return None if stored is None else self.cipher.decrypt(stored)

    def reencrypted(self, value: Any) -> Any:
        """The stored ``value`` under the current key, or ``value`` itself if it is already."""
        stored = self.inner.decode(value)
        if not stored or self.cipher.is_current(stored):
            return value
        return self.inner.encode_value(self.cipher.encrypt(self.cipher.decrypt(stored)))


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

    def decoder(self) -> Callable[[Any], Any] | None:
        return bool  # the storage passes NULL through without calling the decoder


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

    def decoder(self) -> Callable[[Any], Any] | None:
        return int


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

    def decoder(self) -> Callable[[Any], Any] | None:
        return self.decode


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
        if value is None:
            return None
        # What the drivers return for these columns: naive UTC, or aware UTC (PostgreSQL
        # timestamptz), in whole milliseconds; anything else goes through as_utc.
        if type(value) is datetime and value.tzinfo is None and not value.microsecond % 1000:
            return value.replace(tzinfo=UTC)
        return as_utc(value)


class IsoTextDateTimeCodec(Codec):
    """A date-time as JavaScript ``toISOString()`` text: ``2030-01-01T00:00:00.123Z``.

    Drizzle's layout on SQLite. Reading accepts every form of :func:`parse_datetime`.
    """

    __slots__ = ()

    def encode_value(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            raise self._type_error("a datetime", value)
        # Not strftime: its %Y does not zero-pad years before 1000 (isoformat does).
        # as_utc gives an aware UTC datetime, so the text ends in "+00:00".
        return as_utc(value).isoformat("T", "milliseconds")[:-6] + "Z"

    def decode(self, value: Any) -> Any:
        return parse_datetime(value, unit_ms=1)


class EpochDateTimeCodec(Codec):
    """A date-time as a whole number of seconds (``unit_ms=1000``) or milliseconds since 1970.

    The raw Node adapters' layout (seconds; milliseconds for ``refreshTokenExpires`` on
    PostgreSQL), and Prisma's native SQLite engine (milliseconds).
    """

    __slots__ = ("limit", "unit_ms")

    def __init__(
        self,
        column: str,
        *,
        unit_ms: int,
        limit: int = INT64_MAX,
        carrier: types.TypeEngine[Any] | None = None,
    ) -> None:
        super().__init__(column, optional=True, carrier=carrier)
        self.unit_ms = unit_ms
        self.limit = limit

    def encode_value(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            raise self._type_error("a datetime", value)
        count = to_epoch_ms(value) // self.unit_ms
        if not -self.limit - 1 <= count <= self.limit:
            latest = from_epoch_ms(self.limit * self.unit_ms).isoformat()
            raise InvalidSessionError(
                f"{self.column} {as_utc(value).isoformat()} does not fit its integer column, "
                f"which ends at {latest}"
            )
        return count

    def decode(self, value: Any) -> Any:
        return parse_datetime(value, unit_ms=self.unit_ms)


#: Python 3.11's fromisoformat reads a trailing ``Z`` as UTC (and returns ``UTC`` itself).
_FROMISOFORMAT_READS_Z = sys.version_info >= (3, 11)


def parse_datetime(value: Any, *, unit_ms: int) -> datetime | None:
    """Read a stored date-time, whoever wrote it, as aware UTC.

    Accepts a datetime (naive means UTC), a number of ``unit_ms`` milliseconds since
    the epoch (also as digits), and ISO 8601 text with ``T`` or a space, with ``Z``,
    an offset, or neither (UTC).
    """
    if value is None:
        return None
    if _FROMISOFORMAT_READS_Z and type(value) is str and len(value) == 24 and value[-1] == "Z":
        # JavaScript's toISOString(), as the storage and Drizzle write it: whole ms, UTC.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # not a date after all: the general path says what is wrong
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return from_epoch_ms(int(value) * unit_ms)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return from_epoch_ms(int(text) * unit_ms)
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    return as_utc(datetime.fromisoformat(text))


class Untouched(types.TypeDecorator[Any]):
    """Values travel to and from the driver as they are.

    For SQLite's DATETIME, a name without a format: Prisma keeps integer milliseconds
    there, other tools text, and SQLAlchemy's own DATETIME processors accept neither.
    (NullType would not do: SQLAlchemy gives an untyped INSERT parameter its column's type.)
    """

    impl = types.String
    cache_ok = True


_MYSQL_TIMESTAMP_RANGE = (
    datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC),
)
_MYSQL_DATETIME_RANGE = (
    datetime(1000, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
)


def sql_type(column: Column[Any], dialect: Dialect) -> types.TypeEngine[Any]:
    """The type that carries ``column`` on ``dialect`` (variants and decorators resolved)."""
    type_ = column.type.dialect_impl(dialect)
    while isinstance(type_, types.TypeDecorator):
        type_ = type_.impl_instance.dialect_impl(dialect)
    return type_


#: How a date-time is kept in a column without a SQL date-time type (or in SQLite's
#: DATETIME, which is only a name): JS ISO text, or epoch seconds or milliseconds.
DateTimeFormat = Literal["iso", "epoch_s", "epoch_ms"]
"""How a date-time is kept in a column without a SQL date-time type: ISO text (JS
``toISOString()``), or seconds or milliseconds since the Unix epoch."""
DATETIME_FORMATS: tuple[DateTimeFormat, ...] = ("iso", "epoch_s", "epoch_ms")


def codec_for(
    column: Column[Any], dialect: Dialect, datetime_format: DateTimeFormat | None = None
) -> Codec | str:
    """The codec for a session column, or a sentence saying why the column cannot hold it.

    ``datetime_format`` chooses the encoding of a date-time column that has no SQL
    date-time type; by default ISO text in text columns, seconds in INTEGER columns
    and milliseconds in BIGINT ones (the layouts of Shopify's Node adapters), and
    milliseconds in SQLite DATETIME columns (Prisma).
    """
    name = column.name
    kind = COLUMNS[name]
    optional = name not in REQUIRED_COLUMNS
    not_null = not column.nullable
    type_ = sql_type(column, dialect)
    type_name = _describe(column.type, dialect)

    if kind is ColumnKind.TEXT:
        if isinstance(type_, types.String) and not isinstance(type_, types.Enum):
            return TextCodec(
                name,
                optional=optional,
                length=type_.length,
                forbid_nul=dialect.name == "postgresql",
                not_null=not_null,
            )
    elif kind is ColumnKind.BOOLEAN:
        if isinstance(type_, types.Boolean):
            return BooleanCodec(name, optional=optional, as_int=False, not_null=not_null)
        if isinstance(type_, types.Integer):
            return BooleanCodec(name, optional=optional, as_int=True, not_null=not_null)
    elif kind is ColumnKind.USER_ID:
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
    elif kind is ColumnKind.DATETIME:
        if not_null:
            return f"{name} is NOT NULL, but sessions may have no {name}"
        return _datetime_codec(column, type_, dialect, datetime_format, type_name)
    return f"{name} is {type_name}, which cannot hold a {kind.value}"


def _datetime_codec(
    column: Column[Any],
    type_: types.TypeEngine[Any],
    dialect: Dialect,
    datetime_format: DateTimeFormat | None,
    type_name: str,
) -> Codec | str:
    name = column.name
    sqlite = dialect.name == "sqlite"
    if isinstance(type_, types.DateTime) and not sqlite:
        if datetime_format is not None:
            return f"{name} is {type_name}, a SQL date-time: datetime_format does not apply"
        mysql = dialect.name in ("mysql", "mariadb")
        timestamp = mysql and isinstance(type_, types.TIMESTAMP)
        low: datetime | None = None
        high: datetime | None = None
        if mysql:
            low, high = _MYSQL_TIMESTAMP_RANGE if timestamp else _MYSQL_DATETIME_RANGE
        return DateTimeCodec(
            name,
            aware=bool(type_.timezone) and dialect.name == "postgresql",
            whole_seconds=mysql and not getattr(type_, "fsp", None),
            low=low,
            high=high,
        )
    carrier = Untouched() if isinstance(type_, types.DateTime) else None
    if isinstance(type_, types.DateTime):
        default: DateTimeFormat = "epoch_ms"
        allowed: tuple[DateTimeFormat, ...] = DATETIME_FORMATS
    elif isinstance(type_, types.String):
        default, allowed = "iso", ("iso",)
    elif isinstance(type_, types.Integer):
        wide = isinstance(type_, types.BigInteger)
        default, allowed = ("epoch_ms" if wide else "epoch_s"), ("epoch_s", "epoch_ms")
    else:
        return f"{name} is {type_name}, which cannot hold a datetime"
    chosen = datetime_format or default
    if chosen not in allowed:
        return f"{name} is {type_name}, which cannot hold datetime_format {chosen!r}"
    if chosen == "iso":
        return IsoTextDateTimeCodec(name, optional=True, carrier=carrier)
    # A 32-bit INTEGER of seconds ends in 2038 (SQLite's INTEGER is always 64-bit).
    narrow = (
        isinstance(type_, types.Integer) and not isinstance(type_, types.BigInteger) and not sqlite
    )
    return EpochDateTimeCodec(
        name,
        unit_ms=1000 if chosen == "epoch_s" else 1,
        limit=INT32_MAX if narrow else INT64_MAX,
        carrier=carrier,
    )


def _describe(type_: types.TypeEngine[Any], dialect: Dialect) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # a type without DDL on this dialect still deserves a name
        return type(type_).__name__
