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
from sqlalchemy.engine import Dialect

from ..sqlalchemy._codecs import sql_type
from ..sqlalchemy._core import describe_table
from ..sqlalchemy._layout import Layout, detect_layout
from ..sqlalchemy._table import COLUMNS, MYSQL, Kind
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
from ._output import ExitCode, plain_name, reporting

#: The raw adapters' width for ``scope`` (their migrateScopeFieldToVarchar1024).
SCOPE_LENGTH = 1024
LEGACY_USER_COLUMN = "onlineAccessInfo"


@dataclass(frozen=True)
class Step:
    """One change: what it does, and how, on Alembic's operations."""

    description: str
    apply: Callable[[Operations], None]
    #: Whether it must run inside a batch operation on SQLite (ALTER COLUMN, DROP COLUMN).
    rebuild: bool = False


@dataclass(frozen=True)
class Plan:
    """The steps that bring one table up to date, in order."""

    table: Table
    layout: Layout
    steps: tuple[Step, ...]


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
    for column in COLUMNS:
        if column in columns:
            continue
        new = Column(column, _new_type(column, real, layout, dialect), nullable=True)
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
    return Plan(real, layout, tuple(steps))


def run_plan(plan: Plan, operations: Operations) -> None:
    """Apply ``plan`` on Alembic ``operations`` (a batch rebuild on SQLite where needed)."""
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
        if not plan.steps:
            output.say(f"{describe_table(real)} ({plan.layout.value}) is up to date")
            output.done(result)
        if sql:
            text = offline_sql(plan, engine.dialect)
            result["sql"] = text
            if not output.as_json:
                output.out.print(text, markup=False)
            output.done(result)
        with connection_to(engine, "upgrade", describe_table(real), begin=True) as connection:
            run_plan(plan, Operations(MigrationContext.configure(connection)))
        for step in plan.steps:
            output.say(f"done: {step.description}")
        storage.check_table()
        storage.close()
        result["applied"] = True
        output.done(result, ExitCode.OK)


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
    if kind is Kind.TEXT:
        shop = sql_type(columns["shop"], dialect) if "shop" in columns else None
        length = getattr(shop, "length", None)
        return String(length) if length else Text()
    if kind is Kind.BOOLEAN:
        return columns["isOnline"].type if "isOnline" in columns else types.Boolean()
    if kind is Kind.USER_ID:
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
