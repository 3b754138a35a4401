"""One DynamoDB table shared with a Node app, proven against the real npm package
``@shopify/shopify-app-session-storage-dynamodb`` (tests/interop/node/cli.mjs) on the
tests' dynalite.

Node writes and Python reads, Python writes and Node reads (boto3 and aiobotocore);
deletes on either side; the items compared attribute for attribute, in order; updates
seen across; lock items that Node never sees; and a shop past one page of the index,
where Node's ``findSessionsByShop`` loses sessions and ours loses none.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_node_redis import require_node

from conftest import (
    DYNAMODB_BACKENDS,
    Awaited,
    Backend,
    Harness,
    close_harness,
    dynalite,
    new_harness,
    require_server,
)
from dynalite import many_ids
from node.session_spec import to_spec
from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session, session_order
from shopify_sessions._time import from_epoch_ms
from test_node import SHOP, Node, kinds


def dynamodb_kinds() -> list[Session]:
    """The interop sessions, and an online session as Shopify's token exchange gives it:
    ``expires_in`` and ``associated_user_scope`` beside the user (the SQL and Redis
    layouts drop them; this one keeps them)."""
    user = AssociatedUser(id=7, first_name="Ada", email="ada@example.com", email_verified=True,
                          account_owner=True, locale="fr", collaborator=False)  # fmt: skip
    exchanged = Session(
        f"{SHOP}_7",
        SHOP,
        "",
        True,
        scope="read_products",
        expires=from_epoch_ms(1_893_456_000_777),
        access_token="shpua_e",
        online_access_info=OnlineAccessInfo(
            associated_user=user, expires_in=86_399, associated_user_scope="read_products"
        ),
    )
    return [*kinds(), exchanged]


@pytest.fixture(params=DYNAMODB_BACKENDS, ids=lambda b: b.name)
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """A harness on a table of its own in the tests' dynalite, with Node installed."""
    backend: Backend = request.param
    require_node()
    require_server(backend.server)
    harness = new_harness(backend, tmp_path)
    yield harness
    await close_harness(harness)


def node_of(harness: Harness, table: str | None = None) -> Node:
    """cli.mjs on the DynamoDB adapter, on the harness's table (created first)."""
    harness.dynamodb_storage(table_name=table or harness.table_name)
    node = Node.__new__(Node)
    node.base = {
        "adapter": "dynamodb",
        "url": dynalite().endpoint,
        "table": table or harness.table_name,
    }
    return node


def items(harness: Harness, table: str | None = None) -> dict[str, dict[str, Any]]:
    """Every item of the table, as DynamoDB holds it, by id."""
    client = harness.dynamodb_client()
    found = client.scan(TableName=table or harness.table_name, ConsistentRead=True)["Items"]
    return {item["id"]["S"]: item for item in found}


def same_info(loaded: Session, session: Session) -> bool:
    """The whole ``onlineAccessInfo``, which equality leaves aside."""
    return loaded.online_access_info == session.online_access_info


async def test_node_writes_python_reads_and_deletes(shared: Harness) -> None:
    node, storage, sessions = node_of(shared), shared.storage(), dynamodb_kinds()
    stored = node("store", sessions=[to_spec(s) for s in sessions])["stored"]
    assert stored == [True] * len(sessions)
    for session in sessions:
        loaded = await storage.load_session(session.id)
        assert loaded == session, session.id
        assert same_info(loaded, session), session.id
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
    node, storage, sessions = node_of(shared), shared.storage(), dynamodb_kinds()
    ids = [s.id for s in sessions]
    for session in sessions:
        await storage.store_session(session)
    loaded = node("load", ids=ids, expected=[to_spec(s) for s in sessions])
    assert loaded["equals"] == [True] * len(sessions)
    exchanged = loaded["sessions"][-1]["onlineAccessInfo"]
    assert (exchanged["expires_in"], exchanged["associated_user_scope"]) == (
        86_399,
        "read_products",
    )
    assert sorted(spec["id"] for spec in node("find", shop=SHOP)["sessions"]) == sorted(ids)
    node("delete", ids=[ids[0]])
    assert await storage.load_session(ids[0]) is None
    assert sorted(s.id for s in await storage.find_sessions_by_shop(SHOP)) == sorted(ids[1:])
    assert node("delete_many", ids=ids[1:])["result"] is True
    assert await storage.find_sessions_by_shop(SHOP) == []


async def test_both_sides_write_the_same_items(shared: Harness) -> None:
    """Every item Node writes holds exactly what Python writes for the same session:
    the same attributes, types and values (ISO dates, numbers as DynamoDB text), in the
    same order."""
    sessions = dynamodb_kinds()
    theirs_table = f"{shared.table_name}_node"
    node_of(shared, theirs_table)("store", sessions=[to_spec(s) for s in sessions])
    storage = shared.storage()
    for session in sessions:
        await storage.store_session(session)
    ours, theirs = items(shared), items(shared, theirs_table)
    assert len(ours) == len(sessions)
    for id, item in theirs.items():
        assert json.dumps(ours[id]) == json.dumps(item), id


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


async def test_node_never_sees_a_lock(shared: Harness) -> None:
    """A lock is an item of the table (``lock:<id>``) without a shop: the index the Node
    adapter finds sessions with never lists it."""
    node, storage, sessions = node_of(shared), shared.storage(), kinds()
    for session in sessions:
        await storage.store_session(session)
    locks = storage.target if isinstance(storage, Awaited) else storage
    manager = locks.lock_session(sessions[0].id)
    if isinstance(storage, Awaited):
        manager.__enter__()
    else:
        await manager.__aenter__()
    try:
        assert f"lock:{sessions[0].id}" in items(shared)
        found = node("find", shop=SHOP)["sessions"]
        assert sorted(spec["id"] for spec in found) == sorted(s.id for s in sessions)
    finally:
        if isinstance(storage, Awaited):
            manager.__exit__(None, None, None)
        else:
            await manager.__aexit__(None, None, None)


@pytest.mark.parametrize("backend", DYNAMODB_BACKENDS[:1], ids=lambda b: b.name)
async def test_past_one_page_of_the_index_node_loses_sessions_and_ours_does_not(
    backend: Backend, tmp_path: Path
) -> None:
    """1,300 sessions of one shop whose ids make 1.3 MB of index keys: the Node adapter
    reads the index's first page only (1 MB), ours every page."""
    require_node()
    require_server(backend.server)
    harness = new_harness(backend, tmp_path)
    try:
        node, storage = node_of(harness), harness.storage()
        client, table = harness.dynamodb_client(), harness.table_name
        item = {"shop": {"S": SHOP}, "state": {"S": ""}, "isOnline": {"BOOL": False}}
        ids = many_ids(SHOP, 1_300, 1_000)
        for start in range(0, len(ids), 25):
            chunk = ids[start : start + 25]
            writes = [{"PutRequest": {"Item": {"id": {"S": id}, **item}}} for id in chunk]
            client.batch_write_item(RequestItems={table: writes})
        node_found = len(node("find", shop=SHOP)["sessions"])
        ours = len(await storage.find_sessions_by_shop(SHOP))
        print(f"1,300 sessions of one shop, 1.3 MB of index keys: Node {node_found}, ours {ours}")
        assert node_found < 1_300
        assert ours == 1_300
    finally:
        await close_harness(harness)
