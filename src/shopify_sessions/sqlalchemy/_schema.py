"""Schema checks: can this table hold sessions without losing or corrupting data?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import NoSuchTableError

from ._codecs import Codec, DateTimeFormat, codec_for
from ._table import COLUMNS


@dataclass(frozen=True)
class ColumnPlan:
    """The session columns of a table, their codecs, and every problem found."""

    columns: tuple[Column[Any], ...]
    codecs: tuple[Codec, ...]
    problems: tuple[str, ...]


def plan_columns(
    table: Table, dialect: Dialect, datetime_formats: Mapping[str, DateTimeFormat] | None = None
) -> ColumnPlan:
    """Map the session fields onto ``table``'s columns for ``dialect``, listing every problem.

    ``datetime_formats`` maps ``expires`` / ``refreshTokenExpires`` to the encoding of
    a column without a SQL date-time type (see :func:`codec_for`).
    """
    datetime_formats = datetime_formats or {}
    problems: list[str] = []
    by_name = {column.name: column for column in table.columns}
    missing = [name for name in COLUMNS if name not in by_name]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")

    columns: list[Column[Any]] = []
    codecs: list[Codec] = []
    for name in COLUMNS:
        if name not in by_name:
            continue
        codec = codec_for(by_name[name], dialect, datetime_formats.get(name))
        if isinstance(codec, str):
            problems.append(codec)
        else:
            columns.append(by_name[name])
            codecs.append(codec)

    if "id" in by_name and not _is_unique(table, by_name["id"]):
        problems.append(
            "id is neither the primary key nor unique, so a store could add a second row "
            "instead of replacing the first"
        )
    for column in table.columns:
        if column.name not in COLUMNS and _needs_value(column):
            problems.append(
                f"extra column {column.name} is NOT NULL without a default, so inserts would fail"
            )
    return ColumnPlan(tuple(columns), tuple(codecs), tuple(problems))


def compare_columns(declared: ColumnPlan, real: ColumnPlan) -> list[str]:
    """Problems of a declared table whose columns differ in kind from the real ones."""
    real_codecs = {codec.column: codec for codec in real.codecs}
    problems = []
    for codec in declared.codecs:
        found = real_codecs.get(codec.column)
        if found is not None and type(found) is not type(codec):
            problems.append(
                f"{codec.column} is declared as {type(codec).__name__.removesuffix('Codec')} "
                f"but the database column holds {type(found).__name__.removesuffix('Codec')}"
            )
    return problems


def reflect_table(connection: Connection, name: str, schema: str | None) -> Table | None:
    """The table as the database has it, or ``None`` if it does not exist."""
    try:
        return Table(name, MetaData(), schema=schema, autoload_with=connection)
    except NoSuchTableError:
        return None


def _is_unique(table: Table, id_column: Column[Any]) -> bool:
    if list(table.primary_key.columns) == [id_column] or id_column.unique:
        return True
    unique_keys: list[UniqueConstraint | Index] = [
        *(c for c in table.constraints if isinstance(c, UniqueConstraint)),
        *(i for i in table.indexes if i.unique),
    ]
    return any(list(key.columns) == [id_column] for key in unique_keys)


def _needs_value(column: Column[Any]) -> bool:
    return (
        not column.nullable
        and column.default is None
        and column.server_default is None
        and not (column.primary_key and column.autoincrement in (True, "auto"))
        and column.computed is None
        and column.identity is None
    )
