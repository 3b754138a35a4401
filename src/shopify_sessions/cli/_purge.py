"""``shopify-sessions purge``: delete expired sessions that no refresh token can renew."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from ._connect import command_storage, count_sessions
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
)
from ._output import ExitCode, reporting
from ._progress import progress_bar

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


#: The default --grace: a week, as a destructive command errs towards keeping. An expired
#: online session stays the record of who used the app; clocks of the hosts that write
#: ``expires`` and run the purge may differ; and a week is what the docs always showed.
DEFAULT_GRACE = timedelta(days=7)


def parse_duration(text: str | timedelta) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``7d``, ``2w`` or a number of seconds, as a timedelta."""
    if isinstance(text, timedelta):  # the default
        return text
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 90s, 15m, 12h, 7d or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2) or "s"])


def format_duration(value: timedelta) -> str:
    """A duration as ``parse_duration`` reads it: in days, hours, minutes or seconds,
    the largest that divides it."""
    seconds = int(value.total_seconds())
    for unit in "dhm":
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


Grace = Annotated[
    timedelta,
    typer.Option(
        "--grace",
        parser=parse_duration,
        metavar="DURATION",
        help=(
            "Keep sessions expired less than this long ago (90s, 15m, 12h, 7d, 2w; 0 for "
            "none). Default: 7d."
        ),
        show_default=False,
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
]


def purge(
    url: Url,
    table: TableName = DEFAULT_TABLE,
    schema: Schema = None,
    grace: Grace = DEFAULT_GRACE,
    dry_run: DryRun = False,
    batch_size: BatchSize = 500,
    as_json: Json = False,
    key_prefix: KeyPrefix = DEFAULT_KEY_PREFIX,
) -> None:
    """Delete sessions expired more than --grace ago, unless a refresh token can renew them.

    Walks the table in batches (each deleted in its own transaction) with a progress bar.
    Rows or keys that hold no session are skipped, listed, and make the exit code 8.
    """
    with reporting("purge", as_json) as output:
        storage = command_storage(url, table, schema, key_prefix)
        total = count_sessions(storage, with_expiry=True)
        invalid = InvalidEntries()
        with progress_bar(output, "purging" if not dry_run else "counting", total) as advance:
            count = storage.delete_expired_sessions(
                grace=grace,
                batch_size=batch_size,
                dry_run=dry_run,
                progress=advance,
                on_invalid=invalid,
            )
        storage.close()
        verb = "would delete" if dry_run else "deleted"
        result = {"deleted": 0 if dry_run else count, "would_delete": count, "dry_run": dry_run}
        result.update(invalid.report(output))
        output.say(f"{verb} {count} expired session(s) (grace {format_duration(grace)})")
        if invalid:
            output.say(f"skipped {invalid.count} entries that hold no session (listed above)")
        output.done(result, ExitCode.INVALID_ENTRIES if invalid else ExitCode.OK)
