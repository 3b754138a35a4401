"""Keep idle shops warm: run daily from cron, so that no refresh token lapses.

An expiring offline token's refresh token lasts 90 days and is replaced on each use; a
shop nobody opens and no job touches would lose it, and the merchant would have to open
the app again. This refreshes every offline session whose refresh token expires within
the week, and exits non-zero when a shop failed (worth an alert) or needs its merchant.

    DATABASE_URL=postgresql+psycopg://... SHOPIFY_API_KEY=... SHOPIFY_API_SECRET=... \\
        python examples/keep_warm.py
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import timedelta

import httpx

from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
from shopify_sessions.tokens import OfflineTokens


def main(http_client: httpx.Client | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    storage = SQLAlchemySessionStorage(os.environ.get("DATABASE_URL", "sqlite:///sessions.sqlite3"))
    tokens = OfflineTokens(
        storage,
        client_id=os.environ["SHOPIFY_API_KEY"],
        client_secret=os.environ["SHOPIFY_API_SECRET"],
        http_client=http_client,
    )
    try:
        report = tokens.refresh_expiring(within=timedelta(days=7))
    finally:
        storage.close()
    print(f"refreshed {len(report.refreshed)} shops")
    for shop in report.reauthorization_required:
        print(f"{shop}: the merchant must open the app again")
    for shop, error in report.failed.items():
        print(f"{shop}: failed, will retry on the next run: {error}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
