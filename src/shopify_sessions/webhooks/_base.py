"""What a webhook does to the sessions, decided without I/O: its topic, shop and payload
checked, and the effect reported.

The sync and async shells only find, delete, lock, load and replace in the order this gives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .._errors import InvalidSessionError
from .._session import Session
from .._shop import offline_session_id, shop_domain
from .._storage import is_asyncio_storage
from .._wrappers import is_locking_storage, wrapper_advice
from ..telemetry import EFFECT, SHOP, TOPIC, Telemetry

logger = logging.getLogger("shopify_sessions")

UNINSTALLED = "app/uninstalled"
SCOPES_UPDATE = "app/scopes_update"
SHOP_REDACT = "shop/redact"
#: The GraphQL names of these topics (``WebhookSubscriptionTopic``), as Shopify's Node
#: library hands them to an app.
_ENUM_TOPICS = {
    "APP_UNINSTALLED": UNINSTALLED,
    "APP_SCOPES_UPDATE": SCOPES_UPDATE,
    "SHOP_REDACT": SHOP_REDACT,
}
#: The payload field that names the shop, per topic, when Shopify sends one.
_SHOP_FIELDS = {UNINSTALLED: "myshopify_domain", SHOP_REDACT: "shop_domain"}

# Values of WebhookResult.effect.
DELETED = "deleted"
SCOPE_UPDATED = "scope_updated"
UNCHANGED = "unchanged"
IGNORED = "ignored"

DEFAULT_WEBHOOK_LOCK_TIMEOUT = 3.0
"""Seconds ``app/scopes_update`` waits for a refresh of the same session by default:
Shopify gives a webhook 5 s in all, and delivers it again later when it is not answered
with a 2xx."""
#: The ``shopify_sessions.operation`` of the lock wait of a scope update.
LOCK_OPERATION = "scopes_update"
#: Compare-and-set tries of a scope update before giving up (each failure is another
#: writer's change of the row, which is rare).
SCOPE_ATTEMPTS = 5


class InvalidWebhookError(InvalidSessionError):
    """A webhook's topic or payload is malformed, or names another shop than the one
    verified. Raised before the storage is touched."""


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """What a webhook did to the sessions.

    Attributes:
        topic: the topic as Shopify's ``X-Shopify-Topic`` header names it
            (``app/uninstalled``).
        shop: the shop's domain (``my-shop.myshopify.com``).
        effect: ``deleted`` (``app/uninstalled``, ``shop/redact``: the shop's sessions
            are gone), ``scope_updated`` (``app/scopes_update``: the offline session holds
            the new scopes), ``unchanged`` (nothing left to do: no session, or the effect
            was applied already, as when Shopify delivers a webhook again), or ``ignored``
            (a topic that does not change sessions).
        session_ids: the sessions deleted or updated.
    """

    topic: str
    shop: str
    effect: str
    session_ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        what = {
            DELETED: f"deleted {len(self.session_ids)} session(s)",
            SCOPE_UPDATED: "scope of the offline session updated",
            UNCHANGED: "sessions unchanged (nothing left to do)",
            IGNORED: "no effect on sessions: the topic does not change them",
        }[self.effect]
        return f"{self.topic} for {self.shop}: {what}"


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """The HTTP answer to give Shopify for a webhook request."""

    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    """A webhook request, as :func:`receive_webhook` handled it.

    Attributes:
        response: the answer to give Shopify.
        result: what the webhook did to the sessions; ``None`` when it was not applied
            (not verified, malformed, or the storage busy: ``response.status`` says).
        topic: the topic (``app/uninstalled``); ``""`` when the request named none.
        shop: the shop's domain, once verified; ``""`` before.
        webhook_id: Shopify's ``X-Shopify-Webhook-Id``, the same for every delivery of
            one webhook: the key to deduplicate the app's own work with.
        payload: the JSON payload, once verified; ``None`` before.
    """

    response: WebhookResponse
    result: WebhookResult | None = None
    topic: str = ""
    shop: str = ""
    webhook_id: str = ""
    payload: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether the webhook was verified and applied."""
        return self.result is not None

    @classmethod
    def _answer(cls, response: Any, *, topic: str, webhook_id: str) -> ReceivedWebhook:
        """Not verified: ``shopifyapp``'s suggested response (its ``Res``)."""
        answer = WebhookResponse(response.status, response.body, dict(response.headers))
        return cls(answer, topic=topic, webhook_id=webhook_id)

    @classmethod
    def _refused(cls, status: int, *, topic: str, webhook_id: str) -> ReceivedWebhook:
        headers = {"Retry-After": "5"} if status == 503 else {}
        body = HTTPStatus(status).phrase
        return cls(WebhookResponse(status, body, headers), topic=topic, webhook_id=webhook_id)

    @classmethod
    def _applied(cls, webhook: Webhook, result: WebhookResult, webhook_id: str) -> ReceivedWebhook:
        return cls(
            WebhookResponse(200),
            result,
            topic=webhook.topic,
            shop=webhook.shop,
            webhook_id=webhook_id,
            payload=webhook.payload,
        )


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook's input, checked: what the shells act on."""

    topic: str
    shop: str
    payload: dict[str, Any]
    scope: str | None

    @property
    def offline_id(self) -> str:
        return offline_session_id(self.shop)

    @property
    def deletes_sessions(self) -> bool:
        return self.topic in (UNINSTALLED, SHOP_REDACT)

    @property
    def updates_scope(self) -> bool:
        return self.topic == SCOPES_UPDATE

    def result(self, effect: str, session_ids: tuple[str, ...] = ()) -> WebhookResult:
        return WebhookResult(self.topic, self.shop, effect, session_ids)

    def with_scope(self, session: Session) -> Session:
        """``session`` holding this webhook's scopes."""
        updated = session.copy()
        updated.scope = self.scope
        return updated


def parse_webhook(topic: str, shop: str, payload: object) -> Webhook:
    """Check a webhook's topic, shop and payload.

    Raises:
        InvalidWebhookError: a malformed topic or payload, or a payload about another shop.
        InvalidShopError: ``shop`` is not a shop (``my-shop`` or ``my-shop.myshopify.com``).
    """
    topic = normalize_topic(topic)
    domain = shop_domain(shop)
    document = _document(payload)
    field = _SHOP_FIELDS.get(topic)
    named = document.get(field) if field else None
    if named is not None and (not isinstance(named, str) or named.lower() != domain.lower()):
        raise InvalidWebhookError(f"{topic}: the payload's {field} {named!r} is not {domain}")
    scope = _scope(document) if topic == SCOPES_UPDATE else None
    return Webhook(topic, domain, document, scope)


def normalize_topic(topic: object) -> str:
    """``app/uninstalled`` for ``app/uninstalled`` or ``APP_UNINSTALLED`` (any topic in the
    header's form is kept as it is)."""
    if not isinstance(topic, str) or not topic.strip():
        raise InvalidWebhookError(f"a webhook topic must be a non-empty str, not {topic!r}")
    topic = topic.strip()
    return _ENUM_TOPICS.get(topic, topic.lower() if "/" in topic else topic)


def _document(payload: object) -> dict[str, Any]:
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidWebhookError("the webhook's payload is not UTF-8 text") from None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            raise InvalidWebhookError("the webhook's payload is not JSON") from None
    if not isinstance(payload, Mapping):
        raise InvalidWebhookError(
            f"the webhook's payload must be a JSON object, not {type(payload).__name__}"
        )
    return dict(payload)


def _scope(document: dict[str, Any]) -> str:
    """The comma-joined ``current`` scopes, as Shopify's app template stores them."""
    current = document.get("current")
    if not isinstance(current, list) or not all(
        isinstance(scope, str) and scope.strip() and "," not in scope for scope in current
    ):
        raise InvalidWebhookError(
            f"{SCOPES_UPDATE}: the payload's current must be a list of scopes, not {current!r}"
        )
    return ",".join(scope.strip() for scope in current)


def check_storage(storage: object, *, is_async: bool) -> None:
    """Refuse a storage that cannot lock and compare-and-set, or one of the other kind: a
    sync storage awaited would block the event loop, an asyncio one would never run."""
    if not is_locking_storage(storage, is_async=is_async):
        raise TypeError(
            "storage must have lock_session and replace_session (a storage of this "
            f"package, or one of the locking protocols), not {storage!r}"
            + wrapper_advice(storage, is_async=is_async)
        )
    if is_asyncio_storage(storage) != is_async:
        if is_async:
            raise TypeError(f"{storage!r} is synchronous: use apply_webhook, receive_webhook")
        raise TypeError(f"{storage!r} is asyncio: use apply_webhook_async, receive_webhook_async")


def request_headers(request: Any) -> tuple[str, str]:
    """The topic and webhook id headers of a ``shopifyapp`` ``RequestInput`` (``""`` when
    absent); Shopify sends them with and without the ``X-`` prefix."""
    headers = request.get("headers") if isinstance(request, Mapping) else None
    if not isinstance(headers, Mapping):
        return "", ""
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}

    def first(*names: str) -> str:
        return next((lowered[name] for name in names if lowered.get(name)), "")

    return (
        first("x-shopify-topic", "shopify-topic"),
        first("x-shopify-webhook-id", "shopify-webhook-id"),
    )


def span_attributes(webhook: Webhook) -> dict[str, str]:
    return {SHOP: webhook.shop, TOPIC: webhook.topic}


def report(result: WebhookResult, telemetry: Telemetry, span: Any) -> WebhookResult:
    """Log the result (never a token), count it, and put its effect on the span."""
    changed = result.effect in (DELETED, SCOPE_UPDATED)
    logger.log(
        logging.INFO if changed else logging.DEBUG,
        "webhook %s",
        result,
        extra={"shop": result.shop, "topic": result.topic, "effect": result.effect},
    )
    telemetry._count_webhook(result.topic, result.effect)
    if span is not None:
        span.set_attribute(EFFECT, result.effect)
    return result
