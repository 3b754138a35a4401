"""Fixtures of the lifecycle tests: the stand-in, and OfflineTokens on every backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from conftest import Awaited
from shopify_sessions.shopify_app import AsyncOfflineTokens, OfflineTokens
from standin import CLIENT_ID, CLIENT_SECRET
from standin_client import StandIn


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    server = StandIn()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def shop() -> str:
    return f"shop-{uuid.uuid4().hex[:10]}.myshopify.com"


@pytest.fixture
async def tokens_for(standin: StandIn, storage: Any) -> AsyncIterator[Callable[..., Any]]:
    """Makes OfflineTokens (awaitable methods) on the battery's storage, routed to the stand-in."""
    standin.reset()
    closers: list[Any] = []

    def make(**options: Any) -> Any:
        options = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **options}
        if isinstance(storage, Awaited):
            client = standin.client()
            closers.append(client.close)
            return Awaited(OfflineTokens(storage.target, http_client=client, **options))
        async_client = standin.async_client()
        closers.append(async_client.aclose)
        return AsyncOfflineTokens(storage, http_client=async_client, **options)

    yield make
    for close in closers:
        result = close()
        if result is not None:
            await result
