"""Worker processes of the hammer: threads or tasks call ``get`` for a few shops, over and
over, and use each token against FakeShopify's Admin API at once. Each gets the test's
FakeShopify pickled: a handle on the same server."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any

from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage
from shopify_sessions.testing import FakeShopify
from shopify_sessions.tokens import AsyncOfflineTokens, OfflineTokens

API_VERSION = "2026-10"


def open_storage(url: str, table: str, options: dict[str, Any], is_async: bool) -> Any:
    """The storage a worker process opens: SQL on ``table``, Redis under that key prefix, or
    DynamoDB's table in its URL (``options``: the client's, with dynalite's credentials)."""
    if url.startswith("dynamodb"):
        from shopify_sessions.dynamodb import AsyncDynamoDBSessionStorage, DynamoDBSessionStorage

        kind = AsyncDynamoDBSessionStorage if is_async else DynamoDBSessionStorage
        return kind(url, client_options=options)
    if url.startswith("redis"):
        from shopify_sessions.redis import AsyncRedisSessionStorage, RedisSessionStorage

        kind = AsyncRedisSessionStorage if is_async else RedisSessionStorage
        return kind(url, key_prefix=table)
    if is_async:
        return AsyncSQLAlchemySessionStorage(url, table=table, engine_options=options)
    return SQLAlchemySessionStorage(url, table=table, engine_options=options)


class WithoutLock:
    """A storage whose lock does nothing: what a refresh without single flight does."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self.load_session = storage.load_session
        self.store_session = storage.store_session
        self.replace_session = storage.replace_session
        self.delete_session = storage.delete_session
        self.delete_sessions = storage.delete_sessions
        self.find_sessions_by_shop = storage.find_sessions_by_shop
        self.sessions_due_for_refresh = storage.sessions_due_for_refresh

    @contextmanager
    def lock_session(self, id: str, *, timeout: float = 0) -> Iterator[None]:
        yield


class AsyncWithoutLock(WithoutLock):
    @asynccontextmanager  # type: ignore[arg-type]
    async def lock_session(self, id: str, *, timeout: float = 0) -> AsyncIterator[None]:  # type: ignore[override]
        yield


class Tally:
    def __init__(self) -> None:
        self.gets = 0
        self.calls: dict[int, int] = {}
        self.errors: list[str] = []
        self.guard = threading.Lock()

    def add(self, status: int) -> None:
        with self.guard:
            self.gets += 1
            self.calls[status] = self.calls.get(status, 0) + 1

    def result(self) -> dict[str, Any]:
        return {"gets": self.gets, "calls": self.calls, "errors": self.errors[:20]}


def _admin(shop: str) -> str:
    return f"https://{shop}/admin/api/{API_VERSION}/graphql.json"


def run_sync(
    url: str,
    table: str,
    shopify: FakeShopify,
    shops: list[str],
    process: int,
    workers: int,
    seconds: float,
    skew: float,
    locked: bool,
    options: dict[str, Any],
) -> dict[str, Any]:
    storage: Any = open_storage(url, table, options, is_async=False)
    if not locked:
        storage = WithoutLock(storage)
    tally = Tally()
    deadline = time.monotonic() + seconds

    def work(worker: int) -> None:
        rng = random.Random(process * 100 + worker)
        with shopify.http_client(timeout=30) as client:
            tokens = OfflineTokens(
                storage,
                client_id=shopify.client_id,
                client_secret=shopify.client_secret,
                http_client=client,
                skew=timedelta(seconds=skew),
                lock_timeout=30,
            )
            while time.monotonic() < deadline:
                shop = rng.choice(shops)
                try:
                    session = tokens.get(shop)
                    assert session is not None and session.access_token
                    response = client.post(
                        _admin(shop),
                        headers={"X-Shopify-Access-Token": session.access_token},
                        json={"query": "{ shop { name } }"},
                    )
                    tally.add(response.status_code)
                except Exception as error:  # the test asserts there are none
                    tally.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(rng.uniform(0.005, 0.02))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (storage if locked else storage._storage).close()
    return tally.result()


def run_async(
    url: str,
    table: str,
    shopify: FakeShopify,
    shops: list[str],
    process: int,
    workers: int,
    seconds: float,
    skew: float,
    locked: bool,
    options: dict[str, Any],
) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        storage: Any = open_storage(url, table, options, is_async=True)
        if not locked:
            storage = AsyncWithoutLock(storage)
        tally = Tally()
        deadline = time.monotonic() + seconds
        async with shopify.async_http_client(timeout=30) as client:
            tokens = AsyncOfflineTokens(
                storage,
                client_id=shopify.client_id,
                client_secret=shopify.client_secret,
                http_client=client,
                skew=timedelta(seconds=skew),
                lock_timeout=30,
            )

            async def work(worker: int) -> None:
                rng = random.Random(process * 100 + worker)
                while time.monotonic() < deadline:
                    shop = rng.choice(shops)
                    try:
                        session = await tokens.get(shop)
                        assert session is not None and session.access_token
                        response = await client.post(
                            _admin(shop),
                            headers={"X-Shopify-Access-Token": session.access_token},
                            json={"query": "{ shop { name } }"},
                        )
                        tally.add(response.status_code)
                    except Exception as error:  # the test asserts there are none
                        tally.errors.append(f"{type(error).__name__}: {error}")
                    await asyncio.sleep(rng.uniform(0.005, 0.02))

            await asyncio.gather(*(work(w) for w in range(workers)))
        await (storage._storage if not locked else storage).close()
        return tally.result()

    return asyncio.run(main())


def migrate_everywhere(
    url: str,
    table: str,
    shopify: FakeShopify,
    shops: list[str],
    process: int,
    workers: int,
    is_async: bool,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Every worker calls ``migrate_legacy`` for every shop at once; the tokens it got."""
    tokens_seen: dict[str, list[str]] = {shop: [] for shop in shops}
    errors: list[str] = []
    start = threading.Barrier(workers) if not is_async else None

    def record(shop: str, session: Any) -> None:
        tokens_seen[shop].append(session.access_token if session else "")

    if not is_async:
        storage = open_storage(url, table, options, is_async=False)

        def work() -> None:
            with shopify.http_client(timeout=30) as client:
                tokens = OfflineTokens(
                    storage,
                    client_id=shopify.client_id,
                    client_secret=shopify.client_secret,
                    http_client=client,
                    lock_timeout=30,
                )
                assert start is not None
                start.wait()
                for shop in shops:
                    try:
                        record(shop, tokens.migrate_legacy(shop))
                    except Exception as error:
                        errors.append(f"{type(error).__name__}: {error}")

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        storage.close()
    else:

        async def main() -> None:
            storage = open_storage(url, table, options, is_async=True)
            async with shopify.async_http_client(timeout=30) as c:
                tokens = AsyncOfflineTokens(
                    storage,
                    client_id=shopify.client_id,
                    client_secret=shopify.client_secret,
                    http_client=c,
                    lock_timeout=30,
                )

                async def work() -> None:
                    for shop in shops:
                        try:
                            record(shop, await tokens.migrate_legacy(shop))
                        except Exception as error:
                            errors.append(f"{type(error).__name__}: {error}")

                await asyncio.gather(*(work() for _ in range(workers)))
            await storage.close()

        asyncio.run(main())
    return {"tokens": tokens_seen, "errors": errors[:20]}
