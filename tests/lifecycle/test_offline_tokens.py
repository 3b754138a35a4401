"""OfflineTokens on every backend and driver, sync and async, against FakeShopify (strict)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from races import locked
from shopify_sessions import (
    AssociatedUser,
    InvalidShopError,
    LockTimeoutError,
    OnlineAccessInfo,
    ReauthorizationRequiredError,
    Session,
    TokenRefreshError,
    offline_session_id,
)
from shopify_sessions._time import utc_now
from shopify_sessions.testing import Counters, FakeShopify
from shopify_sessions.tokens import OfflineTokens


def tokens_of(*sessions: Session | None) -> set[str]:
    return {t for s in sessions if s for t in (s.access_token, s.refresh_token) if t}


async def test_get_without_a_session_is_none(tokens_for: Any, shop: str) -> None:
    assert await tokens_for().get(shop) is None


async def test_get_returns_a_fresh_session_without_calling_shopify(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    session = fake_shopify.seed_offline(shop)
    await storage.store_session(session)
    assert await tokens_for().get(shop) == session
    assert await tokens_for().get(shop.removesuffix(".myshopify.com")) == session
    assert fake_shopify.counters(shop).refresh_requests == 0


async def test_get_refreshes_within_skew_stores_the_pair_and_the_token_works(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str, caplog: Any
) -> None:
    # 120 s left: shopifyapp alone refuses to refresh a token with over 60 s left.
    old = fake_shopify.seed_offline(shop, expires_in=120)
    await storage.store_session(old)
    tokens = tokens_for(skew=timedelta(minutes=5))
    with caplog.at_level(logging.INFO, logger="shopify_sessions"):
        renewed = await tokens.get(shop)
    assert renewed is not None
    assert renewed.access_token != old.access_token
    assert renewed.refresh_token != old.refresh_token
    assert renewed.expires is not None and renewed.expires > utc_now() + timedelta(minutes=59)
    assert renewed.refresh_token_expires is not None
    assert renewed.refresh_token_expires > utc_now() + timedelta(days=89)
    assert (renewed.id, renewed.shop, renewed.is_online) == (old.id, shop, False)
    assert await storage.load_session(old.id) == renewed
    assert fake_shopify.accepts(shop, renewed.access_token)
    assert await tokens.get(shop) == renewed  # fresh now: no second refresh
    assert fake_shopify.counters(shop).refreshes == 1
    assert fake_shopify.counters(shop).reuses == 0
    [record] = [r for r in caplog.records if getattr(r, "action", None) == "refresh"]
    assert (record.levelno, record.shop, record.outcome) == (logging.INFO, shop, "done")
    assert record.lock_wait_ms >= 0 and record.duration_ms >= record.lock_wait_ms
    for token in tokens_of(old, renewed):
        assert token not in record.getMessage() and token not in str(record.__dict__)


async def test_an_expired_token_is_refreshed(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=-10)
    await storage.store_session(old)
    assert not fake_shopify.accepts(shop, old.access_token)
    renewed = await tokens_for(skew=timedelta(0)).get(shop)
    assert renewed is not None
    assert fake_shopify.accepts(shop, renewed.access_token)


async def test_a_legacy_session_is_returned_as_it_is(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    legacy = fake_shopify.seed_offline(shop, legacy=True)
    await storage.store_session(legacy)
    assert await tokens_for().get(shop) == legacy
    assert fake_shopify.counters(shop) == Counters()


async def test_migrate_legacy_exchanges_once_and_retires_the_legacy_token(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    legacy = fake_shopify.seed_offline(shop, legacy=True)
    await storage.store_session(legacy)
    tokens = tokens_for()
    migrated = await tokens.migrate_legacy(shop)
    assert migrated is not None
    assert migrated.refresh_token and migrated.expires and migrated.refresh_token_expires
    assert migrated.expires > utc_now() + timedelta(minutes=59)
    assert await storage.load_session(legacy.id) == migrated
    assert not fake_shopify.accepts(shop, legacy.access_token)
    assert fake_shopify.accepts(shop, migrated.access_token)
    assert await tokens.migrate_legacy(shop) == migrated  # left alone now
    assert await tokens.get(shop) == migrated
    assert fake_shopify.counters(shop).exchange_requests == 1


async def test_migrate_legacy_leaves_other_sessions_alone(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    assert await tokens_for().migrate_legacy(shop) is None
    expiring = fake_shopify.seed_offline(shop)
    await storage.store_session(expiring)
    assert await tokens_for().migrate_legacy(shop) == expiring
    assert fake_shopify.counters(shop).exchange_requests == 0


async def test_invalid_grant_requires_reauthorization_and_keeps_the_row(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str, caplog: Any
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    await storage.store_session(old)
    fake_shopify.fail(shop, "invalid_grant")
    with (
        caplog.at_level(logging.DEBUG, logger="shopify_sessions"),
        pytest.raises(ReauthorizationRequiredError) as raised,
    ):
        await tokens_for().get(shop)
    assert (raised.value.shop, raised.value.code) == (shop, "invalid_grant")
    assert await storage.load_session(old.id) == old
    assert any(r.levelno == logging.WARNING and r.shop == shop for r in caplog.records)
    for token in tokens_of(old):
        assert token not in str(raised.value)
        assert all(token not in r.getMessage() for r in caplog.records)


async def test_delete_on_reauthorization_forgets_the_session(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    await storage.store_session(old)
    fake_shopify.fail(shop, "invalid_grant")
    tokens = tokens_for(delete_on_reauthorization=True)
    with pytest.raises(ReauthorizationRequiredError):
        await tokens.get(shop)
    assert await storage.load_session(old.id) is None
    assert await tokens.get(shop) is None


async def test_an_expired_refresh_token_requires_reauthorization_without_a_call(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=-1, refresh_token_expires_in=-1)
    await storage.store_session(old)
    with pytest.raises(ReauthorizationRequiredError) as raised:
        await tokens_for().get(shop)
    assert raised.value.code == "refresh_token_expired"
    assert fake_shopify.counters(shop).refresh_requests == 0


async def test_shopify_down_is_a_refresh_error_and_the_next_call_recovers(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    await storage.store_session(old)
    fake_shopify.fail(shop, 503, 503, 503)  # shopifyapp tries three times
    tokens = tokens_for()
    with pytest.raises(TokenRefreshError) as raised:
        await tokens.get(shop)
    assert (raised.value.shop, raised.value.code) == (shop, "server_error")
    assert not isinstance(raised.value, ReauthorizationRequiredError)
    assert await storage.load_session(old.id) == old
    renewed = await tokens.get(shop)
    assert renewed is not None and renewed.access_token != old.access_token
    assert fake_shopify.counters(shop).failures == 3


async def test_a_failed_early_refresh_serves_the_token_that_still_works(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str, caplog: Any
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=120)  # within the 5-minute skew
    await storage.store_session(old)
    tokens = tokens_for(lock_timeout=0.2)
    fake_shopify.fail(shop, 503, 503, 503)
    with caplog.at_level(logging.WARNING, logger="shopify_sessions"):
        assert await tokens.get(shop) == old
    assert any("serving the current token" in r.getMessage() for r in caplog.records)
    async with locked(storage, old.id):  # another worker is refreshing it right now
        assert await tokens.get(shop) == old
    renewed = await tokens.get(shop)  # Shopify is back: refreshed as usual
    assert renewed is not None and renewed.access_token != old.access_token
    assert await storage.load_session(old.id) == renewed


async def test_an_answer_without_expiry_is_never_stored_as_never_expiring(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    """shopify-app-js #3400: such a session was never refreshed again."""
    fake_shopify.reset(omit_expires=True)
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    await storage.store_session(old)
    tokens = tokens_for()
    first = await tokens.get(shop)
    assert first is not None and first.expires is not None
    assert first.expires <= utc_now()
    stored = await storage.load_session(old.id)
    assert stored is not None and stored.expires is not None
    second = await tokens.get(shop)  # refreshed again, not stuck
    assert second is not None and second.access_token != first.access_token
    assert fake_shopify.counters(shop).refreshes == 2


async def test_a_row_bricked_by_3400_is_repaired(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    bricked = fake_shopify.seed_offline(shop)
    bricked.expires = None  # as the Node library stores an answer without expires_in
    await storage.store_session(bricked)
    renewed = await tokens_for().get(shop)
    assert renewed is not None and renewed.expires is not None
    assert renewed.refresh_token != bricked.refresh_token


async def test_the_lock_wait_is_bounded(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    await storage.store_session(old)
    async with locked(storage, old.id):
        with pytest.raises(LockTimeoutError) as raised:
            await tokens_for(lock_timeout=0.2).get(shop)
    assert raised.value.id == old.id
    assert fake_shopify.counters(shop).refresh_requests == 0
    assert await tokens_for().get(shop) is not None  # free again


async def test_keep_warm_refreshes_what_is_due_and_reports_the_rest(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    name = shop.removesuffix(".myshopify.com")
    due, fresh, revoked, down = (f"{name}-{n}.myshopify.com" for n in range(4))
    sessions = {
        due: fake_shopify.seed_offline(due, refresh_token_expires_in=3 * 86400),
        fresh: fake_shopify.seed_offline(fresh),
        revoked: fake_shopify.seed_offline(revoked, refresh_token_expires_in=86400),
        down: fake_shopify.seed_offline(down, refresh_token_expires_in=86400),
    }
    online = Session(
        f"{due}_1",
        due,
        "",
        True,
        access_token="shpua_x",
        refresh_token="shprt_online",
        refresh_token_expires=utc_now() + timedelta(days=1),
        online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=1)),
    )
    for session in [*sessions.values(), online]:
        await storage.store_session(session)
    fake_shopify.fail(revoked, "invalid_grant")
    fake_shopify.fail(down, 503, 503, 503)

    report = await tokens_for().refresh_expiring(within=timedelta(days=7), batch_size=1)

    assert report.refreshed == [due]
    assert report.reauthorization_required == [revoked]
    assert list(report.failed) == [down]
    assert isinstance(report.failed[down], TokenRefreshError)
    assert not report.ok
    renewed = await storage.load_session(offline_session_id(due))
    assert renewed is not None and renewed.refresh_token != sessions[due].refresh_token
    assert renewed.refresh_token_expires is not None
    assert renewed.refresh_token_expires > utc_now() + timedelta(days=89)
    for untouched in (fresh, revoked, down):
        assert await storage.load_session(offline_session_id(untouched)) == sessions[untouched]
    assert await storage.load_session(online.id) == online
    assert fake_shopify.counters(fresh) == Counters()
    second = await tokens_for().refresh_expiring(within=timedelta(days=7))
    # The faults were one-offs: both refresh on the next run (in no particular order:
    # several shops at a time).
    assert sorted(second.refreshed) == sorted([revoked, down]) and second.ok


async def test_bad_input_is_refused_before_anything_runs(tokens_for: Any) -> None:
    with pytest.raises(InvalidShopError):
        await tokens_for().get("not a shop")
    with pytest.raises(ValueError, match="client_id"):
        tokens_for(client_id="")
    with pytest.raises(ValueError, match="skew"):
        tokens_for(skew=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="timeout"):
        tokens_for(lock_timeout=0)
    with pytest.raises(ValueError, match="within"):
        await tokens_for().refresh_expiring(within=timedelta(days=-1))
    with pytest.raises(TypeError, match="lock_session"):
        OfflineTokens(object(), client_id="a", client_secret="b")  # type: ignore[arg-type]
    assert "secret" not in repr(tokens_for())


async def _get_while(tokens: Any, shop: str, fake: FakeShopify, meanwhile: Any) -> Any:
    """``tokens.get(shop)``, with ``meanwhile()`` awaited once Shopify has the refresh
    request and is holding its answer (the fake's latency)."""
    import asyncio
    import time

    from conftest import Awaited

    if isinstance(tokens, Awaited):
        pending = asyncio.ensure_future(asyncio.to_thread(tokens.target.get, shop))
    else:
        pending = asyncio.ensure_future(tokens.get(shop))
    deadline = time.monotonic() + 30
    while not fake.counters(shop).token_requests:
        assert time.monotonic() < deadline and not pending.done()
        await asyncio.sleep(0.01)
    await meanwhile()
    assert not pending.done()  # the answer is still held: the change came mid-refresh
    return await pending


@pytest.mark.parametrize("change", ["deleted", "replaced"])
async def test_a_pair_renewed_after_the_row_changed_is_discarded(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str, change: str, caplog: Any
) -> None:
    """The fence: a renewal stores its pair only over the pair it renewed, so an uninstall
    during a refresh never brings the session back, and a newer pair is never overwritten."""
    fake_shopify.reset(latency=1.0)
    old = fake_shopify.seed_offline(shop, expires_in=-10)
    await storage.store_session(old)
    other = fake_shopify.seed_offline(shop)  # e.g. a Node app's own refresh

    async def meanwhile() -> None:
        if change == "deleted":
            await storage.delete_session(old.id)
        else:
            await storage.store_session(other)

    with caplog.at_level(logging.WARNING, logger="shopify_sessions"):
        got = await _get_while(tokens_for(), shop, fake_shopify, meanwhile)
    expected = None if change == "deleted" else other
    assert got == expected
    assert await storage.load_session(old.id) == expected
    assert fake_shopify.counters(shop).refreshes == 1
    [record] = [r for r in caplog.records if getattr(r, "action", None) == "refresh"]
    assert record.outcome == "discarded: the stored pair changed meanwhile"


@pytest.mark.parametrize(
    ("tokens_class", "storage_class", "message"),
    [
        (
            "OfflineTokens",
            "AsyncMemorySessionStorage",
            "OfflineTokens needs a synchronous storage, and AsyncMemorySessionStorage is an "
            "asyncio one: use AsyncOfflineTokens with it, or MemorySessionStorage here",
        ),
        (
            "AsyncOfflineTokens",
            "MemorySessionStorage",
            "AsyncOfflineTokens needs an asyncio storage, and MemorySessionStorage is a "
            "synchronous one: use OfflineTokens with it, or AsyncMemorySessionStorage here",
        ),
        (
            "OfflineTokens",
            "AsyncSQLAlchemySessionStorage",
            "use AsyncOfflineTokens with it, or SQLAlchemySessionStorage here",
        ),
        (
            "AsyncOfflineTokens",
            "SQLAlchemySessionStorage",
            "use OfflineTokens with it, or AsyncSQLAlchemySessionStorage here",
        ),
    ],
)
async def test_a_storage_of_the_other_kind_is_refused_at_construction(
    tokens_class: str, storage_class: str, message: str
) -> None:
    """The mix-up used to pass, and get() then failed with "'coroutine' object has no
    attribute 'expires'" (or blocked the event loop)."""
    import shopify_sessions
    import shopify_sessions.sqlalchemy as sql
    import shopify_sessions.tokens as lifecycle

    if "SQLAlchemy" in storage_class:
        url = "sqlite+aiosqlite://" if storage_class.startswith("Async") else "sqlite://"
        storage = getattr(sql, storage_class)(url)
    else:
        storage = getattr(shopify_sessions, storage_class)()
    with pytest.raises(TypeError) as raised:
        getattr(lifecycle, tokens_class)(storage, client_id="id", client_secret="secret")
    assert message in str(raised.value)
    closed = storage.close() if hasattr(storage, "close") else None
    if closed is not None:
        await closed
