"""``shopify-sessions migrate-legacy``: exchange non-expiring offline tokens, once each."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..tokens._base import is_legacy, offline_id
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
from ._shopify import finish, offline_tokens

Shops = Annotated[
    list[str] | None,
    typer.Argument(
        help="Shops to migrate (my-shop or my-shop.myshopify.com); every legacy one if none.",
        show_default=False,
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="List the legacy sessions; exchange nothing.")
]


def migrate_legacy(
    shops: Shops = None,
    url: Url = "",
    table: TableName = DEFAULT_TABLE,
    schema: Schema = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = 500,
    as_json: Json = False,
    key_prefix: KeyPrefix = DEFAULT_KEY_PREFIX,
    shopify_url: ShopifyUrl = None,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
) -> None:
    """Exchange each legacy (non-expiring) offline token for an expiring pair.

    Shopify invalidates non-expiring tokens of public apps on 2027-01-01. Each shop is
    exchanged once, under its session lock, however many copies of this run at once,
    --concurrency shops at a time; a shop that already has a refresh token is left alone.
    Safe to stop (Ctrl-C lets the shops in flight finish) and run again. The app's
    credentials come from SHOPIFY_API_KEY and SHOPIFY_API_SECRET (--dry-run needs none).
    Exit code 1 when a shop
    could not be migrated.
    """
    with (
        reporting("migrate-legacy", as_json) as output,
        offline_tokens(url, table, schema, key_prefix, shopify_url, exchange=not dry_run) as (
            storage,
            tokens,
        ),
    ):
        chosen = [offline_id(shop)[0] for shop in shops] if shops else None
        if dry_run:
            legacy = chosen if chosen is not None else _legacy_shops(storage, batch_size)
            output.say(f"{len(legacy)} legacy session(s) to migrate")
            for shop in legacy:
                output.say(f"  {shop}")
            output.done({"legacy": legacy, "dry_run": True})
        total = 0
        if chosen is not None:
            total = len(chosen)
        elif shows_progress(output):  # the bar's total: one read of the table first
            total = sum(1 for _ in _legacy_shops(storage, batch_size))
        with progress_bar(output, "migrating", total) as advance:
            report = tokens.migrate_all_legacy(
                chosen, batch_size=batch_size, progress=advance, concurrency=concurrency
            )
        if report.skipped:
            output.say(f"{len(report.skipped)} session(s) absent or not legacy, left alone")
        more = fleet_results(output, report, concurrency)
        finish(output, report, "migrated", len(report.outcomes), skipped=report.skipped, **more)


def _legacy_shops(storage: Any, batch_size: int) -> list[str]:
    """The shops of the storage's legacy offline sessions (for ``--dry-run``, and the
    progress bar's total)."""
    return [
        session.shop
        for batch in storage.sessions(batch_size=batch_size)
        for session in batch
        if not session.is_online and is_legacy(session)
    ]
