"""What only the DynamoDB storage has, against the tests' dynalite: typed errors (a missing
table or index, an item that is no session, throttling, a dropped connection, an endpoint
that is down or silent), DynamoDB's failures injected by the proxy of tests/dynalite.py
(never a stubbed client), a shop past one page of its index, the index's lag and
``app/uninstalled``, consistent reads, the lease lock, encryption, logs, construction."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.config import Config

import dynalite as dynalite_module
from conftest import Awaited, Harness, dynalite, tampered
from dynalite import FaultProxy, many_ids
from shopify_sessions import (
    AssociatedUser,
    DatabaseURLError,
    InvalidSessionError,
    LockTimeoutError,
    MissingSessionTableError,
    OnlineAccessInfo,
    Session,
    SessionDataError,
    SessionTableSchemaError,
    StorageUnavailableError,
)
from shopify_sessions._time import utc_now
from shopify_sessions.dynamodb import AsyncDynamoDBSessionStorage, DynamoDBSessionStorage, _redact

SHOP = "dynamo-only.myshopify.com"
TOKEN = "shpat_DYNAMO_SECRET_0123456789"


def offline(id: str = f"offline_{SHOP}", shop: str = SHOP, **fields: Any) -> Session:
    fields.setdefault("access_token", TOKEN)
    return Session(id, shop, "", False, **fields)


def online(user: int, shop: str = SHOP) -> Session:
    info = OnlineAccessInfo(associated_user=AssociatedUser(id=user))
    expires = utc_now() + timedelta(hours=1)
    return Session(f"{shop}_{user}", shop, "", True, expires=expires, access_token="shpua_x",
                   online_access_info=info)  # fmt: skip


def target(storage: Any) -> Any:
    return storage.target if isinstance(storage, Awaited) else storage


async def walk(storage: Any, method: str = "sessions", *args: Any, **kwargs: Any) -> list[Any]:
    walked = getattr(target(storage), method)(*args, **kwargs)
    return [b async for b in walked] if hasattr(walked, "__aiter__") else list(walked)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with dynalite_module.fault_proxy(dynalite()) as proxy:
        yield proxy


FAST = {"config": Config(retries={"mode": "standard", "max_attempts": 2})}


# --- typed errors ------------------------------------------------------------------------


async def test_a_missing_table_and_a_missing_index_are_typed_errors(
    dynamodb_harness: Harness,
) -> None:
    absent = dynamodb_harness.dynamodb_storage(table_name=f"{dynamodb_harness.table_name}_x")
    dynamodb_harness.dynamodb_tables.remove(f"{dynamodb_harness.table_name}_x")
    dynamodb_harness.dynamodb_client().delete_table(TableName=f"{dynamodb_harness.table_name}_x")
    with pytest.raises(MissingSessionTableError, match="create_table"):
        await absent.load_session("any")
    with pytest.raises(MissingSessionTableError):
        await absent.check_table()

    client = dynamodb_harness.dynamodb_client()
    bare = f"{dynamodb_harness.table_name}_bare"
    client.create_table(
        TableName=bare,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb_harness.dynamodb_tables.append(bare)
    storage = dynamodb_harness.dynamodb_storage(table_name=bare)
    await storage.store_session(offline())  # the table holds items all the same
    with pytest.raises(SessionTableSchemaError, match="shop_index"):
        await storage.find_sessions_by_shop(SHOP)
    with pytest.raises(SessionTableSchemaError) as raised:
        await storage.check_table()
    assert raised.value.problems == ("it has no global secondary index shop_index on shop",)
    with pytest.raises(SessionTableSchemaError):
        await storage.create_table()  # exists, and cannot hold sessions as Node reads them


async def test_an_item_that_is_no_session_is_a_typed_error(dynamodb_harness: Harness) -> None:
    storage, client = dynamodb_harness.storage(), dynamodb_harness.dynamodb_client()
    table = dynamodb_harness.table_name
    junk = {
        "no-shop": {"id": {"S": "no-shop"}, "accessToken": {"S": TOKEN}},
        "bad-flag": {"id": {"S": "bad-flag"}, "shop": {"S": SHOP}, "isOnline": {"N": "1"}},
        "bad-date": {"id": {"S": "bad-date"}, "shop": {"S": SHOP}, "expires": {"S": "soon"}},
    }
    for item in junk.values():
        client.put_item(TableName=table, Item=item)
    for id in junk:
        with pytest.raises(SessionDataError) as raised:
            await storage.load_session(id)
        assert TOKEN not in str(raised.value)
    with pytest.raises(SessionDataError):
        await storage.find_sessions_by_shop(SHOP)  # bad-flag and bad-date are indexed
    with pytest.raises(InvalidSessionError, match="locks"):
        await storage.load_session("lock:offline_x.myshopify.com")


async def test_throttling_is_retried_then_a_typed_error(
    dynamodb_harness: Harness, proxy: FaultProxy
) -> None:
    storage = dynamodb_harness.storage(endpoint=proxy.endpoint)
    proxy.faults.throttle["PutItem"] = 1  # one refusal: botocore backs off and tries again
    assert await storage.store_session(offline()) is True
    assert proxy.faults.seen["PutItem"] == 2
    impatient = dynamodb_harness.storage(endpoint=proxy.endpoint, client_options=FAST)
    proxy.faults.throttle["*"] = 10
    with pytest.raises(StorageUnavailableError, match="throttled") as raised:
        await impatient.load_session(offline().id)
    assert "ProvisionedThroughputExceededException" in str(raised.value)
    assert raised.value.__cause__ is not None


async def test_a_dropped_connection_is_retried_and_writes_stay_right(
    dynamodb_harness: Harness, proxy: FaultProxy
) -> None:
    """A connection lost before the answer: botocore sends the request again. When the
    lost request had done its write, the second one meets its own work: a store writes the
    same item, a replace finds its pair stored (True), a lock finds itself the owner."""
    storage = dynamodb_harness.storage(endpoint=proxy.endpoint)
    old = offline(refresh_token="shprt_old")
    proxy.faults.drop_before["PutItem"] = 1
    assert await storage.store_session(old) is True
    renewed = offline(access_token="shpat_new", refresh_token="shprt_new")
    proxy.faults.drop_after["PutItem"] = 1
    assert await storage.replace_session(renewed, previous=old) is True
    assert await storage.load_session(old.id) == renewed
    proxy.faults.drop_after["PutItem"] = 1
    locker = target(storage)
    if isinstance(storage, Awaited):
        with locker.lock_session(old.id, timeout=5):
            pass
    else:
        async with locker.lock_session(old.id, timeout=5):
            pass
    assert proxy.faults.seen["DeleteItem"] == 1  # taken in one go, released by its owner
    impatient = dynamodb_harness.storage(endpoint=proxy.endpoint, client_options=FAST)
    proxy.faults.drop_before["*"] = 10
    with pytest.raises(StorageUnavailableError, match="unreachable"):
        await impatient.load_session(old.id)


def test_an_endpoint_that_is_down_or_silent_is_unavailable() -> None:
    options = {**dynalite_module.CREDENTIALS, **FAST}
    down = DynamoDBSessionStorage(
        "shopify_sessions",
        endpoint_url="http://127.0.0.1:1",
        region_name="us-east-1",
        client_options=options,
    )
    with pytest.raises(StorageUnavailableError) as raised:
        down.store_session(offline())
    assert raised.value.__cause__ is not None and TOKEN not in str(raised.value)
    down.close()
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        quick = Config(read_timeout=0.3, connect_timeout=0.3, retries={"max_attempts": 1})
        stalled = DynamoDBSessionStorage(
            "shopify_sessions",
            endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
            region_name="us-east-1",
            client_options={**dynalite_module.CREDENTIALS, "config": quick},
        )
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError, match="Timeout"):
            stalled.load_session("any")
        assert time.monotonic() - started < 10
        stalled.close()


# --- better than Node: every page, every key, read consistently -------------------------


async def test_a_shop_past_one_page_of_its_index_loses_no_session(
    dynamodb_harness: Harness, proxy: FaultProxy
) -> None:
    """1,300 sessions of one shop with ids of 1,000 bytes: 1.3 MB of index keys, past the
    1 MB a Query page holds (the Node adapter reads the first page only). Every page is
    read, and every key of the BatchGetItems, though DynamoDB (here the proxy) leaves
    most of them unprocessed at first; deletes left unprocessed are sent again too."""
    storage = dynamodb_harness.storage(endpoint=proxy.endpoint)
    client, table = dynamodb_harness.dynamodb_client(), dynamodb_harness.table_name
    ids = many_ids(SHOP, 1_300, 1_000)
    node_item = {"shop": {"S": SHOP}, "state": {"S": ""}, "isOnline": {"BOOL": False}}
    for start in range(0, len(ids), 25):
        chunk = ids[start : start + 25]
        writes = [{"PutRequest": {"Item": {"id": {"S": id}, **node_item}}} for id in chunk]
        client.batch_write_item(RequestItems={table: writes})
    proxy.faults.batch_processed, proxy.faults.batch_cuts = 30, 6
    found = await storage.find_sessions_by_shop(SHOP)
    assert sorted(s.id for s in found) == ids
    assert proxy.faults.seen["Query"] >= 2
    assert proxy.faults.seen["BatchGetItem"] == 14 + 5  # 1,301 keys (the offline id too)
    proxy.faults.batch_processed, proxy.faults.batch_cuts = 10, 6
    await storage.delete_sessions(ids[:200])
    assert len(await storage.find_sessions_by_shop(SHOP)) == 1_100


async def test_every_read_of_an_item_is_consistent(
    dynamodb_harness: Harness, proxy: FaultProxy
) -> None:
    storage = dynamodb_harness.storage(endpoint=proxy.endpoint)
    old = offline(refresh_token="shprt_old")
    await storage.store_session(old)
    await storage.load_session(old.id)
    await storage.replace_session(offline(refresh_token="shprt_new"), previous=old)
    await storage.find_sessions_by_shop(SHOP)
    await walk(storage, "sessions_due_for_refresh", utc_now())
    reads = [(op, body) for op, body in proxy.faults.sent if op in ("GetItem", "Scan")]
    reads += [
        (op, request)
        for op, body in proxy.faults.sent
        if op == "BatchGetItem"
        for request in body["RequestItems"].values()
    ]
    assert {op for op, _ in reads} == {"GetItem", "Scan", "BatchGetItem"}
    assert all(body.get("ConsistentRead") is True for _, body in reads)


async def test_the_index_lag_and_app_uninstalled(
    dynamodb_harness: Harness, proxy: FaultProxy
) -> None:
    """The index is eventually consistent: sessions written a moment before the
    ``app/uninstalled`` webhook may not be in it yet (the proxy hides them). The offline
    session is deleted all the same (its id is known, and read with the others); an online
    session the index does not list yet outlives the uninstall, as the docs say (its token
    died with the uninstall; it expires within a day)."""
    from shopify_sessions.webhooks import apply_webhook, apply_webhook_async

    storage = dynamodb_harness.storage(endpoint=proxy.endpoint)
    sessions = [offline(), online(1), online(2)]
    for session in sessions:
        await storage.store_session(session)
    proxy.faults.lagging_ids = {sessions[0].id, sessions[2].id}
    payload = {"domain": SHOP}
    if isinstance(storage, Awaited):
        result = apply_webhook(storage.target, topic="app/uninstalled", shop=SHOP, payload=payload)
    else:
        result = await apply_webhook_async(
            storage, topic="app/uninstalled", shop=SHOP, payload=payload
        )
    assert sorted(result.session_ids) == sorted([sessions[0].id, sessions[1].id])
    assert await storage.load_session(sessions[0].id) is None
    assert await storage.load_session(sessions[2].id) == sessions[2]


async def test_legacy_sessions_are_the_offline_ones_that_never_expire(
    dynamodb_harness: Harness,
) -> None:
    storage = dynamodb_harness.storage()
    legacy = [offline(f"offline_l{n}.myshopify.com", f"l{n}.myshopify.com") for n in range(5)]
    others = [
        offline("offline_e.myshopify.com", "e.myshopify.com", expires=utc_now()),
        offline("offline_r.myshopify.com", "r.myshopify.com", refresh_token="shprt"),
        online(1),
    ]
    for session in [*legacy, *others]:
        await storage.store_session(session)
    batches = await walk(storage, "legacy_sessions", batch_size=2)
    assert all(0 < len(batch) <= 2 for batch in batches)
    assert sorted(s.id for batch in batches for s in batch) == sorted(s.id for s in legacy)


# --- the lease lock ----------------------------------------------------------------------


async def test_locks_are_invisible_to_the_index_and_to_walks(dynamodb_harness: Harness) -> None:
    storage, client = dynamodb_harness.storage(), dynamodb_harness.dynamodb_client()
    session = offline()
    await storage.store_session(session)
    manager = target(storage).lock_session(session.id)
    if isinstance(storage, Awaited):
        manager.__enter__()
    else:
        await manager.__aenter__()
    try:
        held = client.scan(TableName=dynamodb_harness.table_name)["Items"]
        assert sorted(item["id"]["S"] for item in held) == [f"lock:{session.id}", session.id]
        indexed = client.query(
            TableName=dynamodb_harness.table_name,
            IndexName="shop_index",
            KeyConditionExpression="shop = :shop",
            ExpressionAttributeValues={":shop": {"S": SHOP}},
        )["Items"]
        assert [item["id"]["S"] for item in indexed] == [session.id]
        assert [s.id for batch in await walk(storage) for s in batch] == [session.id]
        with pytest.raises(InvalidSessionError):
            await storage.store_session(offline(f"lock:{session.id}"))
    finally:
        if isinstance(storage, Awaited):
            manager.__exit__(None, None, None)
        else:
            await manager.__aexit__(None, None, None)
    left = client.scan(TableName=dynamodb_harness.table_name)["Items"]
    assert [item["id"]["S"] for item in left] == [session.id]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from shopify_sessions.dynamodb import DynamoDBSessionStorage
    storage = DynamoDBSessionStorage(sys.argv[1], lock_lease=1.0)
    with storage.lock_session("offline_dead.myshopify.com"):
        print("held", flush=True)
        time.sleep(120)
    """
)


async def test_a_dead_holder_frees_the_lock_when_its_lease_ends(dynamodb_harness: Harness) -> None:
    storage = dynamodb_harness.storage()
    url = dynalite().url(dynamodb_harness.table_name)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **dynalite_module.CREDENTIALS_ENV},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeoutError):
            await _hold(storage, "offline_dead.myshopify.com", 0.2)
        holder.kill()  # SIGKILL: no finally, no release
        holder.wait(10)
        started = time.monotonic()
        await _hold(storage, "offline_dead.myshopify.com", 10)
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


async def _hold(storage: Any, id: str, timeout: float) -> None:
    if isinstance(storage, Awaited):

        def take() -> None:
            with storage.target.lock_session(id, timeout=timeout):
                pass

        await asyncio.to_thread(take)
    else:
        async with storage.lock_session(id, timeout=timeout):
            pass


async def test_a_held_lock_is_renewed_and_a_lost_one_is_not_released_by_its_old_holder(
    dynamodb_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A holder working past its lease keeps the lock (its heartbeat renews it); a holder
    whose lease was lost (the item removed, as a lease run out and taken would be) never
    deletes the lock someone else took since, and says so."""
    storage = dynamodb_harness.storage(lock_lease=1.0)
    other = dynamodb_harness.storage(lock_lease=30)
    first, second = target(storage), target(other)
    id = "offline_l.myshopify.com"
    client = dynamodb_harness.dynamodb_client()
    key = {"TableName": dynamodb_harness.table_name, "Key": {"id": {"S": f"lock:{id}"}}}
    with caplog.at_level(logging.WARNING):
        if isinstance(storage, Awaited):
            with first.lock_session(id):
                time.sleep(2.5)  # past the lease of 1 s: renewed meanwhile
                with pytest.raises(LockTimeoutError), second.lock_session(id, timeout=0.3):
                    pass
                client.delete_item(**key)  # the lease is lost
                manager = second.lock_session(id, timeout=1)
                manager.__enter__()
            assert "Item" in client.get_item(**key)  # the old holder left it alone
            manager.__exit__(None, None, None)
        else:
            async with first.lock_session(id):
                await asyncio.sleep(2.5)
                with pytest.raises(LockTimeoutError):
                    async with second.lock_session(id, timeout=0.3):
                        pass
                client.delete_item(**key)
                manager = second.lock_session(id, timeout=1)
                await manager.__aenter__()
            assert "Item" in client.get_item(**key)
            await manager.__aexit__(None, None, None)
    assert "Item" not in client.get_item(**key)
    assert any("lease" in r.getMessage() for r in caplog.records)


# --- tokens: encrypted at rest, never logged ---------------------------------------------


async def test_tokens_encrypted_at_rest_and_compared_in_clear(dynamodb_harness: Harness) -> None:
    from cryptography.fernet import Fernet

    from shopify_sessions import FernetTokenCipher, TokenDecryptionError

    key = Fernet.generate_key()
    storage = dynamodb_harness.storage(token_cipher=FernetTokenCipher({"k1": key}))
    plain = dynamodb_harness.storage()
    old = offline(refresh_token="shprt_DYNAMO_SECRET")
    await storage.store_session(old)
    item = dynamodb_harness.dynamodb_client().get_item(
        TableName=dynamodb_harness.table_name, Key={"id": {"S": old.id}}
    )["Item"]
    assert item["accessToken"]["S"].startswith("fernet:k1:")
    assert item["refreshToken"]["S"].startswith("fernet:k1:") and "SECRET" not in str(item)
    assert await storage.load_session(old.id) == old
    assert (await plain.load_session(old.id)).access_token.startswith("fernet:k1:")
    renewed = offline(access_token="shpat_renewed", refresh_token="shprt_renewed")
    assert await storage.replace_session(renewed, previous=old) is True
    assert await storage.replace_session(offline(access_token="x"), previous=old) is False
    assert await storage.load_session(old.id) == renewed
    stranger = dynamodb_harness.storage(
        token_cipher=FernetTokenCipher({"k9": Fernet.generate_key()})
    )
    with pytest.raises(TokenDecryptionError):
        await stranger.load_session(old.id)
    rotated = dynamodb_harness.storage(
        token_cipher=FernetTokenCipher(
            {"k2": Fernet.generate_key(), "k1": key}, read_plaintext_tokens=True
        )
    )
    await plain.store_session(offline("offline_plain.myshopify.com", "plain.myshopify.com"))
    assert await target_call(rotated, "reencrypt_tokens") == 2
    assert await target_call(rotated, "reencrypt_tokens") == 0
    assert (await plain.load_session(old.id)).access_token.startswith("fernet:k2:")


async def target_call(storage: Any, method: str) -> Any:
    return await getattr(storage, method)()


def _every_logger_at_debug() -> list[tuple[logging.Logger, int]]:
    """Every logger there is, and the root, at DEBUG; their levels before."""
    names = ["", *logging.root.manager.loggerDict]
    loggers = [logging.getLogger(name) for name in names]
    before = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    return before


async def test_no_token_or_aws_secret_in_any_log_at_debug(
    dynamodb_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Every logger at DEBUG (botocore logs each request's body and each answer's): the
    sessions' tokens, the request signature and the session credentials' security token
    never reach a record. And without the filter they would: the test can fail."""
    secret_options = {"client_options": {"aws_session_token": "AWS_SESSION_SECRET"}}
    before = _every_logger_at_debug()
    caplog.set_level(logging.DEBUG)
    try:
        storage = dynamodb_harness.storage(**secret_options)
        session = offline(refresh_token="shprt_DYNAMO_SECRET")
        await storage.store_session(session)
        renewed = offline(access_token="shpat_2_DYNAMO_SECRET", refresh_token="shprt_2")
        assert await storage.replace_session(renewed, previous=session)
        assert await storage.load_session(session.id) == renewed
        assert await storage.find_sessions_by_shop(SHOP) == [renewed]
        await walk(storage)
        messages = [record.getMessage() for record in caplog.records]
        assert any(m.startswith("Response body") for m in messages)  # botocore did log
        assert not [m for m in messages if "SECRET" in m or "Signature=" in m]
        assert "SECRET" not in caplog.text

        caplog.clear()
        for name in _redact.LOGGERS:
            logging.getLogger(name).removeFilter(_redact._FILTER)
        await storage.store_session(session)
        assert any("DYNAMO_SECRET" in record.getMessage() for record in caplog.records)
    finally:
        _redact.install()
        for logger, level in before:
            logger.setLevel(level)


# --- construction ------------------------------------------------------------------------


def test_construction_from_a_url_a_table_name_or_a_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    url = (
        "dynamodb://my-table.v2?region=eu-west-1&endpoint_url=http://127.0.0.1:9&shop_index=by_shop"
    )
    storage = DynamoDBSessionStorage(url)
    assert (storage.table_name, storage.shop_index) == ("my-table.v2", "by_shop")
    assert DynamoDBSessionStorage("dynamodb://?region=eu-west-1").table_name == "shopify_sessions"
    assert DynamoDBSessionStorage(region_name="eu-west-1").shop_index == "shop_index"
    with pytest.raises(DatabaseURLError, match="region"):
        DynamoDBSessionStorage("shopify_sessions")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")  # what the AWS SDKs of Node read
    assert DynamoDBSessionStorage("dynamodb://t12")._plan.options["region_name"] == "ap-south-1"
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(DatabaseURLError, match="takes"):
        DynamoDBSessionStorage("dynamodb://t12?region=x&password=y")
    with pytest.raises(DatabaseURLError):
        DynamoDBSessionStorage("redis://localhost/0")
    with pytest.raises(ValueError, match="table_name"):
        DynamoDBSessionStorage("no", region_name="eu-west-1")
    client = boto3.client("dynamodb", region_name="eu-west-1", **dynalite_module.CREDENTIALS)
    assert DynamoDBSessionStorage("t12", client=client).client is client
    with pytest.raises(TypeError, match="a boto3 client goes with DynamoDBSessionStorage"):
        AsyncDynamoDBSessionStorage("t12", client=client)
    with pytest.raises(TypeError, match="not with a client"):
        DynamoDBSessionStorage("t12", client=client, endpoint_url="http://x")
    with pytest.raises(TypeError, match=r"meta\.client"):
        DynamoDBSessionStorage("t12", client=boto3.resource("dynamodb", region_name="eu-west-1"))
    with pytest.raises(TypeError, match="client of s3"):
        DynamoDBSessionStorage("t12", client=boto3.client("s3", region_name="eu-west-1"))
    client.close()


async def test_an_aiobotocore_client_of_the_app_is_used_and_left_open(
    dynamodb_harness: Harness,
) -> None:
    from aiobotocore.session import get_session

    server = dynalite()
    dynamodb_harness.dynamodb_storage()  # the table
    async with get_session().create_client(
        "dynamodb",
        endpoint_url=server.endpoint,
        region_name=dynalite_module.REGION,
        **dynalite_module.CREDENTIALS,
    ) as client:
        with pytest.raises(TypeError, match="goes with AsyncDynamoDBSessionStorage"):
            DynamoDBSessionStorage(dynamodb_harness.table_name, client=client)
        async with AsyncDynamoDBSessionStorage(dynamodb_harness.table_name, client=client) as s:
            await s.store_session(offline())
        assert (await client.get_item(TableName=dynamodb_harness.table_name,
                                      Key={"id": {"S": offline().id}}))["Item"]  # fmt: skip


async def test_no_altered_character_of_a_stored_token_reads_as_a_token(
    dynamodb_harness: Harness,
) -> None:
    from cryptography.fernet import Fernet

    from shopify_sessions import FernetTokenCipher, TokenDecryptionError

    cipher = FernetTokenCipher({"k1": Fernet.generate_key()})
    storage = dynamodb_harness.storage(token_cipher=cipher)
    session = offline()
    await storage.store_session(session)
    client, name = dynamodb_harness.dynamodb_client(), dynamodb_harness.table_name
    item = client.get_item(TableName=name, Key={"id": {"S": session.id}})["Item"]
    stored = item["accessToken"]["S"]
    planted = ["shpat_planted", "Aernet:k1:" + stored[len("fernet:k1:") :]]
    values = [*tampered(stored), *planted]
    for value in values:
        client.put_item(TableName=name, Item={**item, "accessToken": {"S": value}})
        with pytest.raises(TokenDecryptionError) as raised:
            await storage.load_session(session.id)
        assert TOKEN not in str(raised.value) and "planted" not in str(raised.value)
    assert len(values) > 2 * len(stored)
