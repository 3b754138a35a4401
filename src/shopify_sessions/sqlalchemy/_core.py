"""Everything the SQL storages do that is not I/O: statements, parameters, rows.

The sync and async storages execute what this builds and nothing else, so their
behaviour cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Delete, Select, Table, bindparam, delete, select, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert

from .._errors import InvalidSessionError, MissingSessionTableError, SessionTableSchemaError
from .._session import AssociatedUser, OnlineAccessInfo, Session
from .._storage import (
    check_id,
    check_ids,
    check_session,
    check_shop,
    is_purgeable,
    session_order,
)
from ._codecs import Codec, DateTimeFormat
from ._schema import compare_columns, plan_columns
from ._upsert import build_upsert

#: Ids per DELETE statement: well under every driver's limit on bound parameters
#: (SQLite's oldest is 999), and large enough that 100,000 ids take 200 statements.
IDS_PER_STATEMENT = 500


class SessionTableCore:
    """The statements and row mapping for one sessions table on one dialect."""

    __slots__ = (
        "_codecs",
        "_datetime_formats",
        "_expiry_codecs",
        "_expiry_page",
        "_keys",
        "delete_by_id",
        "delete_by_ids",
        "dialect",
        "select_by_id",
        "select_by_shop",
        "table",
        "upsert",
    )

    def __init__(
        self,
        table: Table,
        dialect: Dialect,
        datetime_formats: Mapping[str, DateTimeFormat] | None = None,
    ) -> None:
        self.table = table
        self.dialect = dialect
        self._datetime_formats = dict(datetime_formats or {})
        plan = plan_columns(table, dialect, self._datetime_formats)
        if plan.problems:
            raise SessionTableSchemaError(describe_table(table), plan.problems)
        self._use(plan.columns, plan.codecs)

    def _use(self, columns: Sequence[Column[Any]], codecs: Sequence[Codec]) -> None:
        """Build every statement once, for these columns and codecs."""
        self._codecs = tuple(codecs)
        self._keys = tuple(column.key for column in columns)
        carried = [
            column if codec.carrier is None else type_coerce(column, codec.carrier)
            for column, codec in zip(columns, codecs, strict=True)
        ]
        values = {
            column: bindparam(column.key, type_=codec.carrier or column.type)
            for column, codec in zip(columns, codecs, strict=True)
        }
        by_name = {column.name: column for column in columns}
        id_column, shop_column = by_name["id"], by_name["shop"]
        self.upsert: Insert = build_upsert(self.table, values, self.dialect.name)
        self.select_by_id: Select[Any] = select(*carried).where(id_column == bindparam("id"))
        self.select_by_shop: Select[Any] = select(*carried).where(shop_column == bindparam("shop"))
        self.delete_by_id: Delete = delete(self.table).where(id_column == bindparam("id"))
        self.delete_by_ids: Delete = delete(self.table).where(
            id_column.in_(bindparam("ids", expanding=True))
        )
        expiry = ("id", "expires", "refreshToken", "refreshTokenExpires")
        self._expiry_codecs = tuple(codecs[columns.index(by_name[name])] for name in expiry)
        self._expiry_page = (
            select(*(carried[columns.index(by_name[name])] for name in expiry))
            .where(by_name["expires"].is_not(None), id_column > bindparam("after"))
            .order_by(id_column)
        )

    @property
    def name(self) -> str:
        """The table's name as a message should show it."""
        return describe_table(self.table)

    def adopt_database_table(self, real: Table | None) -> None:
        """Check the table the database has, and take its column details from now on.

        The declared table gives the statements; the real one gives what each column
        can hold (lengths, nullability), so bad values are refused before they are sent.
        """
        if real is None:
            raise MissingSessionTableError(
                f"the sessions table {self.name} does not exist: create it with the storage's "
                "create_table() method, or with Alembic from "
                "shopify_sessions.sqlalchemy.session_table(metadata)"
            )
        real_plan = plan_columns(real, self.dialect, self._datetime_formats)
        declared_plan = plan_columns(self.table, self.dialect, self._datetime_formats)
        problems = [*real_plan.problems, *compare_columns(declared_plan, real_plan)]
        if problems:
            raise SessionTableSchemaError(self.name, problems)
        real_codecs = {codec.column: codec for codec in real_plan.codecs}
        self._use(declared_plan.columns, [real_codecs[c.column] for c in declared_plan.codecs])

    def store_parameters(self, session: Session) -> dict[str, Any]:
        """The upsert's parameters for ``session``; raises InvalidSessionError for bad input."""
        session = check_session(session)
        info = session.online_access_info
        user = info.associated_user if info is not None else AssociatedUser()
        values = (
            session.id,
            session.shop,
            session.state,
            session.is_online,
            session.scope,
            session.expires,
            session.access_token,
            user.id,
            user.first_name,
            user.last_name,
            user.email,
            user.account_owner,
            user.locale,
            user.collaborator,
            user.email_verified,
            session.refresh_token,
            session.refresh_token_expires,
        )
        return {
            key: codec.encode(value)
            for key, codec, value in zip(self._keys, self._codecs, values, strict=True)
        }

    def id_parameters(self, id: str) -> dict[str, Any]:
        """Parameters of ``select_by_id`` and ``delete_by_id``."""
        return {"id": check_id(id)}

    def shop_parameters(self, shop: str) -> dict[str, Any]:
        """Parameters of ``select_by_shop``."""
        return {"shop": check_shop(shop)}

    def ids_parameters(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """One parameter set of ``delete_by_ids`` per chunk of ``ids`` (none for ``[]``)."""
        unique = check_ids(ids)
        return [{"ids": chunk} for chunk in _chunks(unique, IDS_PER_STATEMENT)]

    def session_from_row(self, row: Sequence[Any]) -> Session:
        """The session a ``select_by_*`` row holds."""
        (
            id,
            shop,
            state,
            is_online,
            scope,
            expires,
            access_token,
            user_id,
            first_name,
            last_name,
            email,
            account_owner,
            locale,
            collaborator,
            email_verified,
            refresh_token,
            refresh_token_expires,
        ) = (codec.decode(value) for codec, value in zip(self._codecs, row, strict=True))
        online_access_info = None
        if is_online:
            online_access_info = OnlineAccessInfo(
                associated_user=AssociatedUser(
                    id=user_id,
                    first_name=first_name,
                    last_name=last_name,
                    email=email,
                    email_verified=email_verified,
                    account_owner=account_owner,
                    locale=locale,
                    collaborator=collaborator,
                )
            )
        return Session(
            id,
            shop,
            state,
            bool(is_online),
            scope=scope,
            expires=expires,
            access_token=access_token,
            refresh_token=refresh_token,
            refresh_token_expires=refresh_token_expires,
            online_access_info=online_access_info,
        )

    def expiry_page(self, size: int) -> Select[Any]:
        """The next ``size`` rows with an ``expires``, after id ``:after``, in id order."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidSessionError("batch_size must be a positive int")
        return self._expiry_page.limit(size)

    def purgeable_ids(
        self, rows: Sequence[Sequence[Any]], now: datetime, cutoff: datetime
    ) -> list[str]:
        """The ids of ``expiry_page`` rows that :func:`is_purgeable` allows to delete."""
        decoders = [codec.decode for codec in self._expiry_codecs]
        doomed = []
        for row in rows:
            id, expires, refresh_token, refresh_expires = (
                decode(value) for decode, value in zip(decoders, row, strict=True)
            )
            if is_purgeable(expires, refresh_token, refresh_expires, cutoff, now):
                doomed.append(id)
        return doomed

    def sessions_from_rows(self, rows: Sequence[Sequence[Any]]) -> list[Session]:
        """The sessions of ``select_by_shop`` rows, in :func:`~shopify_sessions.session_order`."""
        return sorted(map(self.session_from_row, rows), key=session_order)


def describe_table(table: Table) -> str:
    """``schema.name`` or ``name``, quoted the way it is spelled."""
    return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
