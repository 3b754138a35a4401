"""Webhooks' effects on the sessions, on every backend and driver, sync and async: each
topic, idempotence under redelivery and reordering, refusals, and the races with a refresh
in flight, held there by the strict stand-in."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from conftest import Awaited
from races import in_flight, locked
from shopify_requests import (
    StandIn,
    async_http_client,
    counts,
    online_session,
    scopes_update,
    seeded,
    shop_redact,
    uninstalled,
    verifying_app,
    webhook_input,
)
from shopify_sessions import (
    AsyncMemorySessionStorage,
    AsyncSessionStorageWrapper,
    InvalidShopError,
    MemorySessionStorage,
    Session,
    SessionStorageWrapper,
    offline_session_id,
)
from shopify_sessions.webhooks import (
    InvalidWebhookError,
    ReceivedWebhook,
    WebhookResult,
    apply_webhook,
    apply_webhook_async,
    receive_webhook,
    receive_webhook_async,
)

NEW_SCOPES = ("read_products", "write_orders", "write_discounts")


async def apply(storage: Any, topic: str, shop: str, payload: Any, **options: Any) -> WebhookResult:
    """``apply_webhook`` for a sync storage, ``apply_webhook_async`` for an asyncio one."""
    if isinstance(storage, Awaited):
        return apply_webhook(storage.target, topic=topic, shop=shop, payload=payload, **options)
    return await apply_webhook_async(storage, topic=topic, shop=shop, payload=payload, **options)


async def receive(
    storage: Any, standin: StandIn, request: dict[str, Any], **options: Any
) -> ReceivedWebhook:
    """A signed request through ``shopifyapp``'s verification, then applied."""
    app = verifying_app(standin)
    if isinstance(storage, Awaited):
        return receive_webhook(storage.target, app, request, **options)  # type: ignore[arg-type]
    return await receive_webhook_async(storage, app, request, **options)  # type: ignore[arg-type]


@pytest.fixture
async def sessions(storage: Any, standin: StandIn, shop: str) -> dict[str, Session]:
    """A shop with an offline and an online session, and another shop's offline session."""
    standin.reset()
    other = shop.replace("shop-", "other-")
    stored = {
        "offline": seeded(standin, shop),
        "online": online_session(shop),
        "other": seeded(standin, other),
    }
    for session in stored.values():
        await storage.store_session(session)
    return stored


async def test_app_uninstalled_deletes_every_session_of_the_shop_and_only_them(
    storage: Any, sessions: dict[str, Session], shop: str, caplog: Any
) -> None:
    with caplog.at_level(logging.INFO, logger="shopify_sessions"):
        result = await apply(storage, "app/uninstalled", shop, uninstalled(shop))
    assert result.effect == "deleted"
    assert sorted(result.session_ids) == sorted([sessions["offline"].id, sessions["online"].id])
    assert await storage.find_sessions_by_shop(shop) == []
    assert await storage.load_session(sessions["other"].id) == sessions["other"]
    [record] = [r for r in caplog.records if getattr(r, "topic", None) == "app/uninstalled"]
    assert (record.shop, record.effect) == (shop, "deleted")
    assert sessions["offline"].access_token not in record.getMessage()


async def test_shop_redact_deletes_the_sessions_too(
    storage: Any, sessions: dict[str, Session], shop: str
) -> None:
    result = await apply(storage, "shop/redact", shop, json.dumps(shop_redact(shop)))
    assert result.effect == "deleted" and len(result.session_ids) == 2
    assert await storage.find_sessions_by_shop(shop) == []


async def test_app_scopes_update_replaces_the_offline_scope_only(
    storage: Any, sessions: dict[str, Session], shop: str
) -> None:
    result = await apply(storage, "app/scopes_update", shop, scopes_update(*NEW_SCOPES))
    assert (result.effect, result.session_ids) == ("scope_updated", (sessions["offline"].id,))
    stored = await storage.load_session(sessions["offline"].id)
    assert stored is not None and stored.scope == ",".join(NEW_SCOPES)
    expected = sessions["offline"].copy()
    expected.scope = ",".join(NEW_SCOPES)
    assert stored == expected  # the pair and everything else as it was
    assert await storage.load_session(sessions["online"].id) == sessions["online"]
    assert await storage.load_session(sessions["other"].id) == sessions["other"]


async def test_other_topics_change_nothing_and_say_so(
    storage: Any, sessions: dict[str, Session], shop: str
) -> None:
    for topic in ("orders/create", "customers/redact", "APP_SUBSCRIPTIONS_UPDATE"):
        result = await apply(storage, topic, shop, {"id": 1})
        assert (result.topic, result.effect, result.session_ids) == (topic, "ignored", ())
        assert "no effect on sessions" in str(result)
    assert len(await storage.find_sessions_by_shop(shop)) == 2


async def test_redelivery_and_reordering_change_nothing_more(
    storage: Any, sessions: dict[str, Session], shop: str
) -> None:
    name = shop.removesuffix(".myshopify.com")
    scopes = scopes_update(*NEW_SCOPES)
    assert (await apply(storage, "APP_SCOPES_UPDATE", name, scopes)).effect == "scope_updated"
    assert (await apply(storage, "app/scopes_update", shop, scopes)).effect == "unchanged"
    assert (await apply(storage, "APP_UNINSTALLED", name, uninstalled(shop))).effect == "deleted"
    # Delivered again, or late: an uninstall twice, a redaction, a scope update after the
    # uninstall. Nothing is left to do, and no session comes back.
    assert (await apply(storage, "app/uninstalled", shop, uninstalled(shop))).effect == "unchanged"
    assert (await apply(storage, "shop/redact", shop, shop_redact(shop))).effect == "unchanged"
    assert (await apply(storage, "app/scopes_update", shop, scopes)).effect == "unchanged"
    assert await storage.find_sessions_by_shop(shop) == []
    assert await storage.load_session(offline_session_id(shop)) is None


@pytest.mark.parametrize(
    ("topic", "shop_given", "payload", "error", "message"),
    [
        ("", None, {}, InvalidWebhookError, "topic"),
        ("app/uninstalled", None, b"\xff\xfe", InvalidWebhookError, "UTF-8"),
        ("app/uninstalled", None, "{not json", InvalidWebhookError, "not JSON"),
        ("app/uninstalled", None, "[1, 2]", InvalidWebhookError, "JSON object"),
        ("app/uninstalled", None, 42, InvalidWebhookError, "JSON object"),
        (
            "app/uninstalled",
            None,
            {"myshopify_domain": "another-shop.myshopify.com"},
            InvalidWebhookError,
            "another-shop",
        ),
        ("shop/redact", None, {"shop_domain": 7}, InvalidWebhookError, "shop_domain"),
        ("app/scopes_update", None, {"previous": []}, InvalidWebhookError, "current"),
        ("app/scopes_update", None, {"current": "a,b"}, InvalidWebhookError, "current"),
        ("app/scopes_update", None, {"current": ["a,b"]}, InvalidWebhookError, "current"),
        ("app/scopes_update", None, {"current": [""]}, InvalidWebhookError, "current"),
        ("app/uninstalled", "", {}, InvalidShopError, "shop"),
        ("app/uninstalled", "not a shop", {}, InvalidShopError, "shop"),
        ("app/uninstalled", "https://x.myshopify.com", {}, InvalidShopError, "shop"),
    ],
)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_a_malformed_webhook_is_refused_before_the_storage_is_touched(
    tmp_path: Any,
    shop: str,
    topic: str,
    shop_given: str | None,
    payload: Any,
    error: type[Exception],
    message: str,
    is_async: bool,
) -> None:
    """The table does not exist: touching it would raise MissingSessionTableError."""
    from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage

    url = f"sqlite+aiosqlite:///{tmp_path}/none.db" if is_async else f"sqlite:///{tmp_path}/none.db"
    kind = AsyncSQLAlchemySessionStorage if is_async else SQLAlchemySessionStorage
    storage = kind(url, table="missing")
    try:
        with pytest.raises(error, match=message):
            await apply(
                storage if is_async else Awaited(storage),
                topic,
                shop if shop_given is None else shop_given,
                payload,
            )
    finally:
        closed = storage.close()
        if closed is not None:
            await closed


async def test_a_storage_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="apply_webhook_async"):
        apply_webhook(
            AsyncMemorySessionStorage(),  # type: ignore[arg-type]
            topic="app/uninstalled",
            shop="a-shop",
            payload={},
        )
    with pytest.raises(TypeError, match="apply_webhook, receive_webhook"):
        await apply_webhook_async(
            MemorySessionStorage(),  # type: ignore[arg-type]
            topic="app/uninstalled",
            shop="a-shop",
            payload={},
        )
    with pytest.raises(TypeError, match="lock_session"):
        apply_webhook(object(), topic="app/uninstalled", shop="a-shop", payload={})  # type: ignore[arg-type]


# --- through shopifyapp's verification ----------------------------------------------------


async def test_a_signed_webhook_is_verified_then_applied(
    storage: Any, sessions: dict[str, Session], shop: str, standin: StandIn
) -> None:
    request = webhook_input(standin, "app/uninstalled", shop, uninstalled(shop), webhook_id="w-1")
    received = await receive(storage, standin, request)
    assert received.ok and received.response.status == 200
    assert (received.topic, received.shop, received.webhook_id) == ("app/uninstalled", shop, "w-1")
    assert received.payload == uninstalled(shop)
    assert received.result is not None and received.result.effect == "deleted"
    assert await storage.find_sessions_by_shop(shop) == []


async def test_an_unsigned_or_forged_webhook_changes_nothing(
    storage: Any, sessions: dict[str, Session], shop: str, standin: StandIn
) -> None:
    forged = webhook_input(standin, "app/uninstalled", shop, uninstalled(shop), forged=True)
    unsigned = webhook_input(standin, "app/uninstalled", shop, uninstalled(shop))
    del unsigned["headers"]["X-Shopify-Hmac-Sha256"]
    tampered = webhook_input(standin, "app/uninstalled", shop, uninstalled(shop))
    tampered["body"] = tampered["body"].replace("A shop", "B shop")
    for request, status in ((forged, 401), (unsigned, 400), (tampered, 401)):
        received = await receive(storage, standin, request)
        assert (received.ok, received.response.status, received.shop) == (False, status, "")
    malformed = webhook_input(standin, "app/scopes_update", shop, {"current": "nope"})
    received = await receive(storage, standin, malformed)
    assert (received.ok, received.response.status) == (False, 400)
    assert len(await storage.find_sessions_by_shop(shop)) == 2


async def test_a_webhook_that_waited_too_long_is_answered_503_for_shopify_to_retry(
    storage: Any, sessions: dict[str, Session], shop: str, standin: StandIn
) -> None:
    request = webhook_input(standin, "app/scopes_update", shop, scopes_update(*NEW_SCOPES))
    async with locked(storage, sessions["offline"].id):  # a refresh in flight, for too long
        received = await receive(storage, standin, request, lock_timeout=0.2)
    assert (received.ok, received.response.status) == (False, 503)
    assert received.response.headers["Retry-After"]
    assert await storage.load_session(sessions["offline"].id) == sessions["offline"]
    assert (await receive(storage, standin, request)).ok  # Shopify delivers it again: applied


# --- races with a refresh in flight -------------------------------------------------------


async def test_an_uninstall_during_a_refresh_never_brings_the_session_back(
    tokens_for: Any, storage: Any, standin: StandIn, shop: str, caplog: Any
) -> None:
    """The refresh is at Shopify (the stand-in holds its answer) when the signed
    app/uninstalled arrives; it lands after the delete, and finds the row gone."""
    standin.reset(latency=1.5)
    old = seeded(standin, shop, access_expires_in=-10)
    await storage.store_session(old)
    await storage.store_session(online_session(shop))
    request = webhook_input(standin, "app/uninstalled", shop, uninstalled(shop))

    with caplog.at_level(logging.WARNING, logger="shopify_sessions"):
        async with in_flight(tokens_for(), shop, standin) as refresh:
            received = await receive(storage, standin, request)
            assert received.ok and received.result is not None
            assert sorted(received.result.session_ids) == sorted([old.id, f"{shop}_7"])
            assert not refresh.done(), "the refresh landed before the uninstall (a slow machine?)"
        assert refresh.result() is None

    assert await storage.load_session(old.id) is None
    assert await storage.find_sessions_by_shop(shop) == []
    assert counts(standin, shop)["refreshes"] == 1  # Shopify did answer a pair: discarded
    [record] = [r for r in caplog.records if getattr(r, "action", None) == "refresh"]
    assert record.outcome == "discarded: the stored pair changed meanwhile"


async def test_without_the_fence_the_uninstalled_session_comes_back(
    standin: StandIn, shop: str
) -> None:
    """The test above fails when the renewed pair is stored with a plain store_session
    instead of replace_session: the session is back, with tokens Shopify revoked."""
    from shopify_sessions.tokens import AsyncOfflineTokens

    standin.reset(latency=1.5)
    storage = _Unfenced(AsyncMemorySessionStorage())
    old = seeded(standin, shop, access_expires_in=-10)
    await storage.store_session(old)
    async with async_http_client(standin) as http:
        tokens = AsyncOfflineTokens(
            storage,  # type: ignore[arg-type]
            client_id=standin.client_id,
            client_secret=standin.client_secret,
            http_client=http,
        )
        async with in_flight(tokens, shop, standin) as refresh:
            request = webhook_input(standin, "app/uninstalled", shop, uninstalled(shop))
            assert (await receive(storage, standin, request)).ok
            assert not refresh.done(), "the refresh landed before the uninstall (a slow machine?)"
        resurrected = refresh.result()
    assert resurrected is not None and await storage.load_session(old.id) == resurrected


async def test_a_scope_update_during_a_refresh_keeps_the_new_pair_and_the_new_scope(
    tokens_for: Any, storage: Any, standin: StandIn, shop: str
) -> None:
    """The refresh stores the scope Shopify answered it; the scope update waits for it
    (the session's lock), then writes over the renewed pair, which it keeps."""
    standin.reset(latency=1.5)
    old = seeded(standin, shop, access_expires_in=-10)
    await storage.store_session(old)
    payload = scopes_update(*NEW_SCOPES)

    async with in_flight(tokens_for(), shop, standin) as refresh:
        assert not refresh.done()
        update = await _start(apply, storage, "app/scopes_update", shop, payload)
        renewed = await refresh
        result = await update

    assert result.effect == "scope_updated"
    assert renewed is not None and renewed.refresh_token != old.refresh_token
    stored = await storage.load_session(old.id)
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == (
        renewed.access_token,
        renewed.refresh_token,
    )
    assert stored.scope == ",".join(NEW_SCOPES)
    assert counts(standin, shop).get("reuses", 0) == 0


async def test_without_the_lock_the_scope_update_is_lost_to_the_refresh(
    standin: StandIn, shop: str
) -> None:
    """The test above fails when the scope update does not wait for the refresh: the
    refresh's compare-and-set sees its pair still stored and writes the scope Shopify
    answered it over the new one."""
    from shopify_sessions.tokens import AsyncOfflineTokens

    standin.reset(latency=1.5)
    storage = AsyncMemorySessionStorage()
    old = seeded(standin, shop, access_expires_in=-10)
    await storage.store_session(old)
    async with async_http_client(standin) as http:
        tokens = AsyncOfflineTokens(
            storage,
            client_id=standin.client_id,
            client_secret=standin.client_secret,
            http_client=http,
        )
        async with in_flight(tokens, shop, standin) as refresh:
            result = await apply_webhook_async(
                _Unlocked(storage),  # type: ignore[arg-type]
                topic="app/scopes_update",
                shop=shop,
                payload=scopes_update(*NEW_SCOPES),
            )
            assert result.effect == "scope_updated"
            assert not refresh.done(), "the refresh landed before the update (a slow machine?)"
        await refresh
    stored = await storage.load_session(old.id)
    assert stored is not None and stored.scope != ",".join(NEW_SCOPES)


async def test_a_scope_update_never_overwrites_a_pair_stored_outside_the_lock(
    storage: Any, standin: StandIn, shop: str
) -> None:
    """A Node app (which takes no lock of ours) stores a renewed pair between the scope
    update's read and its write: the compare-and-set sees it, reads again and keeps it."""
    standin.reset()
    old = seeded(standin, shop)
    await storage.store_session(old)
    node = seeded(standin, shop)  # the pair the Node app stores
    if isinstance(storage, Awaited):
        target = storage.target
        interleaved: Any = Awaited(_SyncInterleaved(target, lambda: target.store_session(node)))
    else:
        interleaved = _AsyncInterleaved(storage, lambda: storage.store_session(node))
    result = await apply(interleaved, "app/scopes_update", shop, scopes_update(*NEW_SCOPES))
    assert result.effect == "scope_updated"
    stored = await storage.load_session(old.id)
    assert stored is not None and stored.scope == ",".join(NEW_SCOPES)
    assert (stored.access_token, stored.refresh_token) == (node.access_token, node.refresh_token)


async def test_without_the_compare_and_set_the_pair_stored_outside_the_lock_is_lost(
    standin: StandIn, shop: str
) -> None:
    """The test above fails when the scope is written with a plain store: the Node app's
    pair is overwritten with the one it replaced."""
    standin.reset()
    storage = AsyncMemorySessionStorage()
    old = seeded(standin, shop)
    await storage.store_session(old)
    node = seeded(standin, shop)
    unfenced = _Unfenced(_AsyncInterleaved(storage, lambda: storage.store_session(node)))
    await apply_webhook_async(
        unfenced,  # type: ignore[arg-type]
        topic="app/scopes_update",
        shop=shop,
        payload=scopes_update(*NEW_SCOPES),
    )
    stored = await storage.load_session(old.id)
    assert stored is not None and stored.access_token == old.access_token  # the pair is lost


# --- helpers ------------------------------------------------------------------------------


async def _start(function: Any, *args: Any) -> asyncio.Task[Any]:
    """``function(*args)`` started as a task, given the loop a turn to begin."""
    task = asyncio.ensure_future(function(*args))
    await asyncio.sleep(0.05)
    return task


class _Unfenced(AsyncSessionStorageWrapper):
    """replace_session as a plain store: what the lifecycle did before the fence."""

    async def replace_session(self, session: Session, *, previous: Session) -> bool:
        return bool(await self.wrapped.store_session(session))


class _Unlocked(AsyncSessionStorageWrapper):
    """lock_session that takes no lock."""

    @asynccontextmanager
    async def lock_session(self, id: str, **options: Any) -> AsyncIterator[None]:
        yield


class _AsyncInterleaved(AsyncSessionStorageWrapper):
    """Runs ``meanwhile`` once, right after the first read of a session: another writer's
    change between the scope update's read and its write."""

    def __init__(self, target: Any, meanwhile: Any) -> None:
        super().__init__(target)
        self._meanwhile, self._reads = meanwhile, 0

    async def load_session(self, id: str) -> Session | None:
        session: Session | None = await self.wrapped.load_session(id)
        self._reads += 1
        if self._reads == 1:
            await self._meanwhile()
        return session


class _SyncInterleaved(SessionStorageWrapper):
    """The same over a sync storage."""

    def __init__(self, target: Any, meanwhile: Any) -> None:
        super().__init__(target)
        self._meanwhile, self._reads = meanwhile, 0

    def load_session(self, id: str) -> Session | None:
        session: Session | None = self.wrapped.load_session(id)
        self._reads += 1
        if self._reads == 1:
            self._meanwhile()
        return session
