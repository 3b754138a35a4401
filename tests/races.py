"""Holding a refresh or a session lock while a test does something else, for either kind
of storage (a sync storage's work runs in a thread, so that the test's loop goes on)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from conftest import Awaited
from shopify_requests import StandIn, wait_for_token_request


@asynccontextmanager
async def in_flight(tokens: Any, shop: str, standin: StandIn) -> AsyncIterator[Any]:
    """``tokens.get(shop)`` started, and held at Shopify (the stand-in's latency) while the
    block runs; a sync OfflineTokens runs in a thread. Yields its future."""
    if isinstance(tokens, Awaited):
        pending = asyncio.ensure_future(asyncio.to_thread(tokens.target.get, shop))
    else:
        pending = asyncio.ensure_future(tokens.get(shop))
    waiting = asyncio.ensure_future(asyncio.to_thread(wait_for_token_request, standin, shop))
    await asyncio.wait([pending, waiting], return_when=asyncio.FIRST_COMPLETED)
    if pending.done():
        waiting.cancel()
        pending.result()  # raises what failed
        pytest.fail("the refresh ended before the stand-in held it")
    await waiting
    try:
        yield pending
    finally:
        await asyncio.wait([pending])


@asynccontextmanager
async def locked(storage: Any, id: str) -> AsyncIterator[None]:
    """The storage's lock on ``id`` held by another worker (a thread for a sync storage,
    whose in-process lock is per thread)."""
    if not isinstance(storage, Awaited):
        async with storage.lock_session(id):
            yield
        return
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with storage.target.lock_session(id):
            taken.set()
            done.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    await asyncio.to_thread(taken.wait, 10)
    try:
        yield
    finally:
        done.set()
        await asyncio.to_thread(thread.join)
