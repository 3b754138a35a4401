"""An app's own storage wrapper (logging, metering, retries around some calls).

Since Python 3.12, ``isinstance`` against a ``runtime_checkable`` protocol does not see
what ``__getattr__`` provides, so a wrapper that forwards through it is no
``LockingSessionStorage`` there. The package checks storages that way on every Python, so
such a wrapper is refused alike on 3.10 and 3.13, with the way to write one; a subclass of
``SessionStorageWrapper`` / ``AsyncSessionStorageWrapper`` is accepted everywhere, and its
overrides run. These tests run on every supported Python (the nox sessions).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import pytest

from shopify_sessions import (
    AsyncLockingSessionStorage,
    AsyncMemorySessionStorage,
    AsyncSessionStorageWrapper,
    LockingSessionStorage,
    MemorySessionStorage,
    Session,
    SessionStorageWrapper,
)
from shopify_sessions._time import utc_now
from shopify_sessions._wrappers import protocol_members
from shopify_sessions.webhooks import apply_webhook, apply_webhook_async

SHOP = "wrapped-shop.myshopify.com"


class GetattrWrapper:
    """What an app writes first: forward everything through ``__getattr__``."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


class CountingWrapper(SessionStorageWrapper):
    """Counts the calls it sees; one override, the rest forwarded."""

    def __init__(self, wrapped: LockingSessionStorage) -> None:
        super().__init__(wrapped)
        self.calls: list[str] = []

    def load_session(self, id: str) -> Session | None:
        self.calls.append("load_session")
        return super().load_session(id)

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        self.calls.append("find_sessions_by_shop")
        return super().find_sessions_by_shop(shop)

    def lock_session(self, id: str, *, timeout: float = 15.0) -> Any:
        self.calls.append("lock_session")
        return super().lock_session(id, timeout=timeout)


class AsyncCountingWrapper(AsyncSessionStorageWrapper):
    def __init__(self, wrapped: AsyncLockingSessionStorage) -> None:
        super().__init__(wrapped)
        self.calls: list[str] = []

    async def load_session(self, id: str) -> Session | None:
        self.calls.append("load_session")
        return await super().load_session(id)

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        self.calls.append("find_sessions_by_shop")
        return await super().find_sessions_by_shop(shop)

    def lock_session(self, id: str, *, timeout: float = 15.0) -> Any:
        self.calls.append("lock_session")
        return super().lock_session(id, timeout=timeout)


def fresh_session() -> Session:
    return Session.offline(
        SHOP,
        access_token="shpat_wrapped",
        scope="read_products",
        expires=utc_now() + timedelta(hours=1),
        refresh_token="shprt_wrapped",
        refresh_token_expires=utc_now() + timedelta(days=90),
    )


# --- a __getattr__ wrapper: refused on every Python, saying how to write one -------------


def test_a_getattr_wrapper_is_refused_by_the_lifecycle_with_the_way_to_write_one() -> None:
    from shopify_sessions.tokens import AsyncOfflineTokens, OfflineTokens

    with pytest.raises(TypeError, match=r"only through __getattr__.*SessionStorageWrapper"):
        OfflineTokens(GetattrWrapper(MemorySessionStorage()), client_id="a", client_secret="b")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"only through __getattr__.*AsyncSessionStorageWrapper"):
        AsyncOfflineTokens(
            GetattrWrapper(AsyncMemorySessionStorage()),  # type: ignore[arg-type]
            client_id="a",
            client_secret="b",
        )


async def test_a_getattr_wrapper_is_refused_by_the_webhooks() -> None:
    with pytest.raises(TypeError, match=r"only through __getattr__.*SessionStorageWrapper"):
        apply_webhook(
            GetattrWrapper(MemorySessionStorage()),  # type: ignore[arg-type]
            topic="app/uninstalled",
            shop=SHOP,
            payload={},
        )
    with pytest.raises(TypeError, match=r"only through __getattr__.*AsyncSessionStorageWrapper"):
        await apply_webhook_async(
            GetattrWrapper(AsyncMemorySessionStorage()),  # type: ignore[arg-type]
            topic="app/uninstalled",
            shop=SHOP,
            payload={},
        )


async def test_a_getattr_wrapper_is_refused_by_the_framework_integrations() -> None:
    from fastapi import FastAPI
    from flask import Flask

    from shopify_sessions.fastapi import ShopifySessions as FastAPISessions
    from shopify_sessions.flask import ShopifySessions as FlaskSessions

    with pytest.raises(TypeError, match=r"only through __getattr__.*SessionStorageWrapper"):
        FlaskSessions(
            Flask("wrapped"),
            storage=lambda: GetattrWrapper(MemorySessionStorage()),  # type: ignore[arg-type, return-value]
            client_id="a",
            client_secret="b",
        )
    shopify = FastAPISessions(
        lambda: GetattrWrapper(AsyncMemorySessionStorage()),  # type: ignore[arg-type, return-value]
        client_id="a",
        client_secret="b",
    )
    with pytest.raises(TypeError, match=r"only through __getattr__.*AsyncSessionStorageWrapper"):
        async with shopify.lifespan(FastAPI(exception_handlers=shopify.exception_handlers)):
            pass


def test_the_refusal_is_the_same_on_every_python() -> None:
    """Before 3.12 ``isinstance`` accepts the ``__getattr__`` wrapper, since 3.12 it does
    not; the package's own check refuses it on both, so an app does not break on upgrade."""
    wrapper = GetattrWrapper(MemorySessionStorage())
    accepted_by_isinstance = isinstance(wrapper, LockingSessionStorage)
    assert accepted_by_isinstance is (sys.version_info < (3, 12))
    with pytest.raises(TypeError, match="__getattr__"):
        apply_webhook(wrapper, topic="app/uninstalled", shop=SHOP, payload={})  # type: ignore[arg-type]


def test_an_object_without_the_methods_is_told_which_it_lacks() -> None:
    class LoadOnly:
        def load_session(self, id: str) -> None:
            return None

    with pytest.raises(TypeError, match=r"it has no .*lock_session.*replace_session"):
        apply_webhook(LoadOnly(), topic="app/uninstalled", shop=SHOP, payload={})  # type: ignore[arg-type]


# --- SessionStorageWrapper: accepted everywhere, and its overrides run --------------------


def test_a_wrapper_is_a_locking_storage_and_forwards_what_it_does_not_define() -> None:
    storage = MemorySessionStorage()
    wrapper = CountingWrapper(storage)
    assert isinstance(wrapper, LockingSessionStorage)
    session = fresh_session()
    assert wrapper.store_session(session) is True
    assert storage.load_session(session.id) == session
    assert wrapper.load_session(session.id) == session
    assert wrapper.replace_session(session, previous=session) is True
    assert list(wrapper.sessions_due_for_refresh(utc_now() + timedelta(days=100))) == [[session]]
    with wrapper.lock_session(session.id, timeout=1):
        pass
    # Not in the protocol: read from the wrapped storage.
    assert wrapper.delete_expired_sessions() == 0
    assert (
        wrapper.delete_sessions([session.id]) is True and storage.load_session(session.id) is None
    )
    assert repr(wrapper) == f"CountingWrapper({storage!r})"


async def test_an_async_wrapper_is_an_async_locking_storage() -> None:
    storage = AsyncMemorySessionStorage()
    wrapper = AsyncCountingWrapper(storage)
    assert isinstance(wrapper, AsyncLockingSessionStorage)
    session = fresh_session()
    assert await wrapper.store_session(session) is True
    assert await wrapper.load_session(session.id) == session
    assert await wrapper.replace_session(session, previous=session) is True
    batches = [b async for b in wrapper.sessions_due_for_refresh(utc_now() + timedelta(days=100))]
    assert batches == [[session]]
    async with wrapper.lock_session(session.id, timeout=1):
        pass
    assert await wrapper.delete_expired_sessions() == 0
    assert await wrapper.delete_session(session.id) is True
    assert await storage.load_session(session.id) is None


def test_the_lifecycle_and_the_webhooks_call_a_wrappers_overrides() -> None:
    from shopify_sessions.tokens import OfflineTokens

    wrapper = CountingWrapper(MemorySessionStorage())
    session = fresh_session()
    wrapper.store_session(session)
    tokens = OfflineTokens(wrapper, client_id="a", client_secret="b")
    assert tokens.get(SHOP) == session  # fresh: one load, no call to Shopify
    assert wrapper.calls == ["load_session"]
    result = apply_webhook(
        wrapper, topic="app/scopes_update", shop=SHOP, payload={"current": ["write_orders"]}
    )
    assert result.effect == "scope_updated"
    assert "lock_session" in wrapper.calls
    apply_webhook(wrapper, topic="app/uninstalled", shop=SHOP, payload={})
    assert wrapper.calls[-1] == "find_sessions_by_shop"
    assert wrapper.load_session(session.id) is None


async def test_the_async_lifecycle_webhooks_and_fastapi_call_a_wrappers_overrides() -> None:
    from fastapi import FastAPI

    from shopify_sessions.fastapi import ShopifySessions
    from shopify_sessions.tokens import AsyncOfflineTokens

    wrapper = AsyncCountingWrapper(AsyncMemorySessionStorage())
    session = fresh_session()
    await wrapper.store_session(session)
    tokens = AsyncOfflineTokens(wrapper, client_id="a", client_secret="b")
    assert await tokens.get(SHOP) == session
    assert wrapper.calls == ["load_session"]
    await apply_webhook_async(wrapper, topic="app/uninstalled", shop=SHOP, payload={})
    assert wrapper.calls[-1] == "find_sessions_by_shop"

    shopify = ShopifySessions(lambda: wrapper, client_id="a", client_secret="b")
    async with shopify.lifespan(FastAPI(exception_handlers=shopify.exception_handlers)):
        assert shopify.storage is wrapper


def test_flask_takes_a_wrapper() -> None:
    from flask import Flask

    from shopify_sessions.flask import ShopifySessions

    wrapper = CountingWrapper(MemorySessionStorage())
    app = Flask("wrapped")
    shopify = ShopifySessions(app, storage=lambda: wrapper, client_id="a", client_secret="b")
    with app.app_context():
        assert shopify.storage is wrapper


def test_a_wrapper_refuses_a_storage_of_the_other_kind_or_without_locks() -> None:
    with pytest.raises(TypeError, match="wrap it with AsyncSessionStorageWrapper"):
        SessionStorageWrapper(AsyncMemorySessionStorage())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="wrap it with SessionStorageWrapper"):
        AsyncSessionStorageWrapper(MemorySessionStorage())  # type: ignore[arg-type]

    class Plain:  # a SessionStorage, without the locking methods
        def store_session(self, session: Session) -> bool:
            return True

        def load_session(self, id: str) -> Session | None:
            return None

        def delete_session(self, id: str) -> bool:
            return True

        def delete_sessions(self, ids: Any) -> bool:
            return True

        def find_sessions_by_shop(self, shop: str) -> list[Session]:
            return []

    with pytest.raises(TypeError, match="it has no lock_session, replace_session"):
        SessionStorageWrapper(Plain())  # type: ignore[arg-type]


def test_a_wrapper_of_a_wrapper_is_a_wrapper() -> None:
    inner = CountingWrapper(MemorySessionStorage())
    outer = CountingWrapper(inner)
    outer.load_session("absent")
    assert outer.calls == inner.calls == ["load_session"]


@pytest.mark.parametrize(
    ("wrapper", "protocol"),
    [
        (SessionStorageWrapper, LockingSessionStorage),
        (AsyncSessionStorageWrapper, AsyncLockingSessionStorage),
    ],
)
def test_the_wrappers_define_every_method_of_their_protocol(wrapper: type, protocol: type) -> None:
    """A method added to a protocol must be forwarded by its wrapper too, or wrappers would
    stop being storages."""
    members = protocol_members(protocol)
    assert "lock_session" in members and "store_session" in members
    assert [name for name in members if name not in vars(wrapper)] == []
