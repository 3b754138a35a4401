"""Requests as Shopify sends them to an app, signed with the stand-in's app secret, and
every operation of the stand-in that the webhook, framework and telemetry tests use: the one
place to adapt when the stand-in changes (``reset`` is the same on both, the rest is here)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt

from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session, online_session_id
from shopify_sessions._time import utc_now
from standin import CLIENT_ID, CLIENT_SECRET
from standin_client import StandIn

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "StandIn"]


def session_token(shop: str, secret: str = CLIENT_SECRET) -> str:
    """What Shopify's App Bridge sends: an HS256 JWT signed with the app's secret."""
    now = int(time.time())
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": CLIENT_ID,
        "sub": "42",
        "exp": now + 60,
        "nbf": now - 5,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "sid": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def webhook(
    topic: str, shop: str, payload: Any, *, secret: str = CLIENT_SECRET, webhook_id: str = ""
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook as Shopify delivers it, HMAC-signed."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-API-Version": "2026-10",
    }
    return body, headers


def webhook_input(topic: str, shop: str, payload: Any, **options: Any) -> dict[str, Any]:
    """The same, as ``shopifyapp``'s ``RequestInput``."""
    body, headers = webhook(topic, shop, payload, **options)
    return {
        "method": "POST",
        "headers": headers,
        "url": "https://app.example/webhooks",
        "body": body.decode(),
    }


def uninstalled(shop: str) -> dict[str, Any]:
    """An ``app/uninstalled`` payload: the shop, as Shopify sends it."""
    return {"id": 548380009, "name": "A shop", "domain": shop, "myshopify_domain": shop}


def scopes_update(*current: str, previous: tuple[str, ...] = ("read_products",)) -> dict[str, Any]:
    return {
        "id": 1,
        "previous": list(previous),
        "current": list(current),
        "updated_at": "2026-11-30T12:00:00-05:00",
    }


def shop_redact(shop: str) -> dict[str, Any]:
    return {"shop_id": 954889, "shop_domain": shop}


def online_session(shop: str, user_id: int = 7) -> Session:
    return Session(
        online_session_id(shop, user_id),
        shop,
        "",
        True,
        scope="read_products",
        expires=utc_now().replace(microsecond=0),
        access_token="shpua_online",
        online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=user_id)),
    )


def seeded(standin: StandIn, shop: str, **options: Any) -> Session:
    """An offline session holding a pair just issued by the stand-in
    (``access_expires_in=-10``: one that has expired)."""
    return standin.seeded_session(shop, **options)


def counts(standin: StandIn, shop: str) -> dict[str, int]:
    return standin.counts(shop)


def wait_for_token_request(standin: StandIn, shop: str, number: int = 1) -> None:
    """Until the stand-in holds the ``number``-th token request of ``shop`` (it answers
    after its ``latency``)."""
    deadline = time.monotonic() + 30
    while standin.counts(shop).get("arrived", 0) < number:
        assert time.monotonic() < deadline, "the token request never reached the stand-in"
        time.sleep(0.02)


def fail(standin: StandIn, shop: str, *failures: str) -> None:
    """The next token requests of ``shop`` fail: ``"503"``, or an OAuth error such as
    ``"invalid_grant"``."""
    standin.fault(shop, *failures)


def http_client(standin: StandIn) -> httpx.Client:
    """An ``httpx.Client`` whose calls to ``https://<shop>.myshopify.com`` reach the stand-in."""
    return standin.client()


def async_http_client(standin: StandIn) -> httpx.AsyncClient:
    return standin.async_client()


def routing_environment(standin: StandIn) -> dict[str, str]:
    """What a subprocess needs in its environment for its httpx clients to reach the stand-in
    (with ``tests/cli/routing`` on its ``PYTHONPATH``)."""
    return {"SHOPIFY_STANDIN_PORT": str(standin.port)}
