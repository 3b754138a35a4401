"""One Redis shared with a Node app, proven against the real npm package
``@shopify/shopify-app-session-storage-redis`` (tests/interop/node/cli.mjs).

Node writes and Python reads, Python writes and Node reads (sync and asyncio), deletes on
either side; the raw values of the keys compared byte for byte; the migration record that
keeps a Node app from migrating keys Python wrote; and the shop list under concurrent
writers, where Node's GET-then-SET loses entries and ours loses none. The Node adapter
takes one Redis, not a cluster: on the cluster, Python's values are checked byte for byte
against the ones Node wrote on one Redis.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import (
    REDIS_BACKENDS,
    REDIS_URL,
    REQUIRE_SERVERS,
    Awaited,
    Backend,
    Harness,
    close_harness,
    new_harness,
    redis_url_of,
    require_server,
)
from node.session_spec import to_spec
from shopify_sessions import Session, session_order
from test_node import SHOP, Node, kinds, node_missing

SINGLE = [b for b in REDIS_BACKENDS if b.server == "redis"]
#: Sessions stored at once by the concurrency test.
CONCURRENT = 40


def require_node() -> None:
    reason = node_missing()
    if reason is not None:
        if REQUIRE_SERVERS:
            pytest.fail(f"{reason} (required: SHOPIFY_SESSIONS_REQUIRE_SERVERS or CI is set)")
        pytest.skip(reason)


@pytest.fixture(params=SINGLE, ids=lambda b: b.name)
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """A harness on the machine's Redis (sync or asyncio storage), with Node installed."""
    backend: Backend = request.param
    require_node()
    require_server(backend.server)
    harness = new_harness(backend, tmp_path, REDIS_URL)
    yield harness
    await close_harness(harness)


def node_of(harness: Harness) -> Node:
    """cli.mjs on the Redis adapter, under the harness's key prefix."""
    node = Node.__new__(Node)
    node.base = {"adapter": "redis", "url": REDIS_URL, "table": harness.table_name}
    return node


def raw_values(harness: Harness) -> dict[str, str]:
    """Every key under the harness's prefix and its value, as stored."""
    client = harness.redis_client()
    keys = list(client.scan_iter(match=harness.table_name.replace("_", "[_]") + "_*"))
    return {key: client.get(key) for key in keys}


def renamed(values: dict[str, str], prefix: str, other: str) -> dict[str, str]:
    """``values`` as they would be under another key prefix."""
    return {
        key.replace(prefix, other, 1): value.replace(f'"{prefix}_', f'"{other}_')
        for key, value in values.items()
    }


async def test_node_writes_python_reads_and_deletes(shared: Harness) -> None:
    node, storage, sessions = node_of(shared), shared.storage(), kinds()
    assert node("store", sessions=[to_spec(s) for s in sessions])["stored"] == [True] * 4
    for session in sessions:
        loaded = await storage.load_session(session.id)
        assert loaded == session, session.id
        if session.online_access_info is not None:
            assert (
                loaded.online_access_info.associated_user
                == session.online_access_info.associated_user
            )
    found = await storage.find_sessions_by_shop(SHOP)
    assert found == sorted(sessions, key=session_order)
    await storage.delete_session(sessions[0].id)
    assert node("load", ids=[sessions[0].id])["sessions"] == [None]
    assert sorted(spec["id"] for spec in node("find", shop=SHOP)["sessions"]) == sorted(
        s.id for s in sessions[1:]
    )
    await storage.delete_sessions([s.id for s in sessions[1:]])
    assert node("find", shop=SHOP)["sessions"] == []


async def test_python_writes_node_reads_and_deletes(shared: Harness) -> None:
    node, storage, sessions = node_of(shared), shared.storage(), kinds()
    ids = [s.id for s in sessions]
    for session in sessions:
        await storage.store_session(session)
    loaded = node("load", ids=ids, expected=[to_spec(s) for s in sessions])
    assert loaded["equals"] == [True] * 4
    assert sorted(spec["id"] for spec in node("find", shop=SHOP)["sessions"]) == sorted(ids)
    node("delete", ids=[ids[0]])
    assert await storage.load_session(ids[0]) is None
    assert sorted(s.id for s in await storage.find_sessions_by_shop(SHOP)) == sorted(ids[1:])
    assert node("delete_many", ids=ids[1:])["result"] is True
    assert await storage.find_sessions_by_shop(SHOP) == []


async def test_both_sides_write_the_same_bytes(shared: Harness, tmp_path: Path) -> None:
    """Every key Node writes (sessions, the shop list, the migration record) holds exactly
    what Python writes for the same sessions, in the same order."""
    sessions = kinds()
    node_side = new_harness(shared.backend, tmp_path, REDIS_URL)
    try:
        node_of(node_side)("store", sessions=[to_spec(s) for s in sessions])
        storage = shared.storage()
        for session in sessions:
            await storage.store_session(session)
        ours, theirs = raw_values(shared), raw_values(node_side)
        assert len(ours) == len(sessions) + 2  # the sessions, the shop list, the record
        assert ours == renamed(theirs, node_side.table_name, shared.table_name)
    finally:
        await close_harness(node_side)


async def test_an_update_from_one_side_is_seen_by_the_other(shared: Harness) -> None:
    node, storage = node_of(shared), shared.storage()
    session = kinds()[2]
    node("store", sessions=[to_spec(session)])
    refreshed = session.copy()
    refreshed.access_token, refreshed.refresh_token = "shpat_new", "shprt_new"
    assert await storage.replace_session(refreshed, previous=session) is True
    assert node("load", ids=[session.id], expected=[to_spec(refreshed)])["equals"] == [True]
    invalidated = refreshed.copy()  # what invalidateAccessToken does in Node
    invalidated.access_token = None
    node("store", sessions=[to_spec(invalidated)])
    assert (await storage.load_session(session.id)).access_token is None
    assert await storage.replace_session(session, previous=refreshed) is False


async def test_a_node_app_starting_on_python_keys_migrates_nothing(shared: Harness) -> None:
    """Python writes the Node adapter's migration record with its first write, so the Node
    adapter's one migration (which rewrites every shop list from a scan of all keys)
    never runs over keys Python wrote; and Python leaves the record Node wrote alone."""
    storage, sessions = shared.storage(), kinds()
    for session in sessions:
        await storage.store_session(session)
    before = raw_values(shared)
    assert before[f"{shared.table_name}_migrations"] == '{"migrateToVersion1_0_1":true}'
    node_of(shared)("find", shop=SHOP)  # the Node adapter starts, and would migrate here
    assert raw_values(shared) == before


async def test_nodes_get_then_set_loses_list_entries_and_ours_does_not(
    shared: Harness, tmp_path: Path
) -> None:
    """Sessions of one shop stored at once: the Node adapter reads the shop list, then
    writes it back with its own entry, so concurrent stores overwrite each other's entries
    (and its findSessionsByShop misses sessions). Ours adds each entry in one script."""
    sessions = [
        Session(f"{SHOP}_{n}", SHOP, "", True, access_token=f"shpua_{n}") for n in range(CONCURRENT)
    ]
    node_side = new_harness(shared.backend, tmp_path, REDIS_URL)
    try:
        node = node_of(node_side)
        node("store_parallel", sessions=[to_spec(s) for s in sessions])
        node_found = len(node("find", shop=SHOP)["sessions"])
    finally:
        await close_harness(node_side)

    storage = shared.storage()
    if isinstance(storage, Awaited):
        threads = [
            threading.Thread(target=storage.target.store_session, args=(session,))
            for session in sessions
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join)
    else:
        await asyncio.gather(*(storage.store_session(s) for s in sessions))
    ours = len(await storage.find_sessions_by_shop(SHOP))
    print(f"{CONCURRENT} concurrent stores of one shop: Node lists {node_found}, ours {ours}")
    assert node_found < CONCURRENT
    assert ours == CONCURRENT


@pytest.mark.parametrize(
    "backend", [b for b in REDIS_BACKENDS if b.server == "redis-cluster"], ids=lambda b: b.name
)
async def test_on_the_cluster_python_writes_the_bytes_node_writes(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    require_node()
    require_server(backend.server)
    require_server("redis")
    sessions = kinds()
    node_side = new_harness(next(iter(SINGLE)), tmp_path, REDIS_URL)
    cluster = new_harness(backend, tmp_path, redis_url_of(backend, request))
    try:
        node_of(node_side)("store", sessions=[to_spec(s) for s in sessions])
        storage = cluster.storage()
        for session in sessions:
            await storage.store_session(session)
        loaded = [await storage.load_session(s.id) for s in sessions]
        assert loaded == sessions
        theirs = raw_values(node_side)
        assert raw_values(cluster) == renamed(theirs, node_side.table_name, cluster.table_name)
    finally:
        await close_harness(cluster)
        await close_harness(node_side)
