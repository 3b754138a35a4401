# Generated from _async.py by scripts/unasync.py: edit that file, then run the script.
"""The synchronous webhook effects."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .._errors import (
    InvalidSessionError,
    LockTimeoutError,
    StorageConflictError,
    StorageUnavailableError,
)
from .._locks import check_timeout
from .._storage import LockingSessionStorage
from ..telemetry import WEBHOOK_SPAN, Telemetry, check_telemetry, error_code
from ._base import (
    DEFAULT_WEBHOOK_LOCK_TIMEOUT,
    DELETED,
    IGNORED,
    LOCK_OPERATION,
    SCOPE_ATTEMPTS,
    SCOPE_UPDATED,
    UNCHANGED,
    ReceivedWebhook,
    Webhook,
    WebhookResult,
    check_storage,
    logger,
    parse_webhook,
    report,
    request_headers,
    span_attributes,
)

if TYPE_CHECKING:
    from shopify_app import RequestInput, ShopifyApp


def apply_webhook(
    storage: LockingSessionStorage,
    *,
    topic: str,
    shop: str,
    payload: Any,
    lock_timeout: float = DEFAULT_WEBHOOK_LOCK_TIMEOUT,
    telemetry: Telemetry | None = None,
) -> WebhookResult:
    """Apply a verified webhook's effect to the shop's sessions.

    - ``app/uninstalled`` and ``shop/redact``: every session of the shop is deleted.
    - ``app/scopes_update``: the offline session's scope becomes the payload's ``current``
      scopes, comma-joined, as Shopify's app template stores them; online sessions and a
      shop without an offline session are left as they are.
    - any other topic: nothing; the result's ``effect`` is ``ignored``.

    Each effect is idempotent: a webhook delivered again, or after another that undid it
    (an ``app/scopes_update`` after the uninstall), changes nothing and brings no session
    back. An uninstall during a refresh of the same session wins: the refresh's pair is
    discarded when it lands (``replace_session``). A scope update waits for a refresh in
    flight (the session's lock), then writes with a compare-and-set, so that neither loses
    the other's write.

    Args:
        storage: a locking storage of this package (memory, SQL, or any backend with
            ``lock_session`` and ``replace_session``).
        topic: the webhook's topic: ``app/uninstalled`` as Shopify's ``X-Shopify-Topic``
            header names it, or ``APP_UNINSTALLED`` as Shopify's Node library does.
        shop: the shop, as ``shopifyapp``'s verification gives it (``my-shop``) or as a
            domain (``my-shop.myshopify.com``).
        payload: the request's body (JSON text or bytes) or the parsed JSON object.
        lock_timeout: seconds ``app/scopes_update`` waits for a refresh of the session
            before :class:`~shopify_sessions.LockTimeoutError`; answer Shopify with a 5xx
            then, and it delivers the webhook again later.
        telemetry: where to report (see :class:`~shopify_sessions.telemetry.Telemetry`).

    Raises:
        InvalidWebhookError: a malformed topic or payload, or a payload about another shop;
            raised before the storage is touched.
        InvalidShopError: ``shop`` is not a shop.
        LockTimeoutError: a refresh held the session's lock longer than ``lock_timeout``.
        SessionStorageError: the storage failed (typed, with its cause).
    """
    webhook = parse_webhook(topic, shop, payload)
    check_storage(storage, is_async=False)
    return _apply(storage, webhook, check_timeout(lock_timeout), check_telemetry(telemetry))


def receive_webhook(
    storage: LockingSessionStorage,
    app: ShopifyApp,
    request: RequestInput,
    *,
    lock_timeout: float = DEFAULT_WEBHOOK_LOCK_TIMEOUT,
    telemetry: Telemetry | None = None,
) -> ReceivedWebhook:
    """Verify a webhook request with ``shopifyapp``, apply it, and say what to answer.

    ``shopifyapp`` checks the HMAC signature (``ShopifyApp.verify_webhook_req``); the topic
    comes from the ``X-Shopify-Topic`` header. The framework integrations of this package
    are this function and a few lines to turn their request into ``request`` and the
    answer into their response.

    - not verified: ``shopifyapp``'s answer (401 for a bad signature, 405, 400);
    - malformed (topic, payload, shop): 400;
    - the session's lock busy, or the storage unreachable: 503, and Shopify delivers the
      webhook again later (every effect is idempotent);
    - applied: 200, with the :class:`WebhookResult`.

    Other storage errors are raised, for the framework to answer 500 and log.

    Args:
        storage: As for :func:`apply_webhook`.
        app: the app's ``shopify_app.ShopifyApp`` (its client secret signs webhooks).
        request: ``shopifyapp``'s ``RequestInput``: ``method``, ``headers``, ``url``, and
            ``body``, the raw body as text (UTF-8), exactly as received.
        lock_timeout: As for :func:`apply_webhook`.
        telemetry: As for :func:`apply_webhook`.
    """
    check_storage(storage, is_async=False)
    timeout, telemetry = check_timeout(lock_timeout), check_telemetry(telemetry)
    verified = app.verify_webhook_req(request)
    topic, webhook_id = request_headers(request)
    if not verified.ok:
        logger.warning("webhook %s refused: %s", topic or "(no topic)", verified.log.code)
        return ReceivedWebhook._answer(verified.response, topic=topic, webhook_id=webhook_id)
    try:
        webhook = parse_webhook(topic, verified.shop or "", request["body"])
    except InvalidSessionError as error:
        logger.warning("webhook %s refused: %s", topic or "(no topic)", error)
        return ReceivedWebhook._refused(400, topic=topic, webhook_id=webhook_id)
    try:
        result = _apply(storage, webhook, timeout, telemetry)
    except (LockTimeoutError, StorageUnavailableError) as error:
        logger.warning(
            "webhook %s for %s not applied (%s); Shopify will deliver it again",
            webhook.topic,
            webhook.shop,
            error,
        )
        return ReceivedWebhook._refused(503, topic=webhook.topic, webhook_id=webhook_id)
    return ReceivedWebhook._applied(webhook, result, webhook_id)


def _apply(
    storage: LockingSessionStorage, webhook: Webhook, timeout: float, telemetry: Telemetry
) -> WebhookResult:
    with telemetry._span(WEBHOOK_SPAN, span_attributes(webhook)) as span:
        try:
            if webhook.deletes_sessions:
                result = _delete_sessions(storage, webhook)
            elif webhook.updates_scope:
                result = _update_scope(storage, webhook, timeout, telemetry)
            else:
                result = webhook.result(IGNORED)
        except BaseException as error:
            telemetry._fail_span(span, error, error_code(error))
            raise
        return report(result, telemetry, span)


def _delete_sessions(storage: LockingSessionStorage, webhook: Webhook) -> WebhookResult:
    """No lock: a refresh in flight stores its pair with ``replace_session``, which finds
    the row gone and stores nothing, so the uninstall need not wait for it."""
    ids = tuple(session.id for session in storage.find_sessions_by_shop(webhook.shop))
    if not ids:
        return webhook.result(UNCHANGED)
    storage.delete_sessions(list(ids))
    return webhook.result(DELETED, ids)


def _update_scope(
    storage: LockingSessionStorage, webhook: Webhook, timeout: float, telemetry: Telemetry
) -> WebhookResult:
    """Under the session's lock, so that no refresh of this package is in flight: one would
    store the scope Shopify answered it over this one. Written with a compare-and-set, so
    that a pair stored meanwhile by a writer the lock does not hold off (a Node app, a
    worker that outlived its lock) is never overwritten: read again, and try again."""
    id = webhook.offline_id
    started = time.monotonic()
    lock = storage.lock_session(id, timeout=timeout)
    try:
        with lock:
            telemetry._record_lock_wait(LOCK_OPERATION, time.monotonic() - started, acquired=True)
            for _ in range(SCOPE_ATTEMPTS):
                stored = storage.load_session(id)
                if stored is None or stored.scope == webhook.scope:
                    return webhook.result(UNCHANGED)
                if storage.replace_session(webhook.with_scope(stored), previous=stored):
                    return webhook.result(SCOPE_UPDATED, (id,))
    except LockTimeoutError:
        telemetry._record_lock_wait(LOCK_OPERATION, time.monotonic() - started, acquired=False)
        raise
    raise StorageConflictError(
        f"{webhook.topic} for {webhook.shop}: the session changed {SCOPE_ATTEMPTS} times "
        "while its scope was written"
    )
