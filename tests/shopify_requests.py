"""Requests as Shopify sends them to an app, signed with FakeShopify's app secret, and every
operation of FakeShopify that the webhook, framework and telemetry tests use (one place to
adapt when it changes)."""

from __future__ import annotations

import dataclasses
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
from shopify_app import ShopifyApp

from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session, online_session_id
from shopify_sessions._time import utc_now
from shopify_sessions.testing import FakeShopify as StandIn
from shopify_sessions.testing._transport import async_client, sync_client

__all__ = ["StandIn"]

#: What a forger signs with: not the app's secret.
FORGED_SECRET = secrets.token_urlsafe(32)


def verifying_app(standin: StandIn) -> ShopifyApp:
    """``shopifyapp``'s app with the credentials FakeShopify accepts."""
    return ShopifyApp(standin.client_id, standin.client_secret)


#: A claim that :func:`signed_token` leaves out.
ABSENT = object()


def session_token(standin: StandIn, shop: str, *, forged: bool = False, user_id: int = 42) -> str:
    """What Shopify's App Bridge sends: an HS256 JWT signed with the app's secret (with
    another one when ``forged``), for the staff user ``user_id``."""
    if not forged:
        return standin.session_token(shop, user_id=user_id)
    now = int(time.time())
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": standin.client_id,
        "sub": "42",
        "exp": now + 60,
        "nbf": now - 5,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, FORGED_SECRET, algorithm="HS256")


def signed_token(standin: StandIn, shop: str, **claims: Any) -> str:
    """A session token signed with the app's real secret, with Shopify's claims for
    ``shop`` changed by ``claims`` (``ABSENT``: left out): what only a holder of the
    secret could send, and what the app must still refuse when a claim is wrong."""
    now = int(time.time())
    given = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": standin.client_id,
        "sub": "42",
        "exp": now + 60,
        "nbf": now - 5,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "sid": uuid.uuid4().hex,
        **claims,
    }
    payload = {name: value for name, value in given.items() if value is not ABSENT}
    return jwt.encode(payload, standin.client_secret, algorithm="HS256")


def webhook(
    standin: StandIn,
    topic: str,
    shop: str,
    payload: Any,
    *,
    forged: bool = False,
    webhook_id: str = "",
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook as Shopify delivers it, HMAC-signed with the app's
    secret (with another one when ``forged``): FakeShopify's own ``webhook()``."""
    signed = standin.webhook(
        topic,
        shop,
        payload,
        webhook_id=webhook_id or None,
        secret=FORGED_SECRET if forged else None,
    )
    return signed.body, signed.headers


def webhook_input(
    standin: StandIn, topic: str, shop: str, payload: Any, **options: Any
) -> dict[str, Any]:
    """The same, as ``shopifyapp``'s ``RequestInput``."""
    body, headers = webhook(standin, topic, shop, payload, **options)
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


def seeded(
    standin: StandIn,
    shop: str,
    *,
    access_expires_in: float | None = None,
    refresh_expires_in: float | None = None,
    legacy: bool = False,
) -> Session:
    """An offline session holding a pair just issued by FakeShopify
    (``access_expires_in=-10``: one that has expired), or a legacy token."""
    return standin.seed_offline(
        shop,
        legacy=legacy,
        expires_in=access_expires_in,
        refresh_token_expires_in=refresh_expires_in,
    )


def counts(standin: StandIn, shop: str) -> dict[str, int]:
    return dataclasses.asdict(standin.counters(shop))


def fail(standin: StandIn, shop: str, *failures: str | int) -> None:
    """The next token requests of ``shop`` fail: ``503``, or an OAuth error such as
    ``"invalid_grant"``."""
    standin.fail(shop, *failures)


def http_client(standin: StandIn) -> httpx.Client:
    """An ``httpx.Client`` whose calls to ``https://<shop>.myshopify.com`` reach FakeShopify."""
    return standin.http_client()


def async_http_client(standin: StandIn) -> httpx.AsyncClient:
    return standin.async_http_client()


def wait_for_token_request(standin: StandIn, shop: str, number: int = 1) -> None:
    """Until FakeShopify holds the ``number``-th token request of ``shop`` (it answers after
    its ``latency``)."""
    deadline = time.monotonic() + 30
    while standin.counters(shop).token_requests < number:
        assert time.monotonic() < deadline, "the token request never reached FakeShopify"
        time.sleep(0.02)


def unreachable_url() -> str:
    """The URL of a port of this machine where nothing listens (it was free a moment ago):
    connecting there fails as a network failure does, for real."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def http_client_to(url: str) -> httpx.Client:
    """An ``httpx.Client`` that sends ``https://<shop>.myshopify.com`` to ``url``, as
    FakeShopify's clients send it to FakeShopify."""
    return sync_client(url, {})


def async_http_client_to(url: str) -> httpx.AsyncClient:
    return async_client(url, {})


@contextmanager
def redis_keys_cleaned(shop: str, url: str | None = None) -> Iterator[None]:
    """Delete afterwards the keys a storage on the shared Redis (at ``url``, with the
    default key prefix) wrote for ``shop``, and the Node layout's migration record if it
    was not there before: nothing else is touched."""
    from conftest import REDIS_URL
    from shopify_sessions.redis import RedisSessionStorage

    with RedisSessionStorage(url or REDIS_URL) as storage:
        migrations = f"{storage.key_prefix}_migrations"
        had_migrations = bool(storage.client.exists(migrations))
        try:
            yield
        finally:
            storage.delete_sessions([s.id for s in storage.find_sessions_by_shop(shop)])
            for key in storage.client.scan_iter(match=f"{storage.key_prefix}*{shop}*"):
                storage.client.delete(key)
            if not had_migrations:
                storage.client.delete(migrations)
