"""A minimal embedded Shopify app backend on FastAPI, with expiring offline tokens.

- ``GET /``: App Home. ``shopifyapp`` verifies the request (the session token Shopify
  sends); the first time, a token exchange gets an expiring offline token, stored with
  this library; then the Admin API is called with a token from ``OfflineTokens.get``,
  which refreshes it when it is about to expire, once across every worker.
- ``POST /api/products/count``: the same call from a fetch request of the app's front end.

Run it (``pip install 'shopify-sessions[shopifyapp,aiosqlite]' fastapi uvicorn``)::

    SHOPIFY_API_KEY=... SHOPIFY_API_SECRET=... \\
        uvicorn examples.fastapi_app:create_app --factory
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from shopify_app import ShopifyApp

from shopify_sessions.shopify_app import AsyncOfflineTokens, session_from_token
from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage

API_VERSION = "2026-10"
QUERY = "{ productsCount { count } }"


def create_app(
    *,
    database_url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The app; settings default to the environment (``DATABASE_URL``, ``SHOPIFY_API_KEY``,
    ``SHOPIFY_API_SECRET``). ``http_client`` carries every call to Shopify."""
    client_id = client_id or os.environ["SHOPIFY_API_KEY"]
    client_secret = client_secret or os.environ["SHOPIFY_API_SECRET"]
    storage = AsyncSQLAlchemySessionStorage(
        database_url or os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///sessions.sqlite3")
    )
    shopify = ShopifyApp(client_id, client_secret)
    tokens = AsyncOfflineTokens(
        storage, client_id=client_id, client_secret=client_secret, http_client=http_client
    )
    app = FastAPI(on_startup=[storage.create_table], on_shutdown=[storage.close])

    async def products_count(request: Request) -> Response:
        verified = shopify.verify_app_home_req(
            {
                "method": request.method,
                "headers": dict(request.headers),
                "url": str(request.url),
                "body": "",
            },
            app_home_patch_id_token_path="/auth/patch-id-token",
        )
        if not verified.ok or verified.shop is None:
            return _response(verified.response)
        session = await tokens.get(verified.shop)
        if session is None:  # first visit: exchange the session token, store the session
            exchange = await shopify.exchange_using_token_exchange_async(
                "offline",
                id_token=verified.id_token,
                invalid_token_response=verified.invalid_token_response,
                http_client=http_client,
            )
            if not exchange.ok or exchange.access_token is None:
                return _response(exchange.response)
            session = session_from_token(exchange.access_token)
            await storage.store_session(session)
        result = await shopify.admin_graphql_request_async(
            QUERY,
            shop=verified.shop,
            access_token=session.access_token or "",
            api_version=API_VERSION,
            http_client=http_client,
        )
        if not result.ok:
            return _response(result.response)
        count = (result.data or {}).get("productsCount", {}).get("count")
        headers = dict(verified.response.headers)
        return Response(f"{session.shop} has {count} products", headers=headers)

    app.add_api_route("/", products_count, methods=["GET"])
    app.add_api_route("/api/products/count", products_count, methods=["POST"])
    return app


def _response(res: Any) -> Response:
    return Response(res.body, status_code=res.status, headers=dict(res.headers))
