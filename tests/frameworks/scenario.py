"""What each framework's example app must do, step by step, whatever the framework: signed
App Home requests against the strict stand-in, and HMAC-signed webhooks.

``client`` is an ``httpx.Client`` on the app (or anything with its ``get`` and ``post``);
``storage`` a sync storage on the app's table, for looking at the rows.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from shopify_requests import (
    ABSENT,
    StandIn,
    counts,
    fail,
    scopes_update,
    seeded,
    session_token,
    signed_token,
    uninstalled,
    webhook,
)
from shopify_sessions import AssociatedUser, offline_session_id, online_session_id
from shopify_sessions._time import utc_now

#: The header with which App Bridge is told to fetch a new session token and retry.
RETRY = "x-shopify-retry-invalid-session-request"


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


def hostile_session_tokens(client: Any, storage: Any, standin: StandIn, shop: str) -> None:
    """Session tokens signed with the app's own secret, whose claims Shopify says to refuse:
    each gets ``shopifyapp``'s answer to an invalid token (a 401 App Bridge retries for a
    fetch, a redirect to the patch ID token page for a page), never a 500, a session or an
    exchange; the honest token of the same shop then works."""
    now = int(time.time())
    suffixed = f"https://{shop}.evil.example"
    ours = {  # refused by the checks on top of shopifyapp's
        "dest not a shop": {"dest": "https://evil.example", "iss": "https://evil.example/admin"},
        "dest a shop with a suffix": {"dest": suffixed, "iss": f"{suffixed}/admin"},
        "dest with a path": {"dest": f"https://{shop}/admin", "iss": f"https://{shop}/admin"},
        "dest in capitals": {"dest": f"https://{shop.upper()}", "iss": f"https://{shop}/admin"},
        "iss on another shop": {"iss": "https://another-shop.myshopify.com/admin"},
        "iss over http": {"iss": f"http://{shop}/admin"},
        "no iss": {"iss": ABSENT},
        "no exp": {"exp": ABSENT},
        "iat after exp": {"iat": now + 5, "exp": now + 1},
    }
    theirs = {  # refused by shopifyapp already
        "aud of another app": {"aud": "another-app"},
        "nbf in the future": {"nbf": now + 120},
        "expired": {"exp": now - 60, "iat": now - 120, "nbf": now - 120},
    }
    for reason, claims in {**ours, **theirs}.items():
        token = signed_token(standin, shop, **claims)
        fetch = client.post("/api/products/count", headers={"Authorization": f"Bearer {token}"})
        assert (fetch.status_code, fetch.headers.get(RETRY)) == (401, "1"), (reason, fetch.text)
        query = {"shop": shop, "embedded": "1", "id_token": token}
        page = client.get("/", params=query)
        assert page.status_code in (302, 401), (reason, page.status_code, page.text)
        if reason in ours:
            assert "/auth/patch-id-token" in page.headers["location"], reason
        assert "evil" not in page.headers.get("content-security-policy", ""), reason
    assert storage.find_sessions_by_shop(shop) == []
    assert counts(standin, shop).get("id_token_exchanges", 0) == 0

    honest = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    assert client.post("/api/products/count", headers=honest).status_code == 200


def hostile_patch_page(client: Any, shop: str) -> None:
    """The patch ID token page names in its Content-Security-Policy only a shop's domain:
    anything else in ``shop`` is refused with 400, and never reaches a header."""
    for bad in [
        "evil.example",
        f"{shop}.evil.example",
        f"https://{shop}",
        f"{shop}/",
        f"{shop} https://evil.example",
        "admin.shopify.com/store/evil",
    ]:
        answer = client.get("/auth/patch-id-token", params={"shop": bad, "shopify-reload": "/"})
        assert answer.status_code == 400, (bad, answer.status_code)
        assert "content-security-policy" not in answer.headers, bad
    both = client.get(f"/auth/patch-id-token?shop={shop}&shop=evil.example&shopify-reload=/")
    assert both.status_code == 400 and "content-security-policy" not in both.headers

    page = client.get("/auth/patch-id-token", params={"shop": shop, "shopify-reload": "/"})
    assert page.status_code == 200 and "app-bridge" in page.text
    policy = f"frame-ancestors https://{shop} https://admin.shopify.com;"
    assert page.headers["content-security-policy"] == policy


def exchange_failures(client: Any, storage: Any, standin: StandIn, shop: str) -> None:
    """A first visit whose exchange fails: Shopify down is 503 with ``Retry-After``;
    Shopify's refusals are ``shopifyapp``'s answers as they are (a 429's JSON once, the
    invalid token's 401); nothing is stored, and the next try works."""
    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    fail(standin, shop, 503)
    down = client.post("/api/products/count", headers=bearer)
    assert (down.status_code, down.headers.get("retry-after")) == (503, "1"), down.text

    fail(standin, shop, 429, 429, 429)  # shopifyapp tries three times, a second apart
    limited = client.post("/api/products/count", headers=bearer)
    assert (limited.status_code, limited.text) == (429, '{"error":"Too many requests"}')
    assert limited.headers["content-type"].startswith("application/json")

    fail(standin, shop, "invalid_subject_token")
    refused = client.post("/api/products/count", headers=bearer)
    assert (refused.status_code, refused.headers.get(RETRY)) == (401, "1"), refused.text
    assert storage.find_sessions_by_shop(shop) == []

    assert client.post("/api/products/count", headers=bearer).status_code == 200
    assert storage.load_session(offline_session_id(shop)) is not None


def staff_sessions(client: Any, storage: Any, standin: StandIn, shop: str) -> None:
    """``/api/me`` acts as the staff user of the session token: the user's online session
    (exchanged, stored under ``{shop}_{user id}``, its user kept as Node keeps it), beside
    the shop's offline one; the stored one until it expires, then exchanged again."""

    def me(user_id: int) -> Any:
        token = session_token(standin, shop, user_id=user_id)
        return client.get("/api/me", headers={"Authorization": f"Bearer {token}"})

    first = me(42)
    assert (first.status_code, first.text) == (200, "staff-42@example.com sees 42 products")
    online = storage.load_session(online_session_id(shop, 42))
    assert online is not None and online.is_online and online.shop == shop
    assert online.online_access_info.associated_user == AssociatedUser(
        id=42,
        first_name="Staff",
        last_name="Member 42",
        email="staff-42@example.com",
        email_verified=True,
        account_owner=False,
        locale="en",
        collaborator=False,
    )
    assert online.expires > utc_now() + timedelta(hours=23)
    assert online.refresh_token is None and standin.accepts(shop, online.access_token)
    offline = storage.load_session(offline_session_id(shop))
    assert offline is not None and offline.refresh_token  # for background work
    assert counts(standin, shop)["id_token_exchanges"] == 2

    # The stored session, while it is valid: no exchange.
    assert me(42).text == "staff-42@example.com sees 42 products"
    assert counts(standin, shop)["id_token_exchanges"] == 2

    # Another staff user: a session of their own; the shop's offline one is untouched.
    assert me(7).text == "staff-7@example.com sees 42 products"
    assert storage.load_session(online_session_id(shop, 7)) is not None
    assert storage.load_session(offline.id) == offline
    assert counts(standin, shop)["id_token_exchanges"] == 3

    # About to expire (an online token cannot be refreshed): exchanged again.
    online.expires = utc_now() + timedelta(seconds=30)
    storage.store_session(online)
    assert me(42).status_code == 200
    renewed = storage.load_session(online.id)
    assert renewed is not None and renewed.access_token != online.access_token
    assert renewed.expires > utc_now() + timedelta(hours=23)
    assert counts(standin, shop)["id_token_exchanges"] == 4

    # A session token that names no user has no online session.
    anonymous = signed_token(standin, shop, sub=ABSENT)
    nobody = client.get("/api/me", headers={"Authorization": f"Bearer {anonymous}"})
    assert (nobody.status_code, nobody.headers.get(RETRY)) == (401, "1")
