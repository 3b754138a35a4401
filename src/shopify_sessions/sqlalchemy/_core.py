"""Everything the SQL storages do that is not I/O: statements, parameters, rows.

The sync and async storages execute what this builds and nothing else, so their
behaviour cannot drift apart.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    Column,
    Delete,
    Select,
    Table,
    Update,
    any_,
    bindparam,
    delete,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.engine.processors import int_to_boolean
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert

from .._encryption import TokenCipher
from .._errors import (
    InvalidSessionError,
    MissingSessionTableError,
    SessionDataError,
    SessionTableSchemaError,
)
from .._session import AssociatedUser, OnlineAccessInfo, Session, restore_session
from .._storage import (
    InvalidEntryHandler,
    check_batch_size,
    check_id,
    check_ids,
    check_replacement,
    check_session,
    check_shop,
    holds_tokens,
    is_purgeable,
    is_refresh_due,
    session_order,
    shown_id,
)
from ._codecs import Codec, DateTimeFormat, EncryptedTextCodec, TextCodec
from ._layout import (
    ABSENT_IS_FALSE,
    FALSY_IS_NULL,
    Layout,
    absent_is_false,
    detect_layout,
    falsy_is_null,
)
from ._schema import compare_columns, plan_columns
from ._table import COLUMNS
from ._upsert import build_upsert

RowT = TypeVar("RowT", bound=Sequence[Any])

#: Ids per DELETE statement: well under every driver's limit on bound parameters
#: (SQLite's oldest is 999), and large enough that 100,000 ids take 200 statements.
IDS_PER_STATEMENT = 500
#: The number of ids a DELETE statement is built for (MySQL, SQLite): a call's ids are
#: padded (with its last id again) to the next of these. A statement per count keeps the
#: statement text fixed, so the driver's statement cache (SQLite's) finds it; a few
#: counts bound the statements to 26 per table, with under a third more parameters than
#: ids. PostgreSQL takes the ids as one array parameter: one statement for any count.
IDS_COUNTS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 25, 32, 40, 50, 64, 80)
IDS_COUNTS += (100, 128, 160, 200, 250, 320, 400, IDS_PER_STATEMENT)
ID_NAMES = tuple(f"i{n}" for n in range(IDS_PER_STATEMENT))
#: A statement compiled once to the driver's SQL, with the order of its parameters (for
#: a driver that takes them by position) or ``None`` (by name): what ``exec_driver_sql``
#: runs. The app's engine events see it like any other statement.
DriverSQL = tuple[str, tuple[str, ...] | None]
#: One DELETE of ``ids_deletes``: SQLAlchemy's statement and its parameters, or the
#: driver's SQL and its parameters.
IdsDelete = tuple[Delete, dict[str, Any]] | tuple[str, Any]

#: What a hot statement's execution returns: nothing, its first row, or all its rows.
FETCH_NONE, FETCH_ONE, FETCH_ALL = 0, 1, 2
#: A result column's processing: its position, and SQLAlchemy's result processor for it.
ResultProcessors = tuple[tuple[int, Callable[[Any], Any]], ...]
#: One execution of a hot statement: the driver's SQL, its arguments in the driver's form,
#: what to fetch, and the processing of the rows' columns.
HotCall = tuple[str, Any, int, ResultProcessors]


class HotStatement:
    """A statement compiled once to the driver's SQL, with what SQLAlchemy's execute would
    do to its parameters and result rows: its bind and result processors, done here.

    The storages run these on the pooled driver connection when nothing listens to their
    engine (``_direct``): the text, the parameters and the values are the ones SQLAlchemy's
    execute would send and return, so the rows written and read are the same.
    """

    __slots__ = ("_binds", "_names", "_order", "fetch", "results", "sql")

    def __init__(
        self,
        sql: str,
        names: tuple[str, ...],
        order: tuple[str, ...] | None,
        binds: tuple[tuple[str, Callable[[Any], Any]], ...],
        fetch: int,
        results: ResultProcessors,
    ) -> None:
        self.sql = sql
        self._names = names
        self._order = order
        self._binds = binds
        self.fetch = fetch
        self.results = results

    def call(self, parameters: Mapping[str, Any]) -> HotCall:
        """This statement's execution with ``parameters`` (by bind name)."""
        if self._binds:
            parameters = dict(parameters)
            for name, process in self._binds:
                parameters[name] = process(parameters[name])
        if self._order is None:
            arguments: Any = {name: parameters[name] for name in self._names}
        else:
            arguments = tuple([parameters[name] for name in self._order])
        return self.sql, arguments, self.fetch, self.results


def hot_statement(
    statement: Insert | Select[Any] | Delete,
    dialect: Dialect,
    names: Sequence[str],
    fetch: int,
    read_as_bool: frozenset[int] = frozenset(),
) -> HotStatement | None:
    """``statement`` compiled once for ``dialect``, taking exactly the parameters ``names``;
    ``None`` where SQLAlchemy's execute does more than send its text with processed
    parameters (defaults computed in Python, post-compile or escaped parameters, a
    schema translation, RETURNING, a driver that needs input sizes): those run through
    SQLAlchemy. Result columns in ``read_as_bool`` are decoded with ``bool`` afterwards
    (NULL passed by), which makes SQLAlchemy's ``int_to_boolean`` a no-op there."""
    if dialect.bind_typing is BindTyping.SETINPUTSIZES:
        return None
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if (
        compiled.escaped_bind_names
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.effective_returning
        or compiled.has_out_parameters
    ):
        return None
    if set(compiled.bind_names.values()) != set(names):
        return None
    processors = compiled._bind_processors
    binds: list[tuple[str, Callable[[Any], Any]]] = []
    for name in names:
        process = processors.get(name)
        if process is None:
            continue
        if not callable(process):  # a processor per element (a tuple type): not these
            return None
        binds.append((name, process))
    results: ResultProcessors = ()
    if isinstance(statement, Select):
        results = tuple(
            (index, process)
            for index, column in enumerate(statement.selected_columns)
            if (process := column.type._cached_result_processor(dialect, None)) is not None
            and not (index in read_as_bool and process is int_to_boolean)
        )
    order = compiled.positiontup
    return HotStatement(
        compiled.string,
        tuple(names),
        None if order is None else tuple(order),
        tuple(binds),
        fetch,
        results,
    )


class SessionTableCore:
    """The statements and row mapping for one sessions table on one dialect."""

    __slots__ = (
        "_cipher",
        "_codecs",
        "_datetime_formats",
        "_decoders",
        "_delete_by_id_array",
        "_delete_by_ids",
        "_due_page",
        "_encoders",
        "_expiry_codecs",
        "_expiry_page",
        "_false_when_absent",
        "_id_position",
        "_keys",
        "_null_when_falsy",
        "_refuse_nul",
        "_select_by_id_array",
        "_select_by_ids",
        "_session_page",
        "_token_codecs",
        "_token_keys",
        "_token_page",
        "delete_by_id",
        "dialect",
        "hot_delete_by_id",
        "hot_select_by_id",
        "hot_select_by_shop",
        "hot_upsert",
        "layout",
        "replace",
        "select_by_id",
        "select_by_shop",
        "select_tokens",
        "table",
        "token_update",
        "upsert",
    )

    def __init__(
        self,
        table: Table,
        dialect: Dialect,
        datetime_formats: Mapping[str, DateTimeFormat] | None = None,
        cipher: TokenCipher | None = None,
    ) -> None:
        self.table = table
        self.dialect = dialect
        self._datetime_formats = dict(datetime_formats or {})
        self._cipher = cipher
        #: PostgreSQL's text cannot hold NUL: a lookup of such an id or shop is refused as
        #: a store of it is, before the driver fails on it.
        self._refuse_nul = dialect.name == "postgresql"
        plan = plan_columns(table, dialect, self._datetime_formats)
        if plan.problems:
            raise SessionTableSchemaError(describe_table(table), plan.problems)
        self._follow(detect_layout(table, dialect))
        self._use(plan.columns, plan.codecs)

    def _follow(self, layout: Layout) -> None:
        """Write rows as the Node adapter of ``layout`` does (see ``_layout``)."""
        self.layout = layout
        positions = {name: index for index, name in enumerate(COLUMNS)}
        self._null_when_falsy = (
            tuple(positions[name] for name in FALSY_IS_NULL) if falsy_is_null(layout) else ()
        )
        self._false_when_absent = (
            tuple(positions[name] for name in ABSENT_IS_FALSE) if absent_is_false(layout) else ()
        )

    def _use(self, columns: Sequence[Column[Any]], codecs: Sequence[Codec]) -> None:
        """Build every statement once, for these columns and codecs."""
        if self._cipher is not None:
            codecs = [_encrypted(codec, self._cipher) for codec in codecs]
        self._codecs = tuple(codecs)
        self._encoders = tuple(
            _encoder(column.key, codec) for column, codec in zip(columns, codecs, strict=True)
        )
        self._decoders = tuple(
            (index, decode)
            for index, decode in enumerate(codec.decoder() for codec in codecs)
            if decode is not None
        )
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
        position = {column.name: index for index, column in enumerate(columns)}
        id_column, shop_column = by_name["id"], by_name["shop"]
        self.upsert: Insert = build_upsert(self.table, values, self.dialect.name)
        self.select_by_id: Select[Any] = select(*carried).where(id_column == bindparam("id"))
        self.select_by_shop: Select[Any] = select(*carried).where(shop_column == bindparam("shop"))
        self._id_position = position["id"]
        self._select_by_ids: dict[int, Select[Any]] = {}
        self._select_by_id_array: Select[Any] | None = None
        if self.dialect.name == "postgresql":
            self._select_by_id_array = select(*carried).where(
                id_column == any_(bindparam("ids", type_=ARRAY(id_column.type)))
            )
        self.delete_by_id: Delete = delete(self.table).where(id_column == bindparam("id"))
        self._delete_by_ids: dict[int, tuple[Delete, DriverSQL | None]] = {}
        self._delete_by_id_array: tuple[Delete, DriverSQL | None] | None = None
        if self.dialect.name == "postgresql":
            by_array = delete(self.table).where(
                id_column == any_(bindparam("ids", type_=ARRAY(id_column.type)))
            )
            self._delete_by_id_array = by_array, _driver_sql(by_array, self.dialect, id_column)
        # The same four, compiled once to the driver's SQL: what the storages run on their
        # pooled driver connections while nothing listens (None: SQLAlchemy runs it).
        self.hot_upsert = hot_statement(self.upsert, self.dialect, self._keys, FETCH_NONE)
        read_as_bool = frozenset(index for index, decode in self._decoders if decode is bool)
        self.hot_select_by_id = hot_statement(
            self.select_by_id, self.dialect, ("id",), FETCH_ONE, read_as_bool
        )
        self.hot_select_by_shop = hot_statement(
            self.select_by_shop, self.dialect, ("shop",), FETCH_ALL, read_as_bool
        )
        self.hot_delete_by_id = hot_statement(self.delete_by_id, self.dialect, ("id",), FETCH_NONE)
        self._session_page = (
            select(*carried).where(id_column > bindparam("after")).order_by(id_column)
        )
        expiry = ("id", "expires", "refreshToken", "refreshTokenExpires")
        self._expiry_codecs = tuple(codecs[position[name]] for name in expiry)
        self._expiry_page = (
            select(*(carried[position[name]] for name in expiry))
            .where(by_name["expires"].is_not(None), id_column > bindparam("after"))
            .order_by(id_column)
        )
        self._due_page = (
            select(*carried)
            .where(by_name["refreshTokenExpires"].is_not(None), id_column > bindparam("after"))
            .order_by(id_column)
        )
        access, refresh = by_name["accessToken"], by_name["refreshToken"]
        self._token_codecs = (codecs[position["accessToken"]], codecs[position["refreshToken"]])
        self._token_keys = (access.key, refresh.key)
        self.select_tokens: Select[Any] = select(
            carried[position["accessToken"]], carried[position["refreshToken"]]
        ).where(id_column == bindparam("id"))
        # Compare-and-set of a whole row (replace_session): only over the tokens it replaces.
        self.replace: Update = (
            update(self.table)
            .where(
                id_column == bindparam("row_id"),
                access.is_not_distinct_from(bindparam("old_access", type_=values[access].type)),
                refresh.is_not_distinct_from(bindparam("old_refresh", type_=values[refresh].type)),
            )
            .values({column: value for column, value in values.items() if column is not id_column})
        )
        self._token_page = (
            select(id_column, access, refresh)
            .where(id_column > bindparam("after"))
            .order_by(id_column)
        )
        # Compare-and-swap: a row a store changed since it was read is left alone.
        self.token_update: Update = (
            update(self.table)
            .where(
                id_column == bindparam("row_id"),
                access.is_not_distinct_from(bindparam("old_access")),
                refresh.is_not_distinct_from(bindparam("old_refresh")),
            )
            .values({access: bindparam("new_access"), refresh: bindparam("new_refresh")})
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
        self._follow(detect_layout(real, self.dialect))
        self._use(declared_plan.columns, [real_codecs[c.column] for c in declared_plan.codecs])

    def store_parameters(self, session: Session) -> dict[str, Any]:
        """The upsert's parameters for ``session``; raises InvalidSessionError for bad input."""
        session = check_session(session)
        info = session.online_access_info
        user = info.associated_user if info is not None else AssociatedUser()
        values = [
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
        ]
        for index in self._null_when_falsy:
            if not values[index]:
                values[index] = None
        for index in self._false_when_absent:
            if values[index] is None:
                values[index] = False
        parameters = {}
        for (key, encode_value, none_value, codec), value in zip(
            self._encoders, values, strict=True
        ):
            if value is not None:
                parameters[key] = encode_value(value)
            elif none_value is not _REQUIRED:
                parameters[key] = none_value
            else:
                parameters[key] = codec.encode_none()  # raises: the field is required
        return parameters

    @property
    def encrypts_tokens(self) -> bool:
        """Whether tokens are stored encrypted, so that their stored text differs per write."""
        return self._cipher is not None

    def replace_parameters(
        self, session: Session, previous: Session, stored: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        """``replace``'s parameters: store ``session`` where the row holds ``previous``'s tokens.

        ``stored`` is the row's tokens as ``select_tokens`` read them; it is needed when
        tokens are encrypted (their stored text cannot be computed again), and is
        otherwise computed from ``previous``.
        """
        session, previous = check_replacement(session, previous)
        parameters = self.store_parameters(session)
        if stored is None:
            if self._cipher is not None:
                raise ValueError("encrypted tokens are compared with the stored text")
            old = self.store_parameters(previous)
            stored = [old.get(key) for key in self._token_keys]
        parameters["row_id"] = session.id
        parameters["old_access"], parameters["old_refresh"] = stored
        return parameters

    def holds_tokens(self, stored: Sequence[Any], session: Session) -> bool:
        """Whether tokens read by ``select_tokens`` are ``session``'s."""
        access_codec, refresh_codec = self._token_codecs
        access, refresh = stored
        return holds_tokens(
            None if access is None else access_codec.decode(access),
            None if refresh is None else refresh_codec.decode(refresh),
            session,
        )

    def id_parameters(self, id: str) -> dict[str, Any]:
        """Parameters of ``select_by_id`` and ``delete_by_id``."""
        return {"id": self._looked_up(check_id(id), "a session id")}

    def shop_parameters(self, shop: str) -> dict[str, Any]:
        """Parameters of ``select_by_shop``."""
        return {"shop": self._looked_up(check_shop(shop), "a shop")}

    def _looked_up(self, text: str, what: str) -> str:
        if self._refuse_nul and "\x00" in text:
            raise InvalidSessionError(
                f"{what} contains a NUL character, which PostgreSQL's text cannot hold"
            )
        return text

    def _checked_ids(self, ids: Sequence[str]) -> list[str]:
        unique = check_ids(ids)
        if self._refuse_nul:
            for id in unique:
                self._looked_up(id, "a session id")
        return unique

    def ids_deletes(self, ids: Sequence[str]) -> list[IdsDelete]:
        """One DELETE and its parameters per chunk of ``ids`` (none for ``[]``).

        PostgreSQL: ``DELETE ... WHERE id = ANY(:ids)``, the chunk as one array parameter,
        one statement text for any count (prepared once per connection). Elsewhere
        ``DELETE ... WHERE id IN (:i0, ...)`` of a few fixed arities. Not an expanding
        ``IN``: SQLAlchemy renders one of those again at each call, a bound parameter per
        id (about 0.7 ms per 100 ids on PostgreSQL). Each is compiled once to the driver's
        SQL, run with ``exec_driver_sql``, unless the id column's type processes values
        (then SQLAlchemy runs the statement): SQLAlchemy's handling of 100 parameters
        costs more than the rest of the call on a fast server (40-70 µs, measured).
        """
        unique = self._checked_ids(ids)
        deletes: list[IdsDelete] = []
        for chunk in _chunks(unique, IDS_PER_STATEMENT):
            if self._delete_by_id_array is not None:
                statement, driver = self._delete_by_id_array
                deletes.append(_bound(statement, driver, {"ids": chunk}))
                continue
            count = IDS_COUNTS[bisect_left(IDS_COUNTS, len(chunk))]
            padded = chunk + [chunk[-1]] * (count - len(chunk))
            statement, driver = self._delete_of(count)
            deletes.append(_bound(statement, driver, dict(zip(ID_NAMES, padded, strict=False))))
        return deletes

    def hot_delete(self, deletes: Sequence[IdsDelete]) -> HotCall | None:
        """The DELETE of ``ids_deletes`` as a hot call, when there is one and it is compiled
        to the driver's SQL already."""
        if len(deletes) != 1:
            return None
        sql, arguments = deletes[0]
        return (sql, arguments, FETCH_NONE, ()) if isinstance(sql, str) else None

    def ids_selects(self, ids: Sequence[str]) -> list[tuple[Select[Any], dict[str, Any]]]:
        """The ``select_by_id`` of several ids: a select and its parameters per chunk of
        unique ``ids`` (``= ANY(:ids)`` on PostgreSQL, fixed-arity ``IN`` elsewhere, as
        :meth:`ids_deletes`). Pair the rows with their ids with :meth:`rows_by_id`."""
        unique = self._checked_ids(ids)
        selects: list[tuple[Select[Any], dict[str, Any]]] = []
        for chunk in _chunks(unique, IDS_PER_STATEMENT):
            if self._select_by_id_array is not None:
                selects.append((self._select_by_id_array, {"ids": chunk}))
                continue
            count = IDS_COUNTS[bisect_left(IDS_COUNTS, len(chunk))]
            statement = self._select_by_ids.get(count)
            if statement is None:
                id_column = next(c for c in self.table.columns if c.name == "id")
                marks: list[BindParameter[Any]] = [bindparam(name) for name in ID_NAMES[:count]]
                columns = self.select_by_id.selected_columns
                statement = select(*columns).where(id_column.in_(marks))
                self._select_by_ids[count] = statement
            padded = chunk + [chunk[-1]] * (count - len(chunk))
            selects.append((statement, dict(zip(ID_NAMES, padded, strict=False))))
        return selects

    def rows_by_id(self, rows: Sequence[RowT]) -> dict[str, RowT]:
        """``ids_selects`` rows by the id each holds, exactly as stored."""
        position = self._id_position
        return {row[position]: row for row in rows}

    def delete_by_ids(self, count: int) -> Delete:
        """``DELETE ... WHERE id IN (:i0, ..., :i{count - 1})``, built once per count."""
        return self._delete_of(count)[0]

    def _delete_of(self, count: int) -> tuple[Delete, DriverSQL | None]:
        built = self._delete_by_ids.get(count)
        if built is None:
            id_column = next(c for c in self.table.columns if c.name == "id")
            marks: list[BindParameter[Any]] = [bindparam(name) for name in ID_NAMES[:count]]
            statement = delete(self.table).where(id_column.in_(marks))
            built = statement, _driver_sql(statement, self.dialect, id_column)
            self._delete_by_ids[count] = built
        return built

    def session_from_row(self, row: Sequence[Any]) -> Session:
        """The session a ``select_by_*`` row holds; :class:`SessionDataError` if the row
        holds values no session has (text where a date-time belongs, say)."""
        try:
            return self._session_from_row(row)
        except (ValueError, TypeError, ArithmeticError) as error:
            raise self._not_a_session(row, error) from error

    def sessions_of_page(
        self, rows: Sequence[Sequence[Any]], on_invalid: InvalidEntryHandler | None
    ) -> list[Session]:
        """The sessions of ``session_page`` rows. A row that holds no session raises
        :class:`SessionDataError`, or with ``on_invalid`` is handed to it and left out."""
        if on_invalid is None:
            return [self.session_from_row(row) for row in rows]
        sessions = []
        for row in rows:
            try:
                sessions.append(self.session_from_row(row))
            except SessionDataError as error:
                on_invalid(str(row[self._id_position]), error)
        return sessions

    def _not_a_session(self, row: Sequence[Any], error: Exception) -> SessionDataError:
        """The error for a row that a codec could not read: its id and the column, never
        the value (it may be a token)."""
        values = list(row)
        if len(values) != len(self._keys):
            return SessionDataError(f"a row of {self.name} could not be read: {error}")
        failed = (index for index, decode in self._decoders if _fails(decode, values[index]))
        column = next((self._keys[index] for index in failed), None)
        what = f"{column} holds a value of the wrong kind" if column else type(error).__name__
        return SessionDataError(
            f"the row with id {shown_id(values[self._id_position])} in {self.name} holds no "
            f"valid session: {what}"
        )

    def _session_from_row(self, row: Sequence[Any]) -> Session:
        values = list(row)
        if len(values) != len(self._keys):
            raise ValueError(f"a row of {len(values)} values; the table has {len(self._keys)}")
        for index, decode in self._decoders:
            value = values[index]
            if value is not None:  # every codec reads NULL as None
                values[index] = decode(value)
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
        ) = values
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
        # The date-time codecs return aware UTC to the millisecond already.
        return restore_session(
            id,
            shop,
            state,
            bool(is_online),
            scope,
            expires,
            access_token,
            refresh_token,
            refresh_token_expires,
            online_access_info,
        )

    def session_page(self, size: int) -> Select[Any]:
        """The next ``size`` whole rows after id ``:after``, in id order (``session_from_row``)."""
        return self._session_page.limit(check_batch_size(size))

    def expiry_page(self, size: int) -> Select[Any]:
        """The next ``size`` rows with an ``expires``, after id ``:after``, in id order."""
        return self._expiry_page.limit(check_batch_size(size))

    def purgeable_ids(
        self,
        rows: Sequence[Sequence[Any]],
        now: datetime,
        cutoff: datetime,
        on_invalid: InvalidEntryHandler | None = None,
    ) -> list[str]:
        """The ids of ``expiry_page`` rows that :func:`is_purgeable` allows to delete.

        A row whose expiry columns hold no date-time raises :class:`SessionDataError`, or
        with ``on_invalid`` is handed to it and kept.
        """
        decoders = [codec.decode for codec in self._expiry_codecs]
        doomed: list[str] = []
        for row in rows:
            try:
                id, expires, refresh_token, refresh_expires = (
                    decode(value) for decode, value in zip(decoders, row, strict=True)
                )
            except (ValueError, TypeError, ArithmeticError) as error:
                failure = SessionDataError(
                    f"the row with id {shown_id(row[0])} in {self.name} holds no valid "
                    f"session: its expiry columns hold values of the wrong kind"
                )
                if on_invalid is None:
                    raise failure from error
                on_invalid(str(row[0]), failure)
                continue
            if is_purgeable(expires, refresh_token, refresh_expires, cutoff, now):
                doomed.append(id)
        return doomed

    def due_page(self, size: int) -> Select[Any]:
        """The next ``size`` whole rows with a refresh token expiry, after id ``:after``."""
        return self._due_page.limit(check_batch_size(size))

    def due_sessions(self, rows: Sequence[Sequence[Any]], before: datetime) -> list[Session]:
        """The sessions of ``due_page`` rows that :func:`is_refresh_due` before ``before``."""
        sessions = (self.session_from_row(row) for row in rows)
        return [session for session in sessions if is_refresh_due(session, before)]

    def token_page(self, size: int) -> Select[Any]:
        """The next ``size`` rows' id and tokens, after id ``:after``, in id order."""
        if self._cipher is None:
            raise InvalidSessionError("reencrypt_tokens needs a storage with a token_cipher")
        return self._token_page.limit(check_batch_size(size))

    def reencryptions(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """``token_update`` parameters for the rows not yet encrypted under the current key."""
        access_codec, refresh_codec = self._token_codecs
        assert isinstance(access_codec, EncryptedTextCodec)
        assert isinstance(refresh_codec, EncryptedTextCodec)
        updates = []
        for id, access, refresh in rows:
            new_access = access_codec.reencrypted(access)
            new_refresh = refresh_codec.reencrypted(refresh)
            if (new_access, new_refresh) != (access, refresh):
                updates.append(
                    {
                        "row_id": id,
                        "old_access": access,
                        "old_refresh": refresh,
                        "new_access": new_access,
                        "new_refresh": new_refresh,
                    }
                )
        return updates

    def sessions_from_rows(self, rows: Sequence[Sequence[Any]]) -> list[Session]:
        """The sessions of ``select_by_shop`` rows, in :func:`~shopify_sessions.session_order`."""
        return sorted(map(self.session_from_row, rows), key=session_order)


def describe_table(table: Table) -> str:
    """``schema.name`` or ``name``, quoted the way it is spelled."""
    return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


#: ``none_value`` of a field that must not be None.
_REQUIRED = object()


def _encoder(key: str, codec: Codec) -> tuple[str, Callable[[Any], Any], Any, Codec]:
    """(parameter name, encode a value, what None encodes to or ``_REQUIRED``, the codec)."""
    try:
        none_value = codec.encode_none()
    except InvalidSessionError:
        none_value = _REQUIRED
    return key, codec.encode_value, none_value, codec


def _encrypted(codec: Codec, cipher: TokenCipher) -> Codec:
    if codec.column in ("accessToken", "refreshToken") and isinstance(codec, TextCodec):
        return EncryptedTextCodec(codec, cipher)
    return codec


def _driver_sql(statement: Delete, dialect: Dialect, id_column: Column[Any]) -> DriverSQL | None:
    """``statement`` (whose only parameters are ids) compiled to the driver's SQL, or
    ``None`` when the id column's type processes values on their way to the driver (a
    ``TypeDecorator`` of the app's, say): then only SQLAlchemy's execute runs it right."""
    if id_column.type.dialect_impl(dialect).bind_processor(dialect) is not None:
        return None
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.escaped_bind_names:
        return None
    order = compiled.positiontup
    return compiled.string, None if order is None else tuple(order)


def _bound(statement: Delete, driver: DriverSQL | None, parameters: dict[str, Any]) -> IdsDelete:
    """What runs ``statement`` with ``parameters``: its driver SQL if it has one."""
    if driver is None:
        return statement, parameters
    sql, order = driver
    return sql, parameters if order is None else tuple(parameters[name] for name in order)


def _fails(decode: Callable[[Any], Any], value: Any) -> bool:
    if value is None:
        return False
    try:
        decode(value)
    except (ValueError, TypeError, ArithmeticError):
        return True
    return False


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
