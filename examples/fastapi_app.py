"""A minimal embedded Shopify app backend on FastAPI, with expiring offline tokens.

- ``GET /``: App Home. ``shopify.app_home_session`` verifies the request with
  ``shopifyapp`` and gives the shop's valid offline session: on the first visit, from a
  token exchange, stored; later the stored one, refreshed when it is about to expire, once
  across every worker. The Admin API is called with it.
- ``POST /api/products/count``: the same call from a fetch request of the app's front end.
- ``GET /api/me``: the staff user's online session (``shopify.app_home_online_session``,
  beside the shop's offline one): the Admin API called as that user.
- ``POST /webhooks``: Shopify's webhooks, verified; ``app/uninstalled``,
  ``app/scopes_update`` and ``shop/redact`` change the sessions, then ``on_webhook`` sees
  each one. ``GET /auth/patch-id-token``: App Home's page that fetches a new session token.

Run it (``pip install 'shopify-sessions[fastapi,aiosqlite]' uvicorn``)::

    SHOPIFY_API_KEY=... SHOPIFY_API_SECRET=... \\
        uvicorn examples.fastapi_app:create_app --factory
"""
# No "from __future__ import annotations": FastAPI reads the routes' annotations, and
# AppHomeSession and StaffSession are local to create_app.

import logging
import os
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Response
from fastapi.responses import PlainTextResponse

from shopify_sessions import Session
from shopify_sessions.fastapi import ShopifySessions
from shopify_sessions.webhooks import ReceivedWebhook

API_VERSION = "2026-10"
QUERY = "{ productsCount { count } }"
logger = logging.getLogger("app")


def create_app(
    *,
    database_url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The app; settings default to the environment (``DATABASE_URL``, ``SHOPIFY_API_KEY``,
    ``SHOPIFY_API_SECRET``). ``http_client`` carries every call to Shopify."""
    shopify = ShopifySessions(
        database_url or os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///sessions.sqlite3"),
        client_id=client_id or os.environ["SHOPIFY_API_KEY"],
        client_secret=client_secret or os.environ["SHOPIFY_API_SECRET"],
        http_client=http_client,
        create_table=True,  # a prototype's table; use Alembic in production
        on_webhook=on_webhook,
    )
    app = FastAPI(lifespan=shopify.lifespan, exception_handlers=shopify.exception_handlers)
    app.include_router(shopify.router())  # POST /webhooks, GET /auth/patch-id-token
    AppHomeSession = Annotated[Session, Depends(shopify.app_home_session)]
    StaffSession = Annotated[Session, Depends(shopify.app_home_online_session)]

    async def count_products(session: Session) -> Response | int:
        result = await shopify.app.admin_graphql_request_async(
            QUERY,
            shop=session.shop.removesuffix(".myshopify.com"),
            access_token=session.access_token or "",
            api_version=API_VERSION,
            http_client=shopify.http_client,
        )
        if not result.ok:
            res = result.response
            return Response(res.body, status_code=res.status, headers=dict(res.headers))
        return int((result.data or {}).get("productsCount", {}).get("count", 0))

    @app.get("/", response_class=PlainTextResponse, response_model=None)
    @app.post("/api/products/count", response_class=PlainTextResponse, response_model=None)
    async def products_count(session: AppHomeSession) -> object:
        count = await count_products(session)
        return count if isinstance(count, Response) else f"{session.shop} has {count} products"

    @app.get("/api/me", response_class=PlainTextResponse, response_model=None)
    async def me(session: StaffSession) -> object:
        """As the staff user: the online session's token has the user's permissions."""
        assert session.online_access_info is not None  # an online session has its user
        user = session.online_access_info.associated_user
        count = await count_products(session)
        return count if isinstance(count, Response) else f"{user.email} sees {count} products"

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def on_webhook(received: ReceivedWebhook) -> None:
    """The app's own work for a webhook, after its effect on the sessions."""
    logger.info("webhook %s for %s: %s", received.topic, received.shop, received.result)
