"""What each framework's example app must do, step by step, whatever the framework: signed
App Home requests against the strict stand-in, and HMAC-signed webhooks.

``client`` is an ``httpx.Client`` on the app (or anything with its ``get`` and ``post``);
``storage`` a sync storage on the app's table, for looking at the rows.
"""

from __future__ import annotations

from typing import Any

from shopify_requests import (
    StandIn,
    counts,
    fail,
    scopes_update,
    seeded,
    session_token,
    uninstalled,
    webhook,
)
from shopify_sessions import offline_session_id


def app_home_and_webhooks(client: Any, storage: Any, standin: StandIn, shop: str) -> None:
    """The life of a shop in the app: first visit, fetches, a scope change, forged and
    malformed webhooks, the uninstall (delivered twice), and a new install."""
    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}

    # A page of App Home without a session token: shopifyapp sends it for one.
    bounce = client.get("/", params={"shop": shop, "embedded": "1"})
    assert bounce.status_code == 302
    assert "/auth/patch-id-token" in bounce.headers["location"]

    # A page of App Home, signed: the first visit exchanges the session token.
    page = client.get(
        "/", params={"shop": shop, "embedded": "1", "id_token": session_token(standin, shop)}
    )
    assert (page.status_code, page.text) == (200, f"{shop} has 42 products"), page.text
    assert f"frame-ancestors https://{shop}" in page.headers["content-security-policy"]
    session = storage.load_session(offline_session_id(shop))
    assert session is not None and session.refresh_token
    assert counts(standin, shop)["id_token_exchanges"] == 1

    # A fetch of the front end: the stored session, no new exchange.
    assert client.post("/api/products/count", headers=bearer).status_code == 200
    assert counts(standin, shop)["id_token_exchanges"] == 1

    # The patch ID token page, for App Bridge.
    patch = client.get("/auth/patch-id-token", params={"shop": shop, "shopify-reload": "/"})
    assert patch.status_code == 200 and "app-bridge" in patch.text

    # app/scopes_update, signed: the offline session's scope follows, its pair kept.
    payload = scopes_update("read_products", "write_discounts")
    assert _deliver(client, standin, "app/scopes_update", shop, payload) == 200
    stored = storage.load_session(session.id)
    assert stored is not None and stored.scope == "read_products,write_discounts"
    assert stored.access_token == session.access_token

    # Forged, unsigned, malformed, another shop's: refused, and nothing changes.
    assert _deliver(client, standin, "app/uninstalled", shop, uninstalled(shop), forged=True) == 401
    body, headers = webhook(standin, "app/uninstalled", shop, uninstalled(shop))
    unsigned = {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}
    assert client.post("/webhooks", content=body, headers=unsigned).status_code == 400
    assert _deliver(client, standin, "app/uninstalled", shop, b"{not json") == 400
    other = uninstalled("another-shop.myshopify.com")
    assert _deliver(client, standin, "app/uninstalled", shop, other) == 400
    assert client.get("/webhooks").status_code in (404, 405)
    assert storage.load_session(session.id) == stored

    # app/uninstalled, signed, twice (Shopify delivers at least once): the session is gone.
    for _ in range(2):
        assert _deliver(client, standin, "app/uninstalled", shop, uninstalled(shop)) == 200
    assert storage.find_sessions_by_shop(shop) == []

    # The merchant installs the app again: the next fetch exchanges a new session token.
    assert client.post("/api/products/count", headers=bearer).status_code == 200
    assert counts(standin, shop)["id_token_exchanges"] == 2
    assert storage.load_session(session.id) is not None

    # A forged session token is refused before anything else.
    forged = {"Authorization": f"Bearer {session_token(standin, shop, forged=True)}"}
    assert client.post("/api/products/count", headers=forged).status_code == 401


def expiring_and_dead_tokens(client: Any, storage: Any, standin: StandIn, shop: str) -> None:
    """A token about to expire is refreshed once; a dead refresh token (``invalid_grant``)
    is replaced by the exchange of the request's session token, unseen by the merchant."""
    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    expiring = seeded(standin, shop, access_expires_in=30)
    storage.store_session(expiring)
    assert client.post("/api/products/count", headers=bearer).status_code == 200
    renewed = storage.load_session(expiring.id)
    assert renewed is not None and renewed.refresh_token != expiring.refresh_token
    assert counts(standin, shop)["refreshes"] == 1

    dead = seeded(standin, shop, access_expires_in=-10)
    storage.store_session(dead)
    fail(standin, shop, "invalid_grant")
    assert client.post("/api/products/count", headers=bearer).status_code == 200
    exchanged = storage.load_session(dead.id)
    assert exchanged is not None and exchanged.refresh_token != dead.refresh_token
    assert counts(standin, shop)["id_token_exchanges"] == 1
    assert counts(standin, shop).get("reuses", 0) == 0


def _deliver(
    client: Any, standin: StandIn, topic: str, shop: str, payload: Any, **options: Any
) -> int:
    body, headers = webhook(standin, topic, shop, payload, **options)
    return int(client.post("/webhooks", content=body, headers=headers).status_code)
