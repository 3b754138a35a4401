"""redis-py's asyncio cluster client shared by many tasks: nothing but typed errors.

In redis-py 8.1, a MOVED answer (every ``reinitialize_steps``-th one) or a CLUSTERDOWN
makes ``RedisCluster`` call its own ``aclose()``, which disconnects every connection of
every node, including those other tasks are using; a task between connecting and writing
then meets ``AttributeError: 'NoneType' object has no attribute 'writelines'`` (its
connection's writer was set to None), which the client does not retry (docs/redis.md).
The storage reads that as a lost connection: a typed error, tried again once.
"""

from __future__ import annotations

import asyncio
import collections
import random

import redis.asyncio

from redis_cluster import RedisCluster
from shopify_sessions import Session, SessionStorageError
from shopify_sessions.redis import AsyncRedisSessionStorage

TASKS, CALLS = 16, 150


async def _hammer(call: object) -> collections.Counter[str]:
    errors: collections.Counter[str] = collections.Counter()

    async def work(n: int) -> None:
        rng = random.Random(n)
        for _ in range(CALLS):
            try:
                await call(rng.randrange(100))  # type: ignore[operator]
            except SessionStorageError as error:
                errors[f"typed {type(error).__name__}"] += 1
            except Exception as error:
                errors[f"raw {type(error).__name__}"] += 1

    await asyncio.gather(*(work(n) for n in range(TASKS)))
    return errors


async def test_only_typed_errors_from_a_shared_asyncio_cluster_client(
    redis_cluster: RedisCluster,
) -> None:
    client = redis.asyncio.RedisCluster.from_url(redis_cluster.url.split("?")[0])
    storage = AsyncRedisSessionStorage(client, key_prefix=f"raw_{random.randrange(10**9)}")

    async def naive(n: int) -> None:  # what a storage without the translation does
        await client.set(f"naive_{n}", "v")
        await client.get(f"naive_{n}")

    async def ours(n: int) -> None:
        session = Session(f"s{n}", f"shop{n % 7}.myshopify.com", "", False, access_token="t")
        await storage.store_session(session)
        await storage.load_session(session.id)

    raw, typed = await _hammer(naive), await _hammer(ours)
    print(f"{TASKS} tasks x {CALLS}: redis-py alone {dict(raw)}, the storage {dict(typed)}")
    assert not [name for name in typed if name.startswith("raw")], typed
    for n in range(100):
        await storage.delete_session(f"s{n}")
        await client.delete(f"naive_{n}")
    await client.aclose()
