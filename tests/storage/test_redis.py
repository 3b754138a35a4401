"""What only the Redis storage has: stale shop-list entries, the online-session expiry,
values that are not sessions, a read-only replica, a server that stops answering, a dead
lock holder, and construction."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import REDIS_URL, Awaited, Harness, require_server, tampered
from redis_cluster import _cli, _free_ports, _wait
from shopify_sessions import (
    AssociatedUser,
    DatabaseURLError,
    InvalidSessionError,
    LockTimeoutError,
    OnlineAccessInfo,
    Session,
    SessionDataError,
    StorageOperationError,
    StorageUnavailableError,
)
from shopify_sessions._time import utc_now
from shopify_sessions.redis import AsyncRedisSessionStorage, RedisSessionStorage

SHOP = "redis-only.myshopify.com"
TOKEN = "shpat_REDIS_SECRET_0123456789"


def offline(id: str = f"offline_{SHOP}", shop: str = SHOP, **fields: Any) -> Session:
    fields.setdefault("access_token", TOKEN)
    return Session(id, shop, "", False, **fields)


async def test_stale_list_entries_are_left_out_and_removed(redis_harness: Harness) -> None:
    storage, client = redis_harness.storage(), redis_harness.redis_client()
    prefix = redis_harness.table_name
    kept, moved, gone = offline("kept"), offline("moved"), offline("gone")
    for session in (kept, moved, gone):
        await storage.store_session(session)
    client.delete(f"{prefix}_gone")  # a key expired or deleted behind the list's back
    await storage.store_session(offline("moved", "other.myshopify.com"))
    assert [s.id for s in await storage.find_sessions_by_shop(SHOP)] == ["kept"]
    assert client.get(f"{prefix}_{SHOP}") == f'["{prefix}_kept"]'
    assert [s.id for s in await storage.find_sessions_by_shop("other.myshopify.com")] == ["moved"]
    await storage.delete_sessions(["kept", "moved"])
    assert client.get(f"{prefix}_{SHOP}") is None  # an empty list is deleted


async def test_online_sessions_can_expire_with_their_token(redis_harness: Harness) -> None:
    storage = redis_harness.storage(expire_online_sessions=True)
    client = redis_harness.redis_client()
    user = OnlineAccessInfo(associated_user=AssociatedUser(id=1))
    online = Session(
        f"{SHOP}_1", SHOP, "", True, expires=utc_now() + timedelta(hours=1),
        access_token="shpua", online_access_info=user,
    )  # fmt: skip
    await storage.store_session(online)
    await storage.store_session(offline(expires=utc_now() + timedelta(hours=1)))
    prefix = redis_harness.table_name
    assert 3_500_000 < client.pttl(f"{prefix}_{online.id}") <= 3_600_000
    assert client.pttl(f"{prefix}_offline_{SHOP}") == -1  # offline sessions never expire
    expired = Session(
        f"{SHOP}_2", SHOP, "", True, expires=utc_now() - timedelta(seconds=1),
        access_token="shpua", online_access_info=user,
    )  # fmt: skip
    await storage.store_session(expired)
    assert await storage.load_session(expired.id) is None
    assert [s.id for s in await storage.find_sessions_by_shop(SHOP)] == [
        f"offline_{SHOP}",
        online.id,
    ]
    plain = redis_harness.storage()
    await plain.store_session(online)
    assert client.pttl(f"{prefix}_{online.id}") == -1  # off by default, as in Node


async def test_a_value_that_is_no_session_is_a_typed_error(redis_harness: Harness) -> None:
    storage, client = redis_harness.storage(), redis_harness.redis_client()
    prefix = redis_harness.table_name
    await storage.store_session(offline())
    cases = {
        SHOP: None,  # the shop's list, read as a session
        "junk": "not json",
        "object": '{"id": "object"}',
        "other": '[["id","someone-else"],["shop","x"]]',
    }
    for id, value in cases.items():
        if value is not None:
            client.set(f"{prefix}_{id}", value)
        with pytest.raises(SessionDataError) as raised:
            await storage.load_session(id)
        assert TOKEN not in str(raised.value)
    client.hset(f"{prefix}_hash", "a", "b")
    with pytest.raises(SessionDataError, match="WRONGTYPE"):
        await storage.load_session("hash")
    with pytest.raises(SessionDataError, match="holds no session"):
        await storage.store_session(offline(SHOP))  # would overwrite the shop's list
    with pytest.raises(SessionDataError, match="holds no session"):
        await storage.delete_session(SHOP)
    assert client.get(f"{prefix}_{SHOP}") == f'["{prefix}_offline_{SHOP}"]'
    with pytest.raises(InvalidSessionError, match="migration record"):
        await storage.store_session(offline("migrations"))
    # A walk skips what is not a session (lists, records, other types).
    client.delete(f"{prefix}_junk", f"{prefix}_object", f"{prefix}_other")
    target = storage.target if isinstance(storage, Awaited) else storage
    walked = target.sessions()
    batches = [b async for b in walked] if hasattr(walked, "__aiter__") else list(walked)
    assert [s.id for batch in batches for s in batch] == [f"offline_{SHOP}"]


@pytest.mark.parametrize("tagged", [False, True], ids=["plain-prefix", "hash-tag-prefix"])
async def test_a_session_is_stored_and_listed_together_or_not_at_all(
    redis_harness: Harness, tagged: bool
) -> None:
    # The shop's list key holds what is no list, so listing the session fails: the session
    # must not stay behind, unlisted (the Node layout's find would never see it). On one
    # Redis, and on a cluster under a hash-tagged prefix, one script checks both keys before
    # writing; on a cluster with the two keys in different slots, the store is undone.
    prefix = f"{{{redis_harness.table_name}}}" if tagged else redis_harness.table_name
    storage, client = redis_harness.storage(key_prefix=prefix), redis_harness.redis_client()
    blocked = "blocked.myshopify.com"
    try:
        client.set(f"{prefix}_{blocked}", "not a list")
        with pytest.raises(SessionDataError, match="holds no shop index"):
            await storage.store_session(offline("fresh", blocked))
        assert client.get(f"{prefix}_fresh") is None
        # Over a stored session: it is put back as it was, still listed under its shop.
        old = offline("moving", SHOP, expires=utc_now() + timedelta(hours=1))
        await storage.store_session(old)
        before = client.get(f"{prefix}_moving")
        with pytest.raises(SessionDataError, match="holds no shop index"):
            await storage.store_session(offline("moving", blocked))
        assert client.get(f"{prefix}_moving") == before
        assert await storage.find_sessions_by_shop(SHOP) == [old]
        # A renewed pair moving to that shop: neither written.
        renewed = offline("moving", blocked, access_token="shpat_renewed")
        with pytest.raises(SessionDataError, match="holds no shop index"):
            await storage.replace_session(renewed, previous=old)
        assert client.get(f"{prefix}_moving") == before
        assert client.get(f"{prefix}_{blocked}") == "not a list"
    finally:
        for key in client.scan_iter(match=prefix.replace("{", "[{]") + "*"):
            client.delete(key)


async def test_no_token_in_logs_or_errors(
    redis_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    storage = redis_harness.storage()
    session = offline(refresh_token="shprt_REDIS_SECRET")
    await storage.store_session(session)
    assert await storage.replace_session(offline(access_token="shpat_2"), previous=session)
    loaded = await storage.load_session(session.id)
    assert TOKEN not in repr(loaded)
    assert all("SECRET" not in r.getMessage() for r in caplog.records)


def test_unreachable_and_silent_servers_are_unavailable() -> None:
    storage = RedisSessionStorage("redis://127.0.0.1:1/0")
    with pytest.raises(StorageUnavailableError) as raised:
        storage.store_session(offline())
    assert raised.value.__cause__ is not None and TOKEN not in str(raised.value)
    storage.close()
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        stalled = RedisSessionStorage(
            f"redis://127.0.0.1:{port}/0",
            client_options={"socket_timeout": 0.3, "socket_connect_timeout": 0.3},
        )
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError, match="Timeout"):
            stalled.load_session("any")
        assert time.monotonic() - started < 10
        stalled.close()


def test_a_read_only_replica_refuses_writes_with_a_typed_error(tmp_path: Path) -> None:
    require_server("redis-cluster")  # needs redis-server, as the cluster does
    primary, replica = _free_ports(2)
    processes = [
        subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(tmp_path),
                "--dbfilename",
                f"{port}.rdb",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
        )
        for port, extra in ((primary, []), (replica, ["--replicaof", "127.0.0.1", str(primary)]))
    ]
    try:
        _wait(lambda: "master_link_status:up" in _cli(replica, "info", "replication"), "replica")
        storage = RedisSessionStorage(f"redis://127.0.0.1:{replica}/0")
        with pytest.raises(StorageOperationError, match="read-only replica"):
            storage.store_session(offline())
        assert storage.load_session("absent") is None  # reads still work
        storage.close()
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from shopify_sessions.redis import RedisSessionStorage
    storage = RedisSessionStorage(sys.argv[1], key_prefix=sys.argv[2], lock_lease=1.0)
    with storage.lock_session("offline_dead.myshopify.com"):
        print("held", flush=True)
        time.sleep(120)
    """
)


async def test_a_dead_holder_frees_the_lock_when_its_lease_ends(redis_harness: Harness) -> None:
    assert redis_harness.redis_url is not None
    storage = redis_harness.storage()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_harness.redis_url, redis_harness.table_name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        holder.kill()  # SIGKILL: no finally, no release
        holder.wait(10)
        target = storage.target if isinstance(storage, Awaited) else storage
        started = time.monotonic()
        if isinstance(storage, Awaited):
            await asyncio.to_thread(_take, target)
        else:
            async with target.lock_session("offline_dead.myshopify.com", timeout=10):
                pass
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def _take(storage: RedisSessionStorage) -> None:
    with storage.lock_session("offline_dead.myshopify.com", timeout=10):
        pass


async def test_a_held_lock_is_renewed_and_a_lost_one_is_not_released_by_its_old_holder(
    redis_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A holder working past its lease keeps the lock (its heartbeat renews the lease);
    a holder whose lease was lost (here: the key is removed, as an expiry would) never
    deletes the lock someone else took since, and says so."""
    storage = redis_harness.storage(lock_lease=1.0)
    other = redis_harness.storage(lock_lease=30)
    first = storage.target if isinstance(storage, Awaited) else storage
    second = other.target if isinstance(other, Awaited) else other
    key = f"{redis_harness.table_name}:lock:offline_l.myshopify.com"
    client = redis_harness.redis_client()
    with caplog.at_level(logging.WARNING):
        if isinstance(storage, Awaited):
            with first.lock_session("offline_l.myshopify.com"):
                time.sleep(2.5)  # past the lease of 1 s: renewed meanwhile
                with (
                    pytest.raises(LockTimeoutError),
                    second.lock_session("offline_l.myshopify.com", timeout=0.3),
                ):
                    pass
                client.delete(key)  # the lease is lost
                manager = second.lock_session("offline_l.myshopify.com", timeout=1)
                manager.__enter__()
            assert client.get(key) is not None  # the old holder left it alone
            manager.__exit__(None, None, None)
        else:
            async with first.lock_session("offline_l.myshopify.com"):
                await asyncio.sleep(2.5)
                with pytest.raises(LockTimeoutError):
                    async with second.lock_session("offline_l.myshopify.com", timeout=0.3):
                        pass
                client.delete(key)
                manager = second.lock_session("offline_l.myshopify.com", timeout=1)
                await manager.__aenter__()
            assert client.get(key) is not None
            await manager.__aexit__(None, None, None)
    assert client.get(key) is None
    assert any("lease" in r.getMessage() for r in caplog.records)


def test_construction_refuses_what_it_cannot_use() -> None:
    import redis

    with pytest.raises(DatabaseURLError):
        RedisSessionStorage("postgresql://localhost/db")
    with pytest.raises(DatabaseURLError, match="cluster="):
        RedisSessionStorage(f"{REDIS_URL}?cluster=maybe")
    with pytest.raises(TypeError, match="AsyncRedisSessionStorage"):
        RedisSessionStorage(redis.asyncio.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="RedisSessionStorage"):
        AsyncRedisSessionStorage(redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_prefix"):
        RedisSessionStorage(REDIS_URL, key_prefix="")
    with pytest.raises(TypeError, match="client_options"):
        RedisSessionStorage(redis.Redis(), client_options={"socket_timeout": 1})


async def test_a_walk_skips_the_sessions_of_a_longer_prefix(redis_harness: Harness) -> None:
    """The scan pattern of prefix ``p`` also matches the keys of prefix ``p_more``."""
    storage = redis_harness.storage()
    longer = redis_harness.storage(key_prefix=f"{redis_harness.table_name}_more")
    await storage.store_session(offline("mine"))
    await longer.store_session(offline("theirs", "longer.myshopify.com"))
    target = storage.target if isinstance(storage, Awaited) else storage
    walked = target.sessions()
    batches = [b async for b in walked] if hasattr(walked, "__aiter__") else list(walked)
    assert [s.id for batch in batches for s in batch] == ["mine"]
    await longer.delete_session("theirs")


async def test_tokens_encrypted_at_rest_and_compared_in_clear(redis_harness: Harness) -> None:
    from cryptography.fernet import Fernet

    from shopify_sessions import FernetTokenCipher, TokenDecryptionError

    key = Fernet.generate_key()
    storage = redis_harness.storage(token_cipher=FernetTokenCipher({"k1": key}))
    plain = redis_harness.storage()
    old = offline(refresh_token="shprt_REDIS_SECRET")
    await storage.store_session(old)
    raw = redis_harness.redis_client().get(f"{redis_harness.table_name}_{old.id}")
    assert TOKEN not in raw and raw.count('"fernet:k1:') == 2
    assert await storage.load_session(old.id) == old
    assert (await plain.load_session(old.id)).access_token.startswith("fernet:k1:")
    renewed = offline(access_token="shpat_renewed", refresh_token="shprt_renewed")
    assert await storage.replace_session(renewed, previous=old) is True
    assert await storage.replace_session(offline(access_token="x"), previous=old) is False
    assert await storage.load_session(old.id) == renewed
    stranger = redis_harness.storage(token_cipher=FernetTokenCipher({"k9": Fernet.generate_key()}))
    with pytest.raises(TokenDecryptionError):
        await stranger.load_session(old.id)


async def test_no_altered_character_of_a_stored_token_reads_as_a_token(
    redis_harness: Harness,
) -> None:
    from cryptography.fernet import Fernet

    from shopify_sessions import FernetTokenCipher, TokenDecryptionError

    storage = redis_harness.storage(token_cipher=FernetTokenCipher({"k1": Fernet.generate_key()}))
    session = offline()
    await storage.store_session(session)
    client, key = redis_harness.redis_client(), f"{redis_harness.table_name}_{session.id}"
    raw = client.get(key)
    start = raw.index('"fernet:k1:') + 1
    stored = raw[start : raw.index('"', start)]
    planted = ["shpat_planted", "Aernet:k1:" + stored[len("fernet:k1:") :]]
    values = [*tampered(stored), *planted]
    for value in values:
        client.set(key, raw.replace(stored, value))
        with pytest.raises(TokenDecryptionError) as raised:
            await storage.load_session(session.id)
        assert TOKEN not in str(raised.value) and "planted" not in str(raised.value)
    assert len(values) > 2 * len(stored)
