"""``shopify-sessions check``: the table, its layout, its problems and its sessions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NoReturn

from rich.markup import escape
from sqlalchemy import Engine, Table, text

from .._errors import MissingSessionTableError, SessionTableSchemaError
from .._session import Session
from ..sqlalchemy import SQLAlchemySessionStorage
from ..sqlalchemy._core import describe_table
from ..sqlalchemy._layout import detect_layout
from ..sqlalchemy._pooler import take_pooler
from ._connect import (
    command_url,
    connection_to,
    count_rows,
    describe_dynamodb,
    describe_keys,
    is_dynamodb,
    is_redis,
    missing_dynamodb_table,
    missing_table,
    open_dynamodb,
    open_redis,
    open_storage,
    reflect,
)
from ._invalid import InvalidEntries
from ._options import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_TABLE,
    BatchSize,
    Json,
    KeyPrefix,
    Schema,
    TableName,
    Url,
    command_line,
)
from ._output import ExitCode, Output, plain_name, reporting
from ._progress import progress_bar
from ._upgrade import plan_upgrade

if TYPE_CHECKING:
    from ..dynamodb import DynamoDBSessionStorage
    from ..redis import RedisSessionStorage

#: How far ahead a refresh token counts as due.
REFRESH_DUE = timedelta(days=7)


def check(
    url: Url,
    table: TableName = DEFAULT_TABLE,
    schema: Schema = None,
    as_json: Json = False,
    batch_size: BatchSize = 500,
    key_prefix: KeyPrefix = DEFAULT_KEY_PREFIX,
) -> None:
    """Check the table: its layout, every problem the storage would refuse, the session
    lock it will use (and what that lock still needs), and counts.

    Exit 0 when the storage can use the table, 4 when it is missing, 5 when it cannot
    hold sessions (every problem is listed), 3 when the database is unreachable. On
    Redis: the sessions under --key-prefix, counted (shop lists are not sessions). On
    DynamoDB: the table of the URL, its key and its index on shop, and its sessions
    (lock items are not sessions).
    """
    with reporting("check", as_json) as output:
        if is_redis(url):
            _check_redis(output, url, key_prefix, batch_size)
        if is_dynamodb(url):
            _check_dynamodb(output, url, batch_size)
        storage = open_storage(url, table, schema)
        engine = storage.engine
        real = reflect(engine, table, schema)
        if real is None:
            raise missing_table(table, schema)
        layout = detect_layout(real, engine.dialect)
        plan = plan_upgrade(real, engine.dialect)
        # Never advise an upgrade that would leave the table unusable.
        advice = [step.description for step in plan.steps] if plan.makes_it_usable else []
        result: dict[str, Any] = {
            "table": plain_name(real),
            "dialect": engine.dialect.name,
            "layout": layout.value,
            "problems": [],
            "advice": advice,
            "upgrade_makes_it_usable": plan.makes_it_usable,
        }
        output.say(f"table {describe_table(real)} on {engine.dialect.name}")
        output.say(f"layout: {layout.value} ({layout.description})")
        try:
            storage.check_table()
        except SessionTableSchemaError as error:
            result["problems"] = list(error.problems)
            for problem in error.problems:
                output.say(f"[red]problem:[/] {escape(problem)}")
            if not plan.makes_it_usable:
                output.say(
                    "[red]no upgrade makes this table hold sessions[/] (is it the right "
                    "--table?): `upgrade` would refuse it and change nothing"
                )
            for line in advice:
                output.say(f"[yellow]upgrade would:[/] {escape(line)}")
            output.done(result, ExitCode.SCHEMA)
        upgrade = command_line("upgrade", table, schema)
        for line in advice:
            output.say(f"[yellow]advice:[/] {escape(line)} (run `{escape(upgrade)}`)")
        result["lock"] = lock = _lock_report(storage, url)
        output.say(f"session lock: {escape(lock['mechanism'])}")
        for line in lock["advice"]:
            output.say(f"[yellow]advice:[/] {escape(line)}")

        total = count_rows(engine, storage.table)
        counts, invalid = _count_sessions(output, storage, batch_size, total)
        storage.close()
        result["sessions"] = counts
        result.update(invalid.report(output))
        output.say(_summary(counts, invalid, f"this {layout.value} table", "rows"))
        output.done(result, ExitCode.INVALID_ENTRIES if invalid else ExitCode.OK)


def _check_redis(output: Output, url: str, prefix: str, batch_size: int) -> NoReturn:
    redis_storage = open_redis(url, prefix)
    counts, invalid = _count_sessions(output, redis_storage, batch_size, 0)
    redis_storage.close()
    output.say(f"{describe_keys(redis_storage)} (the Node Redis adapter's layout)")
    output.say(_summary(counts, invalid, "these Redis keys", "keys"))
    result = {"store": "redis", "key_prefix": prefix, "problems": [], "advice": []}
    output.done(
        {**result, "sessions": counts, **invalid.report(output)},
        ExitCode.INVALID_ENTRIES if invalid else ExitCode.OK,
    )


def _count_sessions(
    output: Output,
    storage: SQLAlchemySessionStorage | RedisSessionStorage | DynamoDBSessionStorage,
    batch_size: int,
    total: int,
) -> tuple[dict[str, int], InvalidEntries]:
    """Every session tallied; the entries that hold none counted and skipped."""
    counts = _counts()
    invalid = InvalidEntries()
    now = datetime.now(timezone.utc)
    with progress_bar(output, "counting sessions", total) as advance:
        invalid.progress = advance
        for batch in storage.sessions(batch_size=batch_size, on_invalid=invalid):
            for session in batch:
                _tally(counts, session, now)
            advance(len(batch))
    return counts, invalid


def _check_dynamodb(output: Output, url: str, batch_size: int) -> NoReturn:
    storage = open_dynamodb(url)
    result: dict[str, Any] = {
        "store": "dynamodb",
        "table": storage.table_name,
        "shop_index": storage.shop_index,
        "problems": [],
        "advice": [],
    }
    output.say(f"{describe_dynamodb(storage)}, index {storage.shop_index} on shop")
    try:
        storage.check_table()
    except MissingSessionTableError:
        raise missing_dynamodb_table(storage.table_name) from None
    except SessionTableSchemaError as error:
        result["problems"] = list(error.problems)
        for problem in error.problems:
            output.say(f"[red]problem:[/] {escape(problem)}")
        output.done(result, ExitCode.SCHEMA)
    mechanism = "a lease item lock:<id> in the table, taken and released by conditional writes"
    result["lock"] = {"mechanism": mechanism, "advice": []}
    output.say(f"session lock: {mechanism}")
    counts, invalid = _count_sessions(output, storage, batch_size, 0)
    storage.close()
    result["sessions"] = counts
    result.update(invalid.report(output))
    what = "this DynamoDB table (the Node DynamoDB adapter's layout)"
    output.say(_summary(counts, invalid, what, "items"))
    output.done(result, ExitCode.INVALID_ENTRIES if invalid else ExitCode.OK)


def _lock_report(storage: SQLAlchemySessionStorage, url: str) -> dict[str, Any]:
    """Which lock ``lock_session`` takes on this database, and what it still needs."""
    server = storage.server
    assert server is not None
    engine = storage.engine
    report: dict[str, Any] = {
        "server": server.product,
        "version": server.version,
        "pooler": server.pooled,
        "advice": [],
    }
    advice: list[str] = report["advice"]
    if engine.dialect.name == "sqlite":
        report["mechanism"] = "flock on files in <database>.locks/ (the processes of one host)"
        return report
    locks = storage.lock_table
    report["lock_table"] = plain_name(locks)
    report["mechanism"] = f"a lease in the lock table {describe_table(locks)}"
    if reflect(engine, locks.name, locks.schema) is None:
        advice.append(
            f"the lock table {describe_table(locks)} does not exist: "
            f"`{command_line('upgrade', storage.table.name, storage.table.schema)}` creates it "
            "(the first lock would try to)"
        )
    elif engine.dialect.name == "postgresql" and not _unlogged(engine, locks):
        name = engine.dialect.identifier_preparer.format_table(locks)
        advice.append(
            f"the lock table is logged, so every lock waits for two WAL flushes: "
            f"ALTER TABLE {name} SET UNLOGGED makes it as cheap as an advisory lock"
        )
    if server.pooled and not take_pooler(command_url(url), None)[1]:
        advice.append(
            "a connection pooler stands between: add ?pooler=transaction to the URL "
            "(the storage found it and runs without server-side prepared statements)"
        )
    if server.galera:
        advice.append(
            "Galera: give each worker one node's URL (or a proxy that keeps a client on "
            "one node): a lock holder reads what its node has applied"
        )
    return report


def _unlogged(engine: Engine, table: Table) -> bool:
    with connection_to(engine, "check", describe_table(table)) as connection:
        persistence = connection.execute(
            text("SELECT relpersistence FROM pg_class WHERE oid = to_regclass(:name)"),
            {"name": engine.dialect.identifier_preparer.format_table(table)},
        ).scalar()
    return persistence == "u"


def _counts() -> dict[str, int]:
    return dict.fromkeys(
        (
            "total",
            "offline",
            "online",
            "expired",
            "with_refresh_token",
            "refresh_due_7_days",
            "refresh_expired",
            "encrypted",
        ),
        0,
    )


def _tally(counts: dict[str, int], session: Session, now: datetime) -> None:
    counts["total"] += 1
    counts["online" if session.is_online else "offline"] += 1
    if session.expires is not None and session.expires <= now:
        counts["expired"] += 1
    if session.refresh_token:
        counts["with_refresh_token"] += 1
        late = session.refresh_token_expires
        if late is not None and late <= now:
            counts["refresh_expired"] += 1
        elif late is not None and late <= now + REFRESH_DUE:
            counts["refresh_due_7_days"] += 1
    tokens = (session.access_token or "", session.refresh_token or "")
    if any(token.startswith("fernet:") for token in tokens):
        counts["encrypted"] += 1


def _summary(counts: dict[str, int], invalid: InvalidEntries, what: str, entries: str) -> str:
    """The counts, and that the storage can use ``what`` (the table, the keys), but for
    the ``entries`` (rows, keys, items) that hold no session."""
    verdict = f"ok: the storage can use {what}"
    if invalid:
        verdict += f", but {invalid.count} {entries} hold no session (skipped, listed above)"
    return (
        f"sessions: {counts['total']} ({counts['offline']} offline, {counts['online']} online), "
        f"{counts['expired']} expired, {counts['with_refresh_token']} with a refresh token "
        f"({counts['refresh_due_7_days']} due within 7 days, {counts['refresh_expired']} "
        f"expired), {counts['encrypted']} encrypted\n{verdict}"
    )
