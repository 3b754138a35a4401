"""``shopify-sessions copy``: every session from one table to another, then verified."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import MetaData

from .._errors import InvalidSessionError, MissingSessionTableError, SessionDataError
from ..sqlalchemy import session_table
from ..sqlalchemy._core import describe_table
from ..sqlalchemy._layout import detect_layout
from ._compare import same_up_to_layout
from ._connect import (
    command_url,
    count_sessions,
    describe_dynamodb,
    describe_keys,
    is_dynamodb,
    is_redis,
    missing_dynamodb_table,
    open_dynamodb,
    open_redis,
    open_storage,
    quoted,
)
from ._invalid import InvalidEntries
from ._options import DEFAULT_KEY_PREFIX, DEFAULT_TABLE, BatchSize, Json
from ._output import ExitCode, plain_name, reporting
from ._progress import progress_bar

SourceUrl = Annotated[
    str,
    typer.Argument(help="Database URL to copy from.", metavar="SOURCE_URL", show_default=False),
]
TargetUrl = Annotated[
    str,
    typer.Argument(help="Database URL to copy to.", metavar="TARGET_URL", show_default=False),
]
SourceTable = Annotated[str, typer.Option("--source-table", help="Table to copy from.")]
TargetTable = Annotated[
    str, typer.Option("--target-table", help="Table to copy to (the default table is created).")
]
SourceSchema = Annotated[str | None, typer.Option("--source-schema", show_default=False)]
TargetSchema = Annotated[str | None, typer.Option("--target-schema", show_default=False)]

SourcePrefix = Annotated[
    str, typer.Option("--source-key-prefix", help="Redis source: the prefix of its keys.")
]
TargetPrefix = Annotated[
    str, typer.Option("--target-key-prefix", help="Redis target: the prefix of its keys.")
]

#: Ids of sessions that failed, listed in the result (the count is always complete).
LISTED = 20


def copy(
    source_url: SourceUrl,
    target_url: TargetUrl,
    source_table: SourceTable = DEFAULT_TABLE,
    target_table: TargetTable = DEFAULT_TABLE,
    source_schema: SourceSchema = None,
    target_schema: TargetSchema = None,
    batch_size: BatchSize = 500,
    as_json: Json = False,
    source_key_prefix: SourcePrefix = DEFAULT_KEY_PREFIX,
    target_key_prefix: TargetPrefix = DEFAULT_KEY_PREFIX,
) -> None:
    """Copy every session between databases and layouts, then verify the target.

    Reads the source in batches and upserts each session into the target, so it can
    be run again after an interruption. A missing target table is created as the
    default table. Either side may be Redis (the Node Redis adapter's keys) or DynamoDB (the
    Node DynamoDB adapter's items; a missing target table is created, billed on demand,
    with its index on shop). Then every
    session is loaded from the target and compared; exit 1 if one could not be copied or
    differs. Rows or keys of the source that hold no session are skipped and listed
    (exit 8 if nothing else went wrong).
    """
    with reporting("copy", as_json) as output:
        source_prefix, target_prefix = source_key_prefix, target_key_prefix
        if _same_place(source_url, target_url, (source_table, source_schema, source_prefix),
                       (target_table, target_schema, target_prefix)):  # fmt: skip
            raise InvalidSessionError(
                "the source and the target are the same table: give --target-table "
                "(--target-key-prefix on Redis) or another TARGET_URL"
            )
        source: Any
        if is_redis(source_url):
            source = open_redis(source_url, source_prefix)
        elif is_dynamodb(source_url):
            source = open_dynamodb(source_url)
            try:
                source.check_table()
            except MissingSessionTableError:
                raise missing_dynamodb_table(source.table_name) from None
        else:
            source = open_storage(source_url, source_table, source_schema, hint=False)
            try:
                source.check_table()
            except MissingSessionTableError:
                raise MissingSessionTableError(
                    f"the source table {quoted(source_table, source_schema)} does not exist"
                ) from None
        total = count_sessions(source)
        created = False
        target: Any
        if is_redis(target_url):
            target = open_redis(target_url, target_prefix)
            target_layout = "node-redis"
        elif is_dynamodb(target_url):
            target = open_dynamodb(target_url)
            try:
                target.check_table()
            except MissingSessionTableError:
                target.create_table()
                created = True
                output.say(f"created {describe_dynamodb(target)} and its index on shop")
            target_layout = "node-dynamodb"
        else:
            target = open_storage(target_url, target_table, target_schema, create=True)
            try:
                target.check_table()
            except MissingSessionTableError:
                target.close()
                definition = session_table(MetaData(), target_table, schema=target_schema)
                target = open_storage(target_url, definition, None, create=True)
                target.create_table()
                target.check_table()
                created = True
                output.say(f"created {describe_table(definition)} (the default table)")
            target_layout = detect_layout(target.table, target.engine.dialect).value
        copied = 0
        failed: list[dict[str, str]] = []
        invalid = InvalidEntries()
        with progress_bar(output, "copying", total) as advance:
            invalid.progress = advance
            for batch in source.sessions(batch_size=batch_size, on_invalid=invalid):
                for session in batch:
                    try:
                        target.store_session(session)
                        copied += 1
                    except InvalidSessionError as error:
                        failed.append({"id": session.id, "error": str(error)})
                advance(len(batch))
        total = max(total, copied + len(failed) + invalid.count)
        failed_ids = {item["id"] for item in failed}
        equal = equivalent = 0
        different: list[str] = []
        with progress_bar(output, "verifying", total) as advance:
            # What holds no session was reported by the copy: the second walk skips it.
            for batch in source.sessions(batch_size=batch_size, on_invalid=_skip):
                for session in batch:
                    if session.id in failed_ids:
                        continue
                    loaded = target.load_session(session.id)
                    if loaded is not None and loaded == session:
                        equal += 1
                    elif loaded is not None and same_up_to_layout(session, loaded):
                        equivalent += 1
                    else:
                        different.append(session.id)
                advance(len(batch))
        source.close()
        target.close()
        result: dict[str, Any] = {
            "source": _describe(source, plain=True),
            "target": _describe(target, plain=True),
            "target_layout": target_layout,
            "target_created": created,
            "sessions": total,
            "copied": copied,
            "failed": len(failed),
            "failures": failed[:LISTED],
            "verified_equal": equal,
            "verified_equivalent": equivalent,
            "different": len(different),
            "different_ids": different[:LISTED],
            **invalid.report(output),
        }
        for item in failed[:LISTED]:
            output.warn(f"not copied: {item['id']}: {item['error']}")
        for session_id in different[:LISTED]:
            output.warn(f"differs on the target: {session_id}")
        output.say(
            f"copied {copied} of {total} session(s) to {_describe(target, plain=False)} "
            f"({target_layout}); verified {equal} equal, {equivalent} equal up to the "
            f"target's layout, {len(different)} different, {len(failed)} not copied"
            + (f", {invalid.count} skipped (not sessions)" if invalid else "")
        )
        code = ExitCode.OK
        if failed or different:
            code = ExitCode.PROBLEM
        elif invalid:
            code = ExitCode.INVALID_ENTRIES
        output.done(result, code)


def _skip(entry: str, error: SessionDataError) -> None:
    """``on_invalid`` for a walk whose bad entries were reported already."""


def _same_place(
    source_url: str, target_url: str, source: tuple[object, ...], target: tuple[object, ...]
) -> bool:
    """Whether the source and the target are one table (or one Redis key prefix)."""
    if is_redis(source_url) != is_redis(target_url):
        return False
    if is_redis(source_url):
        return source_url == target_url and source[2] == target[2]
    if is_dynamodb(source_url) or is_dynamodb(target_url):
        return source_url == target_url
    return command_url(source_url) == command_url(target_url) and source[:2] == target[:2]


def _describe(storage: Any, *, plain: bool) -> str:
    """A table as the JSON (``plain``) or a message names it; Redis keys by their prefix."""
    if hasattr(storage, "key_prefix"):
        return describe_keys(storage)
    if hasattr(storage, "shop_index"):
        return describe_dynamodb(storage)
    return plain_name(storage.table) if plain else describe_table(storage.table)
