"""Store, load, find and delete Shopify sessions in SQLite: no server needed.

Run: python examples/quickstart.py [DATABASE_URL]   (default: sqlite:///quickstart.sqlite3)
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage


def main(url: str) -> None:
    with SQLAlchemySessionStorage(url) as storage:
        storage.create_table()  # prototypes only; use Alembic with session_table() in production

        shop = "quickstart-shop.myshopify.com"
        now = datetime.now(timezone.utc)
        offline = Session.offline(  # id offline_{shop}
            shop,
            scope="write_products",
            access_token="shpat_example_offline_token",
            expires=now + timedelta(hours=1),
            refresh_token="shprt_example_refresh_token",
            refresh_token_expires=now + timedelta(days=90),
        )
        online = Session.online(  # id {shop}_42
            shop,
            42,
            scope="read_products",
            access_token="shpat_example_online_token",
            expires=now + timedelta(days=1),
            online_access_info=OnlineAccessInfo(
                associated_user=AssociatedUser(first_name="Ada", email="ada@example.com")
            ),
        )
        storage.store_session(offline)
        storage.store_session(online)

        loaded = storage.load_session(offline.id)
        assert loaded == offline, "what was stored is what comes back"
        print("loaded:  ", loaded)  # repr never shows a token
        print("active:  ", loaded is not None and loaded.is_active("read_products"))
        for session in storage.find_sessions_by_shop(shop):
            print("found:   ", session.id, session.expires.isoformat() if session.expires else None)

        storage.delete_sessions([offline.id, online.id])
        print("deleted: ", storage.load_session(offline.id) is None)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///quickstart.sqlite3")
