"""``shopify-sessions refresh-expiring``: keep idle shops warm, from cron."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from .._time import utc_now
from ._fleet import DEFAULT_CONCURRENCY, Concurrency, fleet_results, shows_progress
from ._options import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_TABLE,
    BatchSize,
    Json,
    KeyPrefix,
    Schema,
    ShopifyUrl,
    TableName,
    Url,
)
from ._output import reporting
from ._progress import progress_bar
from ._purge import parse_duration
from ._shopify import finish, offline_tokens

Within = Annotated[
    timedelta,
    typer.Option(
        "--within",
        parser=parse_duration,
        metavar="DURATION",
        help=(
            "Refresh sessions whose refresh token expires within this (90s, 15m, 12h, 7d, "
            "2w). Default: 7d."
        ),
        show_default=False,
    ),
]


def refresh_expiring(
    url: Url,
    table: TableName = DEFAULT_TABLE,
    schema: Schema = None,
    within: Within = timedelta(days=7),
    batch_size: BatchSize = 100,
    as_json: Json = False,
    key_prefix: KeyPrefix = DEFAULT_KEY_PREFIX,
    shopify_url: ShopifyUrl = None,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
) -> None:
    """Refresh every offline session whose refresh token expires within --within.

    The app's credentials come from SHOPIFY_API_KEY and SHOPIFY_API_SECRET (and the token
    keys from SHOPIFY_SESSIONS_KEYS, for an encrypted table). One refresh per session at a
    time, whatever else refreshes it meanwhile (another copy of this command, the app),
    --concurrency shops at once; a 429 from Shopify makes them all wait. Safe to stop
    (Ctrl-C lets the shops in flight finish) and run again. Exit code 1 when a shop
    failed or its merchant must open the app again; run it daily.
    """
    with (
        reporting("refresh-expiring", as_json) as output,
        offline_tokens(url, table, schema, key_prefix, shopify_url) as (
            storage,
            tokens,
        ),
    ):
        due = None
        if shows_progress(output):  # the bar's total: one read of the table first
            before = utc_now() + within
            due = sum(len(batch) for batch in storage.sessions_due_for_refresh(before))
        with progress_bar(output, "refreshing", due or 0) as advance:
            report = tokens.refresh_expiring(
                within=within, batch_size=batch_size, progress=advance, concurrency=concurrency
            )
        more = fleet_results(output, report, concurrency)
        finish(output, report, "refreshed", len(report.outcomes), **more)
