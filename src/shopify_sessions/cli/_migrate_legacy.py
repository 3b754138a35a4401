"""``shopify-sessions migrate-legacy``: exchange non-expiring offline tokens, once each."""

from __future__ import annotations

from typing import Annotated

import typer

from .._errors import ReauthorizationRequiredError, SessionStorageError
from ..tokens import RefreshReport
from ..tokens._base import is_legacy, offline_id
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
) -> None:
    """Exchange each legacy (non-expiring) offline token for an expiring pair.

    Shopify invalidates non-expiring tokens of public apps on 2027-01-01. Each shop is
    exchanged once, under its session lock, however many copies of this run at once; a
    shop that already has a refresh token is left alone. The app's credentials come from
    SHOPIFY_API_KEY and SHOPIFY_API_SECRET (--dry-run needs none). Exit code 1 when a shop
    could not be migrated.
    """
    with (
        reporting("migrate-legacy", as_json) as output,
        offline_tokens(url, table, schema, key_prefix, shopify_url, exchange=not dry_run) as (
            storage,
            tokens,
        ),
    ):
        if shops:
            chosen = [offline_id(shop)[0] for shop in shops]
        else:
            chosen = [
                session.shop
                for batch in storage.sessions(batch_size=batch_size)
                for session in batch
                if not session.is_online and is_legacy(session)
            ]
        if dry_run:
            output.say(f"{len(chosen)} legacy session(s) to migrate")
            for shop in chosen:
                output.say(f"  {shop}")
            output.done({"legacy": chosen, "dry_run": True})
        report, skipped = RefreshReport(), []
        with progress_bar(output, "migrating", len(chosen)) as advance:
            for shop in chosen:
                domain, id = offline_id(shop)
                before = storage.load_session(id)
                if before is None or not is_legacy(before):
                    skipped.append(domain)  # absent, or expiring already
                else:
                    try:
                        tokens.migrate_legacy(domain)
                        report.refreshed.append(domain)
                    except ReauthorizationRequiredError:
                        report.reauthorization_required.append(domain)
                    except SessionStorageError as error:
                        report.failed[domain] = error
                advance(1)
        if skipped:
            output.say(f"{len(skipped)} session(s) absent or not legacy, left alone")
        finish(output, report, "migrated", len(chosen), skipped=skipped)
