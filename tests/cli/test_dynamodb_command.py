"""The command on DynamoDB (``--url dynamodb://<table>?region=...&endpoint_url=...``), run
as a user runs it against the tests' dynalite: init (and its AWS CLI input), check,
upgrade, purge, reencrypt, copy both ways between SQL or Redis and DynamoDB (resumable),
refresh-expiring and migrate-legacy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from test_command import NOW, SHOP, population
from test_lifecycle_commands import at, environment
from test_redis_command import Keys

import dynalite as dynalite_module
from command import run
from conftest import REDIS_URL, dynalite, require_server
from shopify_sessions import FernetTokenCipher, Session, offline_session_id
from shopify_sessions.dynamodb import DynamoDBSessionStorage
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
from shopify_sessions.testing import FakeShopify

AWS = dynalite_module.CREDENTIALS_ENV


class Table:
    """A DynamoDB table of the test's own in the tests' dynalite, deleted afterwards."""

    def __init__(self) -> None:
        self.name = f"cli_{uuid.uuid4().hex[:10]}"
        self.url = dynalite().url(self.name)

    def storage(self, **options: object) -> DynamoDBSessionStorage:
        return DynamoDBSessionStorage(
            self.url,
            client_options=dynalite_module.CREDENTIALS,
            **options,  # type: ignore[arg-type]
        )

    def create(self) -> None:
        storage = self.storage()
        storage.create_table()
        storage.close()

    def drop(self) -> None:
        client = dynalite().client()
        if self.name in client.list_tables()["TableNames"]:
            client.delete_table(TableName=self.name)
        client.close()


@pytest.fixture
def table() -> Iterator[Table]:
    require_server("dynamodb")
    place = Table()
    yield place
    place.drop()


def test_init_creates_the_table_and_its_index_once(table: Table) -> None:
    missing = run("check", "--json", env=AWS, url=table.url)
    assert missing.code == 4 and "shopify-sessions init" in missing.json["error"]["message"]
    printed = run("init", "--sql", "--json", env=AWS, url=table.url)
    assert printed.code == 0
    index = printed.json["create_table"]["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == "shop_index"
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert run("check", env=AWS, url=table.url).code == 4  # --sql created nothing
    done = run("init", "--json", env=AWS, url=table.url)
    assert (done.code, done.json["created"]) == (0, True), done.stderr
    again = run("init", env=AWS, url=table.url)
    assert again.code == 0 and "already exists" in again.stdout
    upgraded = run("upgrade", "--json", env=AWS, url=table.url)
    assert (upgraded.code, upgraded.json["applied"]) == (0, False)


def test_check_counts_the_sessions_and_names_a_table_it_cannot_use(table: Table) -> None:
    table.create()
    storage = table.storage()
    for session in population():
        storage.store_session(session)
    with storage.lock_session(population()[0].id):
        done = run("check", "--json", env=AWS, url=table.url)
    storage.close()
    assert done.code == 0, done.stderr
    assert done.json["store"] == "dynamodb" and done.json["table"] == table.name
    assert done.json["sessions"]["total"] == len(population())  # the lock is no session
    assert "lease" in done.json["lock"]["mechanism"]
    client = dynalite().client()
    bare = f"{table.name}_bare"
    client.create_table(
        TableName=bare,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        unusable = run("check", "--json", env=AWS, url=dynalite().url(bare))
        assert unusable.code == 5
        assert unusable.json["problems"] == ["it has no global secondary index shop_index on shop"]
    finally:
        client.delete_table(TableName=bare)
        client.close()
    down = "dynamodb://t12?region=us-east-1&endpoint_url=http://127.0.0.1:1"
    assert run("check", "--json", env=AWS, url=down).code == 3


def test_purge_with_grace_and_dry_run(table: Table) -> None:
    table.create()
    storage = table.storage()
    for session in population():
        storage.store_session(session)
    recent = Session(
        f"{SHOP}_44", SHOP, "", True, expires=NOW - timedelta(hours=2), access_token="shpua_5"
    )
    storage.store_session(recent)
    dry = run("purge", "--grace", "1d", "--dry-run", "--json", env=AWS, url=table.url)
    assert dry.code == 0, dry.stderr
    assert (dry.json["would_delete"], dry.json["deleted"]) == (1, 0)
    purged = run("purge", "--grace", "1d", "--json", env=AWS, url=table.url)
    assert (purged.code, purged.json["deleted"]) == (0, 1)
    assert storage.load_session(f"{SHOP}_43") is None
    assert storage.load_session(recent.id) is not None
    storage.close()


def test_reencrypt_with_keys_from_the_environment(table: Table) -> None:
    table.create()
    storage = table.storage()
    sessions = population()
    for session in sessions:
        storage.store_session(session)
    storage.close()
    key = Fernet.generate_key().decode()
    env = {**AWS, "SHOPIFY_SESSIONS_KEYS": f"k1:{key}"}
    done = run("reencrypt", "--json", env=env, url=table.url)
    assert done.code == 0, done.stderr
    assert done.json["rewritten"] == sum(1 for s in sessions if s.access_token or s.refresh_token)
    assert run("reencrypt", "--json", env=env, url=table.url).json["rewritten"] == 0
    encrypted = table.storage(token_cipher=FernetTokenCipher({"k1": key}))
    for session in sessions:
        assert encrypted.load_session(session.id) == session
    encrypted.close()


def test_copy_sql_to_dynamodb_and_back_and_redis_to_dynamodb(table: Table, tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    assert run("init", url=source_url).code == 0
    source = SQLAlchemySessionStorage(source_url)
    sessions = population()
    for session in sessions:
        source.store_session(session)
    to_dynamodb = ("copy", source_url, table.url, "--json")
    done = run(*to_dynamodb, env=AWS)
    assert done.code == 0, done.stderr
    assert (done.json["copied"], done.json["different"]) == (len(sessions), 0)
    assert (done.json["target_created"], done.json["target_layout"]) == (True, "node-dynamodb")
    again = run(*to_dynamodb, env=AWS)  # again: resumable, idempotent
    assert (again.json["copied"], again.json["target_created"]) == (len(sessions), False)
    storage = table.storage()
    assert sorted(s.id for s in storage.find_sessions_by_shop(SHOP)) == sorted(
        s.id for s in sessions if s.shop == SHOP
    )
    storage.close()

    back_url = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    back = run("copy", table.url, back_url, "--json", env=AWS)
    assert back.code == 0, back.stderr
    assert (back.json["copied"], back.json["target_created"]) == (len(sessions), True)
    assert back.json["verified_equal"] + back.json["verified_equivalent"] == len(sessions)
    target = SQLAlchemySessionStorage(back_url)
    for session in sessions:
        assert target.load_session(session.id) == source.load_session(session.id)
    target.close()
    source.close()
    assert run("copy", table.url, table.url, env=AWS).code == 2

    require_server("redis")
    keys = Keys(REDIS_URL)
    try:
        to_redis = run("copy", table.url, keys.url, "--target-key-prefix", keys.prefix,
                       "--json", env=AWS)  # fmt: skip
        assert (to_redis.code, to_redis.json["verified_equal"]) == (0, len(sessions))
        other = Table()
        try:
            from_redis = run("copy", keys.url, other.url, "--source-key-prefix", keys.prefix,
                             "--json", env=AWS)  # fmt: skip
            assert from_redis.code == 0, from_redis.stderr
            assert from_redis.json["verified_equal"] == len(sessions)
        finally:
            other.drop()
    finally:
        keys.drop()


def test_refresh_expiring_and_migrate_legacy(
    table: Table, fake_shopify: FakeShopify, shop: str
) -> None:
    table.create()
    name = shop.removesuffix(".myshopify.com")
    due, idle, legacy = (f"{name}-{n}.myshopify.com" for n in range(3))
    storage = table.storage()
    seeded = {
        due: fake_shopify.seed_offline(due, refresh_token_expires_in=2 * 86400),
        idle: fake_shopify.seed_offline(idle),
        legacy: fake_shopify.seed_offline(legacy, legacy=True),
    }
    for session in seeded.values():
        storage.store_session(session)
    env = {**environment(fake_shopify), **AWS}
    refreshed = run("refresh-expiring", "--json", *at(fake_shopify), env=env, url=table.url)
    assert refreshed.code == 0, refreshed.stderr
    assert refreshed.json["refreshed"] == [due]
    renewed = storage.load_session(offline_session_id(due))
    assert renewed is not None and renewed.refresh_token != seeded[due].refresh_token
    migrated = run("migrate-legacy", "--json", *at(fake_shopify), env=env, url=table.url)
    assert migrated.code == 0, migrated.stderr
    assert migrated.json["migrated"] == [legacy]
    after = storage.load_session(offline_session_id(legacy))
    assert after is not None and after.refresh_token and after.expires
    assert fake_shopify.counters(legacy).exchange_requests == 1
    for session in seeded.values():
        assert session.access_token not in refreshed.stdout + migrated.stdout
    storage.close()
