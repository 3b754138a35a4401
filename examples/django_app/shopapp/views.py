"""App Home (a page, the same call from a fetch of its front end, and one as the staff
user), and the app's own work for webhooks.

``@shopify.app_home`` verifies the request with ``shopifyapp`` and hands the view the
shop's valid offline session: on the first visit, from a token exchange, stored; later the
stored one, refreshed when it is about to expire, once across every worker. With
``online=True`` the view also gets the staff user's online session. The webhook view
applies ``app/uninstalled``, ``app/scopes_update`` and ``shop/redact`` to the sessions,
then sends ``webhook_received``.
"""

import logging
from typing import Any

from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from shopify_sessions import Session
from shopify_sessions import django as shopify
from shopify_sessions.webhooks import ReceivedWebhook

API_VERSION = "2026-10"
QUERY = "{ productsCount { count } }"
logger = logging.getLogger("app")


def count_products(session: Session) -> HttpResponse | int:
    result = shopify.get_app().admin_graphql_request(
        QUERY,
        shop=session.shop.removesuffix(".myshopify.com"),
        access_token=session.access_token or "",
        api_version=API_VERSION,
        http_client=shopify.get_tokens().http_client,
    )
    if not result.ok:
        res = result.response
        return HttpResponse(res.body, status=res.status, headers=dict(res.headers))
    return int((result.data or {}).get("productsCount", {}).get("count", 0))


@shopify.app_home
def products_count(request: HttpRequest) -> HttpResponse:
    session = request.shopify_session
    count = count_products(session)
    if isinstance(count, HttpResponse):
        return count
    return HttpResponse(f"{session.shop} has {count} products", content_type="text/plain")


@shopify.app_home(online=True)
def me(request: HttpRequest) -> HttpResponse:
    """As the staff user: the online session's token has the user's permissions."""
    session = request.shopify_online_session
    user = session.online_access_info.associated_user
    count = count_products(session)
    if isinstance(count, HttpResponse):
        return count
    return HttpResponse(f"{user.email} sees {count} products", content_type="text/plain")


@receiver(shopify.webhook_received)
def on_webhook(sender: Any, received: ReceivedWebhook, **kwargs: Any) -> None:
    """The app's own work for a webhook, after its effect on the sessions."""
    logger.info("webhook %s for %s: %s", received.topic, received.shop, received.result)
