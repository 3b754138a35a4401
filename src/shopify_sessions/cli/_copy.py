"""``shopify-sessions copy``: every session from one table to another, then verified."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import MetaData

from .._errors import InvalidSessionError, MissingSessionTableError
from ..sqlalchemy import session_table
from ..sqlalchemy._core import describe_table
from ..sqlalchemy._layout import detect_layout
from ._compare import same_up_to_layout
from ._connect import command_url, count_rows, open_storage, quoted
from ._options import DEFAULT_TABLE, BatchSize, Json
from ._output import ExitCode, plain_name, reporting
from ._progress import progress_bar

SourceUrl = Annotated[str, typer.Argument(help="Database URL to copy from.", show_default=False)]
TargetUrl = Annotated[str, typer.Argument(help="Database URL to copy to.", show_default=False)]
SourceTable = Annotated[str, typer.Option("--source-table", help="Table to copy from.")]
TargetTable = Annotated[
    str, typer.Option("--target-table", help="Table to copy to (the default table is created).")
]
SourceSchema = Annotated[str | None, typer.Option("--source-schema", show_default=False)]
TargetSchema = Annotated[str | None, typer.Option("--target-schema", show_default=False)]

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
) -> None:
    """Copy every session between databases and layouts, then verify the target.

    Reads the source in batches and upserts each session into the target, so it can
    be run again after an interruption. A missing target table is created as the
    default table. Then every session is loaded from the target and compared; exit 1
    if one could not be copied or differs.
    """
    with reporting("copy", as_json) as output:
        same_url = command_url(source_url) == command_url(target_url)
        if same_url and (source_table, source_schema) == (target_table, target_schema):
            raise InvalidSessionError(
                "the source and the target are the same table: give --target-table or "
                "another TARGET_URL"
            )
        source = open_storage(source_url, source_table, source_schema, hint=False)
        try:
            source.check_table()
        except MissingSessionTableError:
            raise MissingSessionTableError(
                f"the source table {quoted(source_table, source_schema)} does not exist"
            ) from None
        target = open_storage(target_url, target_table, target_schema, create=True)
        created = False
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
        dialect = target.engine.dialect
        target_layout = detect_layout(target.table, dialect).value
        total = count_rows(source.engine, source.table)
        copied = 0
        failed: list[dict[str, str]] = []
        with progress_bar(output, "copying", total) as advance:
            for batch in source.sessions(batch_size=batch_size):
                for session in batch:
                    try:
                        target.store_session(session)
                        copied += 1
                    except InvalidSessionError as error:
                        failed.append({"id": session.id, "error": str(error)})
                advance(len(batch))
        failed_ids = {item["id"] for item in failed}
        equal = equivalent = 0
        different: list[str] = []
        with progress_bar(output, "verifying", total) as advance:
            for batch in source.sessions(batch_size=batch_size):
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
            "source": plain_name(source.table),
            "target": plain_name(target.table),
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
        }
        for item in failed[:LISTED]:
            output.warn(f"not copied: {item['id']}: {item['error']}")
        for session_id in different[:LISTED]:
            output.warn(f"differs on the target: {session_id}")
        output.say(
            f"copied {copied} of {total} session(s) to {describe_table(target.table)} "
            f"({target_layout}); verified {equal} equal, {equivalent} equal up to the "
            f"target's layout, {len(different)} different, {len(failed)} not copied"
        )
        code = ExitCode.PROBLEM if failed or different else ExitCode.OK
        output.done(result, code)
