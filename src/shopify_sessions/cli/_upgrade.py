"""``shopify-sessions upgrade``: bring an older table up to what the storage and Node need.

The steps are those of the Node adapters' own migrations, run through Alembic's
operations (``Operations`` on a ``MigrationContext``), so the DDL is Alembic's for the
dialect (on SQLite, a batch table rebuild where ALTER cannot do it):

- the user-info columns (``userId`` ... ``emailVerified``), taking ``userId`` from a
  legacy ``onlineAccessInfo`` column and dropping it, as the raw adapters do;
- the refresh-token columns (``refreshToken``, ``refreshTokenExpires``);
- a ``scope`` of fewer than 1024 characters widened to 1024 (not on Prisma tables,
  whose schema file owns the type);
- an index on ``shop`` (not on Prisma tables: add ``@@index([shop])`` to the schema);
- the lock table (``<table>_locks``) where the session locks keep their leases.

New columns take the types of the table's own layout, so Node keeps reading them.

A plan is applied only if the table it leaves passes the storage's own check: a table
that is no sessions table (no text ``id``, none of the columns every Node schema has had,
a NOT NULL column of its own that inserts would leave empty...) is refused, untouched.
On PostgreSQL and SQLite the plan runs in one transaction, so a failure changes nothing;
MySQL and MariaDB commit each DDL statement, so a failure says which steps were done.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import BatchOperations, Operations
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
    types,
)
from sqlalchemy.engine import Dialect, Engine

from .._errors import SessionStorageError, SessionTableSchemaError
from ..sqlalchemy._codecs import sql_type
from ..sqlalchemy._core import describe_table
from ..sqlalchemy._layout import Layout, detect_layout
from ..sqlalchemy._schema import plan_columns
from ..sqlalchemy._table import COLUMNS, MYSQL, ColumnKind
from ._connect import (
    connection_to,
    is_dynamodb,
    is_redis,
    lock_table_ddl,
    missing_table,
    open_storage,
    ready_dynamodb,
    reflect,
)
from ._options import DEFAULT_TABLE, Json, Schema, TableName, Url
from ._output import ExitCode, Output, plain_name, reporting

#: The raw adapters' width for ``scope`` (their migrateScopeFieldToVarchar1024).
SCOPE_LENGTH = 1024
LEGACY_USER_COLUMN = "onlineAccessInfo"
#: The columns later Node schemas added (user info, then refresh tokens): the ones
#: ``upgrade`` may add. Every schema that ever held sessions has the others; a table
#: without one of them is not a sessions table, and no upgrade makes it one.
ADDED_LATER = (
    "userId",
    "firstName",
    "lastName",
    "email",
    "accountOwner",
    "locale",
    "collaborator",
    "emailVerified",
    "refreshToken",
    "refreshTokenExpires",
)


@dataclass(frozen=True)
class Step:
    """One change: what it does, and how, on Alembic's operations."""

    description: str
    apply: Callable[[Operations], None]
    #: Whether it must run inside a batch operation on SQLite (ALTER COLUMN, DROP COLUMN).
    rebuild: bool = False


@dataclass(frozen=True)
class Plan:
    """The steps that bring one table up to date, in order, and what they leave."""

    table: Table
    layout: Layout
    steps: tuple[Step, ...]
    #: The problems the storage would still find in the table after the steps; while
    #: there are any, the plan must not run.
    problems_after: tuple[str, ...] = ()

    @property
    def makes_it_usable(self) -> bool:
        """Whether the storage can use the table once the steps have run."""
        return not self.problems_after


def plan_upgrade(real: Table, dialect: Dialect, missing_lock_table: Table | None = None) -> Plan:
    """What ``upgrade`` would do to the reflected table ``real`` (no I/O), creating
    ``missing_lock_table`` too if given."""
    layout = detect_layout(real, dialect)
    columns = {column.name: column for column in real.columns}
    name, schema = real.name, real.schema
    steps: list[Step] = []
    legacy = next((c for c in columns if c.lower() == LEGACY_USER_COLUMN.lower()), None)
    prisma = layout in (Layout.PRISMA, Layout.PRISMA_V5)
    scope = columns.get("scope")
    widened = False
    if scope is not None and not prisma:
        scope_type = sql_type(scope, dialect)
        length = getattr(scope_type, "length", None)
        if isinstance(scope_type, types.String) and length is not None and length < SCOPE_LENGTH:
            steps.append(
                Step(
                    f"widen scope from VARCHAR({length}) to VARCHAR({SCOPE_LENGTH})",
                    _widener(name, scope, schema),
                    rebuild=True,
                )
            )
            widened = True
    added: list[Column[Any]] = []
    for column in ADDED_LATER:
        if column in columns:
            continue
        new = Column(column, _new_type(column, real, layout, dialect), nullable=True)
        added.append(new)
        steps.append(
            Step(f"add column {column} {_describe(new.type, dialect)}", _adder(name, new, schema))
        )
    if legacy is not None and "userId" not in columns:
        table = Table(
            name,
            MetaData(),
            Column(legacy, String()),
            Column("userId", BigInteger()),
            schema=schema,
        )
        update = (
            table.update()
            .where(table.c[legacy].is_not(None))
            .values(userId=cast(table.c[legacy], BigInteger()))
        )
        steps.append(Step(f"copy {legacy} into userId", lambda op: op.execute(update)))
        steps.append(
            Step(
                f"drop column {legacy} (the raw adapters' user-info migration does)",
                lambda op: op.drop_column(name, legacy, schema=schema),
            )
        )
    has_index = any([c.name for c in index.columns] == ["shop"] for index in real.indexes)
    has_index = has_index or any(
        [c.name for c in constraint.columns] == ["shop"]
        for constraint in real.constraints
        if isinstance(constraint, UniqueConstraint)
    )
    if not has_index and not prisma and "shop" in columns:
        shop_type = sql_type(columns["shop"], dialect)
        options: dict[str, Any] = {}
        if dialect.name in MYSQL and getattr(shop_type, "length", None) is None:
            options["mysql_length"] = 255
        steps.append(
            Step(
                "create index on shop",
                lambda op: op.create_index(
                    f"{name}_shop_idx", name, ["shop"], schema=schema, **options
                ),
            )
        )
    if missing_lock_table is not None:
        steps.append(
            Step(
                f"create the lock table {describe_table(missing_lock_table)}",
                _executor(lock_table_ddl(missing_lock_table, dialect)),
            )
        )
    dropped = legacy if legacy is not None and "userId" not in columns else None
    after = _after(real, added, widen=widened, dropped=dropped)
    problems = plan_columns(after, dialect).problems
    return Plan(real, layout, tuple(steps), problems)


def _after(real: Table, added: list[Column[Any]], *, widen: bool, dropped: str | None) -> Table:
    """The table as the steps leave it, for the storage's check (no I/O)."""
    after = real.to_metadata(MetaData())
    if widen:
        after.c.scope.type = String(SCOPE_LENGTH)
    if dropped is not None:
        after.c[dropped].nullable = True  # gone: it can no longer stop an insert
    for column in added:
        after.append_column(Column(column.name, column.type, nullable=True))
    return after


def run_plan(
    plan: Plan, operations: Operations, done: Callable[[Step], object] | None = None
) -> None:
    """Apply ``plan`` on Alembic ``operations`` (a batch rebuild on SQLite where needed),
    calling ``done`` after each step."""
    sqlite = operations.get_context().dialect.name == "sqlite"
    for step in plan.steps:
        if sqlite and step.rebuild:
            # Rebuild steps come first in a plan, so the reflected table is what the
            # offline (--sql) rebuild copies from.
            with operations.batch_alter_table(
                plan.table.name,
                schema=plan.table.schema,
                recreate="always",
                copy_from=plan.table if operations.get_context().as_sql else None,
            ) as batch:
                step.apply(batch)  # type: ignore[arg-type]
        else:
            step.apply(operations)
        if done is not None:
            done(step)


def offline_sql(plan: Plan, dialect: Dialect) -> str:
    """The SQL of ``plan`` for ``dialect``, as Alembic renders it offline."""
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect=dialect, opts={"as_sql": True, "output_buffer": buffer}
    )
    run_plan(plan, Operations(context))
    return buffer.getvalue()


def upgrade(
    url: Url,
    table: TableName = DEFAULT_TABLE,
    schema: Schema = None,
    sql: bool = False,
    as_json: Json = False,
) -> None:
    """Upgrade an older sessions table (Node raw adapters' old schemas, Prisma v5, ...).

    Adds the user-info and refresh-token columns, widens a short scope, adds the
    index on shop and creates the lock table, through Alembic's operations. --sql
    prints the SQL instead of running it. Running it again on an up-to-date table does
    nothing.
    """
    with reporting("upgrade", as_json) as output:
        if is_redis(url):
            output.say("Redis needs no table: there is nothing to upgrade")
            output.done({"store": "redis", "created": False, "applied": False})
        if is_dynamodb(url):  # one layout, no columns: check says what a table lacks
            ready_dynamodb(url).close()
            output.say("the DynamoDB table has the Node adapter's layout: nothing to upgrade")
            output.done({"store": "dynamodb", "created": False, "applied": False})
        storage = open_storage(url, table, schema)
        engine = storage.engine
        real = reflect(engine, table, schema)
        if real is None:
            raise missing_table(table, schema)
        locks = storage.lock_table
        missing = reflect(engine, locks.name, locks.schema) is None
        plan = plan_upgrade(real, engine.dialect, locks if missing else None)
        result: dict[str, Any] = {
            "table": plain_name(real),
            "layout": plan.layout.value,
            "steps": [step.description for step in plan.steps],
            "applied": False,
        }
        if not plan.steps and plan.makes_it_usable:
            output.say(f"{describe_table(real)} ({plan.layout.value}) is up to date")
            output.done(result)
        if not plan.makes_it_usable:
            storage.close()
            raise refusal(plan)
        if sql:
            text = offline_sql(plan, engine.dialect)
            result["sql"] = text
            if not output.as_json:
                output.out.print(text, markup=False)
            output.done(result)
        apply_plan(plan, engine, output)
        for step in plan.steps:
            output.say(f"done: {step.description}")
        storage.check_table()
        storage.close()
        result["applied"] = True
        output.done(result, ExitCode.OK)


def refusal(plan: Plan) -> SessionTableSchemaError:
    """The error for a table that no upgrade makes usable: it lists what would remain."""
    return SessionTableSchemaError(
        f"{describe_table(plan.table)}, which upgrade left untouched (no upgrade makes it a "
        "sessions table: is it the right --table?),",
        plan.problems_after,
    )


def apply_plan(plan: Plan, engine: Engine, output: Output) -> None:
    """Run ``plan`` in one transaction where DDL is transactional (PostgreSQL, SQLite);
    on MySQL/MariaDB, which commit each DDL statement, step by step, each committed, and
    on a failure tell which steps were done."""
    done: list[Step] = []
    mysql = engine.dialect.name in MYSQL
    try:
        with connection_to(engine, "upgrade", describe_table(plan.table)) as connection:
            # BEGIN and COMMIT are sent as statements: SQLite's Python driver begins a
            # transaction only before DML, so SQLAlchemy's begin() would leave each DDL
            # statement there committed by itself.
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            operations = Operations(MigrationContext.configure(connection))
            if mysql:
                run_plan(plan, operations, done.append)
                return
            sqlite = engine.dialect.name == "sqlite"
            connection.exec_driver_sql("BEGIN IMMEDIATE" if sqlite else "BEGIN")
            try:
                run_plan(plan, operations)
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
    except SessionStorageError:
        _tell_what_was_done(plan, done if mysql else None, output)
        raise


def _tell_what_was_done(plan: Plan, done: list[Step] | None, output: Output) -> None:
    """After a failed upgrade: nothing (``done`` is None: the transaction rolled back), or
    the steps MySQL committed before the one that failed."""
    if done is None:
        output.details["steps_done"] = []
        output.warn("nothing was changed: the upgrade ran in one transaction, rolled back")
        return
    failed = plan.steps[len(done)].description
    output.details.update(
        {
            "steps_done": [step.description for step in done],
            "step_failed": failed,
            "steps_not_done": [step.description for step in plan.steps[len(done) + 1 :]],
        }
    )
    for step in done:
        output.warn(f"done before the failure (MySQL commits each DDL): {step.description}")
    before = "" if done else ", nothing before it was done"
    output.warn(f"failed: {failed}{before}; the steps after it were not run")


def _widener(name: str, scope: Column[Any], schema: str | None) -> Callable[[Operations], None]:
    options: dict[str, Any] = {
        "type_": String(SCOPE_LENGTH),
        "existing_type": scope.type,
        "existing_nullable": scope.nullable,
    }

    def apply(operations: Operations) -> None:
        if isinstance(operations, BatchOperations):  # SQLite: inside a table rebuild
            operations.alter_column("scope", **options)
        else:
            operations.alter_column(name, "scope", schema=schema, **options)

    return apply


def _executor(statements: list[str]) -> Callable[[Operations], None]:
    def apply(operations: Operations) -> None:
        for statement in statements:
            operations.execute(statement)

    return apply


def _adder(name: str, column: Column[Any], schema: str | None) -> Callable[[Operations], None]:
    def apply(operations: Operations) -> None:
        operations.add_column(name, column, schema=schema)

    return apply


def _new_type(column: str, real: Table, layout: Layout, dialect: Dialect) -> Any:
    kind = COLUMNS[column]
    columns = {c.name: c for c in real.columns}
    sqlite = dialect.name == "sqlite"
    if kind is ColumnKind.TEXT:
        shop = sql_type(columns["shop"], dialect) if "shop" in columns else None
        length = getattr(shop, "length", None)
        return String(length) if length else Text()
    if kind is ColumnKind.BOOLEAN:
        return columns["isOnline"].type if "isOnline" in columns else types.Boolean()
    if kind is ColumnKind.USER_ID:
        if sqlite and layout is Layout.RAW:
            return Integer()
        if sqlite and layout in (Layout.DRIZZLE, Layout.DEFAULT):
            return LargeBinary()
        return BigInteger()
    # A date-time, as the layout keeps it: the raw adapters add refreshTokenExpires as
    # bigint milliseconds on PostgreSQL and integer seconds elsewhere.
    if layout is Layout.RAW:
        return BigInteger() if dialect.name == "postgresql" else Integer()
    return columns["expires"].type if "expires" in columns else types.DateTime()


def _describe(type_: Any, dialect: Dialect) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:
        return type(type_).__name__
