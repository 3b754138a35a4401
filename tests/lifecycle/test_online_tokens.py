"""The staff user's online session (``get_or_exchange_online``) on every backend and driver,
sync and async, against FakeShopify; and the session tokens the lifecycle refuses before
any exchange (``get_or_exchange`` and ``get_or_exchange_online``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from shopify_app import ShopifyApp

from conftest import Awaited
from shopify_requests import (
    ABSENT,
    async_http_client_to,
    http_client_to,
    signed_token,
    unreachable_url,
)
from shopify_sessions import (
    AssociatedUser,
    AsyncMemorySessionStorage,
    MemorySessionStorage,
    OnlineAccessInfo,
    TokenExchangeError,
    offline_session_id,
    online_session_id,
)
from shopify_sessions._time import utc_now
from shopify_sessions.testing import FakeShopify
from shopify_sessions.tokens import AsyncOfflineTokens, OfflineTokens


def verified(fake: FakeShopify, shop: str, *, user_id: int = 42, token: str = "") -> Any:
    """``shopifyapp``'s verification of a fetch of App Home with a session token."""
    result = _verify(fake, token or fake.session_token(shop, user_id=user_id))
    assert result.ok, result.log
    return result


def _verify(fake: FakeShopify, token: str) -> Any:
    app = ShopifyApp(fake.client_id, fake.client_secret)
    request: Any = {
        "method": "GET",
        "headers": {"Authorization": f"Bearer {token}"},
        "url": "https://app.example/api",
        "body": "",
    }
    return app.verify_app_home_req(request, app_home_patch_id_token_path="/auth/patch-id-token")


def staff(user_id: int) -> AssociatedUser:
    """The user FakeShopify answers for ``user_id``, field for field."""
    return AssociatedUser(
        id=user_id,
        first_name="Staff",
        last_name=f"Member {user_id}",
        email=f"staff-{user_id}@example.com",
        email_verified=True,
        account_owner=False,
        locale="en",
        collaborator=False,
    )


async def test_the_first_request_exchanges_and_stores_the_staff_users_online_session(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    before = utc_now()
    online = await tokens_for().get_or_exchange_online(verified(fake_shopify, shop))
    after = utc_now()
    assert (online.id, online.shop, online.is_online) == (online_session_id(shop, 42), shop, True)
    assert online.scope == "read_products,write_orders" and online.refresh_token is None
    assert fake_shopify.accepts(shop, online.access_token)
    # As Node's Session keeps it: Shopify's answer minus the token and the scope.
    assert online.online_access_info == OnlineAccessInfo(
        associated_user=staff(42), expires_in=86399, associated_user_scope="read_products"
    )
    lifetime = timedelta(seconds=86399)
    assert before + lifetime - timedelta(milliseconds=1) <= online.expires <= after + lifetime

    stored = await storage.load_session(online.id)
    assert stored == online  # expires_in and associated_user_scope are never stored
    assert stored.online_access_info.associated_user == staff(42)
    assert await storage.load_session(offline_session_id(shop)) is None  # not asked for
    assert fake_shopify.counters(shop).id_token_exchanges == 1


async def test_the_stored_session_is_used_until_it_expires_then_exchanged_again(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    tokens = tokens_for(skew=timedelta(minutes=5))
    first = await tokens.get_or_exchange_online(verified(fake_shopify, shop))
    again = await tokens.get_or_exchange_online(verified(fake_shopify, shop))
    assert again.access_token == first.access_token
    assert fake_shopify.counters(shop).id_token_exchanges == 1

    first.expires = utc_now() + timedelta(seconds=30)  # within skew: it cannot be refreshed
    await storage.store_session(first)
    renewed = await tokens.get_or_exchange_online(verified(fake_shopify, shop))
    assert renewed.access_token != first.access_token
    assert renewed.expires > utc_now() + timedelta(hours=23)
    assert await storage.load_session(first.id) == renewed
    assert fake_shopify.counters(shop).id_token_exchanges == 2


async def test_each_staff_user_has_a_session_of_their_own(
    tokens_for: Any, storage: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    tokens = tokens_for()
    seven = await tokens.get_or_exchange_online(verified(fake_shopify, shop, user_id=7))
    forty_two = await tokens.get_or_exchange_online(verified(fake_shopify, shop, user_id=42))
    offline = await tokens.get_or_exchange(verified(fake_shopify, shop, user_id=7))
    assert seven.online_access_info.associated_user == staff(7)
    assert seven.access_token != forty_two.access_token
    found = {s.id for s in await storage.find_sessions_by_shop(shop)}
    assert found == {online_session_id(shop, 7), online_session_id(shop, 42), offline.id}
    assert fake_shopify.counters(shop).id_token_exchanges == 3


async def test_concurrent_first_requests_of_a_user_make_one_exchange(
    tokens_for: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    """Four requests at once (threads for a sync storage, tasks for an asyncio one) while
    Shopify takes half a second: one exchange, under the session's lock; the others use
    the session it stored."""
    fake_shopify.reset(latency=0.5)
    tokens = tokens_for()
    request = verified(fake_shopify, shop)
    if isinstance(tokens, Awaited):
        calls = [asyncio.to_thread(tokens.target.get_or_exchange_online, request) for _ in range(4)]
    else:
        calls = [tokens.get_or_exchange_online(request) for _ in range(4)]
    sessions = await asyncio.gather(*calls)
    assert len({session.access_token for session in sessions}) == 1
    assert fake_shopify.counters(shop).id_token_exchanges == 1


# --- what is refused, and how: memory storages, sync and async ----------------------------


@pytest.fixture(params=["sync", "async"])
async def memory_tokens(
    request: pytest.FixtureRequest, fake_shopify: FakeShopify
) -> AsyncIterator[Callable[..., Any]]:
    """Makes OfflineTokens or AsyncOfflineTokens (awaitable methods) on a memory storage;
    ``http_client`` may be given (FakeShopify's by default)."""
    made: list[Any] = []

    def make(http_client: Any = None) -> Any:
        options = {"client_id": fake_shopify.client_id, "client_secret": fake_shopify.client_secret}
        if request.param == "sync":
            client = http_client or fake_shopify.http_client()
            made.append(client)
            return Awaited(OfflineTokens(MemorySessionStorage(), http_client=client, **options))
        client = http_client or fake_shopify.async_http_client()
        made.append(client)
        return AsyncOfflineTokens(AsyncMemorySessionStorage(), http_client=client, **options)

    yield make
    for client in made:
        closed = client.close() if hasattr(client, "close") else client.aclose()
        if closed is not None:
            await closed


def _hostile(shop: str) -> dict[str, dict[str, Any]]:
    now = int(time.time())
    evil = f"https://{shop}.evil.example"
    return {
        "dest not a shop": {"dest": "https://evil.example", "iss": "https://evil.example/admin"},
        "dest a shop with a suffix": {"dest": evil, "iss": f"{evil}/admin"},
        "dest without https": {"dest": shop, "iss": f"https://{shop}/admin"},
        "iss on another shop": {"iss": "https://another-shop.myshopify.com/admin"},
        "no iss": {"iss": ABSENT},
        "no exp": {"exp": ABSENT},
        "iat after exp": {"iat": now + 5, "exp": now + 1},
    }


@pytest.mark.parametrize("reason", list(_hostile("a.myshopify.com")))
@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
async def test_session_tokens_shopify_says_to_refuse_are_refused_before_any_exchange(
    memory_tokens: Any, fake_shopify: FakeShopify, shop: str, reason: str, online: bool
) -> None:
    """Signed with the app's own secret, and still refused, as Shopify's guidance asks:
    a TokenExchangeError whose response is shopifyapp's answer to an invalid token (App
    Bridge retries); before, a dest that is not a shop raised InvalidShopError (a 500)
    and iss on another shop or no exp were exchanged."""
    claims = _hostile(shop)[reason]
    result = _verify(fake_shopify, signed_token(fake_shopify, shop, **claims))
    assert result.ok  # shopifyapp lets it through
    tokens = memory_tokens()
    call = tokens.get_or_exchange_online if online else tokens.get_or_exchange
    with pytest.raises(TokenExchangeError) as raised:
        await call(result)
    assert raised.value.code == "invalid_session_token"
    assert raised.value.response == result.invalid_token_response
    assert raised.value.shop in ("", shop) and "evil" not in str(raised.value)
    assert fake_shopify.counters(shop).token_requests == 0


async def test_a_session_token_that_names_no_user_has_no_online_session(
    memory_tokens: Any, fake_shopify: FakeShopify, shop: str
) -> None:
    result = verified(fake_shopify, shop, token=signed_token(fake_shopify, shop, sub=ABSENT))
    with pytest.raises(TokenExchangeError) as raised:
        await memory_tokens().get_or_exchange_online(result)
    assert (raised.value.code, raised.value.response) == (
        "invalid_session_token",
        result.invalid_token_response,
    )
    assert fake_shopify.counters(shop).token_requests == 0


@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
async def test_shopify_or_the_network_failing_during_an_exchange_says_so(
    memory_tokens: Any, fake_shopify: FakeShopify, shop: str, online: bool
) -> None:
    """A 5xx is ``server_error`` (shopifyapp says ``exchange_error``, as for any answer it
    does not know), an unreachable Shopify ``network_error``: the web answers 503 for both."""
    request = verified(fake_shopify, shop)
    fake_shopify.fail(shop, 503)
    tokens = memory_tokens()
    call = tokens.get_or_exchange_online if online else tokens.get_or_exchange
    with pytest.raises(TokenExchangeError) as raised:
        await call(request)
    assert raised.value.code == "server_error"

    unreachable = unreachable_url()
    sync = isinstance(tokens, Awaited)
    client = http_client_to(unreachable) if sync else async_http_client_to(unreachable)
    down = memory_tokens(http_client=client)
    call = down.get_or_exchange_online if online else down.get_or_exchange
    with pytest.raises(TokenExchangeError) as raised:
        await call(request)
    assert raised.value.code == "network_error"
