"""A minimal embedded Shopify app backend on Flask, with expiring offline tokens.

- ``GET /``: App Home. ``shopify.app_home_session()`` verifies the request with
  ``shopifyapp`` and gives the shop's valid offline session: on the first visit, from a
  token exchange, stored; later the stored one, refreshed when it is about to expire, once
  across every worker. The Admin API is called with it.
- ``POST /api/products/count``: the same call from a fetch request of the app's front end.
- ``GET /api/me``: the staff user's online session (``shopify.app_home_online_session()``,
  beside the shop's offline one): the Admin API called as that user.
- ``POST /webhooks``: Shopify's webhooks, verified; ``app/uninstalled``,
  ``app/scopes_update`` and ``shop/redact`` change the sessions, then ``on_webhook`` sees
  each one. ``GET /auth/patch-id-token``: App Home's page that fetches a new session token.

Run it (``pip install 'shopify-sessions[flask]'``)::

    SHOPIFY_API_KEY=... SHOPIFY_API_SECRET=... flask --app examples.flask_app run
"""

from __future__ import annotations

import logging
import os

import httpx
from flask import Flask, Response

from shopify_sessions import Session
from shopify_sessions.flask import ShopifySessions
from shopify_sessions.webhooks import ReceivedWebhook

API_VERSION = "2026-10"
QUERY = "{ productsCount { count } }"
logger = logging.getLogger("app")


def create_app(
    *,
    database_url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    http_client: httpx.Client | None = None,
) -> Flask:
    """The app; settings default to the environment (``DATABASE_URL``, ``SHOPIFY_API_KEY``,
    ``SHOPIFY_API_SECRET``). ``http_client`` carries every call to Shopify."""
    app = Flask(__name__)
    app.config.from_mapping(
        SHOPIFY_API_KEY=client_id or os.environ["SHOPIFY_API_KEY"],
        SHOPIFY_API_SECRET=client_secret or os.environ["SHOPIFY_API_SECRET"],
        SHOPIFY_SESSIONS_DATABASE_URL=(
            database_url or os.environ.get("DATABASE_URL", "sqlite:///sessions.sqlite3")
        ),
    )
    shopify = ShopifySessions(
        app,
        http_client=http_client,
        create_table=True,  # a prototype's table; use Alembic in production
        on_webhook=on_webhook,
    )

    def count_products(session: Session) -> Response | int:
        result = shopify.app.admin_graphql_request(
            QUERY,
            shop=session.shop.removesuffix(".myshopify.com"),
            access_token=session.access_token or "",
            api_version=API_VERSION,
            http_client=http_client,
        )
        if not result.ok:
            res = result.response
            return Response(res.body, status=res.status, headers=dict(res.headers))
        return int((result.data or {}).get("productsCount", {}).get("count", 0))

    @app.get("/")
    @app.post("/api/products/count")
    def products_count() -> Response | str:
        session = shopify.app_home_session()
        count = count_products(session)
        return count if isinstance(count, Response) else f"{session.shop} has {count} products"

    @app.get("/api/me")
    def me() -> Response | str:
        """As the staff user: the online session's token has the user's permissions."""
        session = shopify.app_home_online_session()
        assert session.online_access_info is not None  # an online session has its user
        user = session.online_access_info.associated_user
        count = count_products(session)
        return count if isinstance(count, Response) else f"{user.email} sees {count} products"

    return app


def on_webhook(received: ReceivedWebhook) -> None:
    """The app's own work for a webhook, after its effect on the sessions."""
    logger.info("webhook %s for %s: %s", received.topic, received.shop, received.result)
