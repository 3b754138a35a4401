"""The command on Redis (``--url redis://...``), run as a user runs it: check, purge,
reencrypt, copy both ways between SQL and Redis (and onto the cluster), refresh-expiring
and migrate-legacy; init and upgrade have nothing to create."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from test_command import NOW, SHOP, population
from test_lifecycle_commands import at, environment

from command import run
from conftest import REDIS_URL, require_server
from redis_cluster import RedisCluster
from shopify_sessions import Session, offline_session_id
from shopify_sessions.redis import RedisSessionStorage
from shopify_sessions.redis._client import client_from_url, close_client
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
from shopify_sessions.testing import FakeShopify


class Keys:
    """A key prefix of the test's own on one Redis (or the cluster), removed afterwards."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"cli_{uuid.uuid4().hex[:10]}"

    def storage(self, **options: object) -> RedisSessionStorage:
        return RedisSessionStorage(self.url, key_prefix=self.prefix, **options)  # type: ignore[arg-type]

    def drop(self) -> None:
        client = client_from_url(self.url, is_async=False, options=None)
        for key in list(client.scan_iter(match=self.prefix.replace("_", "[_]") + "*")):
            client.delete(key)
        close_client(client)


@pytest.fixture
def keys() -> Iterator[Keys]:
    require_server("redis")
    place = Keys(REDIS_URL)
    yield place
    place.drop()


def test_init_and_upgrade_have_nothing_to_create(keys: Keys) -> None:
    for command in ("init", "upgrade"):
        done = run(command, "--json", url=keys.url)
        assert done.code == 0, done.stderr
        assert done.json["store"] == "redis"
        human = run(command, url=keys.url)
        assert "Redis needs no table" in human.stdout


def test_check_counts_the_sessions(keys: Keys) -> None:
    storage = keys.storage()
    for session in population():
        storage.store_session(session)
    storage.close()
    done = run("check", "--key-prefix", keys.prefix, "--json", url=keys.url)
    assert done.code == 0, done.stderr
    assert done.json["sessions"]["total"] == len(population())
    assert done.json["key_prefix"] == keys.prefix
    assert run("check", "--json", url="redis://127.0.0.1:1/0").code == 3


def test_purge_with_grace_and_dry_run(keys: Keys) -> None:
    storage = keys.storage()
    for session in population():
        storage.store_session(session)
    recent = Session(
        f"{SHOP}_44", SHOP, "", True, expires=NOW - timedelta(hours=2), access_token="shpua_5"
    )
    storage.store_session(recent)
    options = ("--key-prefix", keys.prefix, "--grace", "1d")
    dry = run("purge", *options, "--dry-run", "--json", url=keys.url)
    assert dry.code == 0, dry.stderr
    assert (dry.json["would_delete"], dry.json["deleted"]) == (1, 0)
    purged = run("purge", *options, "--json", url=keys.url)
    assert (purged.code, purged.json["deleted"]) == (0, 1)
    assert storage.load_session(f"{SHOP}_43") is None
    assert storage.load_session(recent.id) is not None
    assert recent.id in {s.id for s in storage.find_sessions_by_shop(SHOP)}
    storage.close()


def test_reencrypt_with_keys_from_the_environment(keys: Keys) -> None:
    storage = keys.storage()
    sessions = population()
    for session in sessions:
        storage.store_session(session)
    storage.close()
    key = Fernet.generate_key().decode()
    env = {"SHOPIFY_SESSIONS_KEYS": f"k1:{key}"}
    done = run("reencrypt", "--key-prefix", keys.prefix, "--json", env=env, url=keys.url)
    assert done.code == 0, done.stderr
    assert done.json["rewritten"] == sum(1 for s in sessions if s.access_token or s.refresh_token)
    again = run("reencrypt", "--key-prefix", keys.prefix, "--json", env=env, url=keys.url)
    assert again.json["rewritten"] == 0
    from shopify_sessions import FernetTokenCipher

    encrypted = keys.storage(token_cipher=FernetTokenCipher({"k1": key}))
    for session in sessions:
        assert encrypted.load_session(session.id) == session
    plain = keys.storage()
    assert plain.load_session(sessions[0].id).access_token.startswith("fernet:k1:")
    encrypted.close()
    plain.close()


def test_copy_sql_to_redis_and_back(keys: Keys, tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    assert run("init", url=source_url).code == 0
    source = SQLAlchemySessionStorage(source_url)
    sessions = population()
    for session in sessions:
        source.store_session(session)
    to_redis = ("copy", source_url, keys.url, "--target-key-prefix", keys.prefix, "--json")
    done = run(*to_redis)
    assert done.code == 0, done.stderr
    assert (done.json["copied"], done.json["different"]) == (len(sessions), 0)
    assert run(*to_redis).json["copied"] == len(sessions)  # again: resumable, idempotent
    storage = keys.storage()
    assert sorted(s.id for s in storage.find_sessions_by_shop(SHOP)) == sorted(
        s.id for s in sessions if s.shop == SHOP
    )
    storage.close()

    back_url = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    back = run("copy", keys.url, back_url, "--source-key-prefix", keys.prefix, "--json")
    assert back.code == 0, back.stderr
    assert (back.json["copied"], back.json["target_created"]) == (len(sessions), True)
    assert back.json["verified_equal"] + back.json["verified_equivalent"] == len(sessions)
    target = SQLAlchemySessionStorage(back_url)
    for session in sessions:
        assert target.load_session(session.id) == source.load_session(session.id)
    target.close()
    source.close()
    same = run("copy", keys.url, keys.url, "--source-key-prefix", keys.prefix,
               "--target-key-prefix", keys.prefix)  # fmt: skip
    assert same.code == 2


def test_copy_redis_to_the_cluster(keys: Keys, redis_cluster: RedisCluster) -> None:
    storage = keys.storage()
    for session in population():
        storage.store_session(session)
    storage.close()
    cluster = Keys(redis_cluster.url)
    try:
        done = run("copy", keys.url, cluster.url, "--source-key-prefix", keys.prefix,
                   "--target-key-prefix", cluster.prefix, "--json")  # fmt: skip
        assert done.code == 0, done.stderr
        assert (done.json["copied"], done.json["verified_equal"]) == (len(population()),) * 2
        check = run("check", "--key-prefix", cluster.prefix, "--json", url=cluster.url)
        assert check.json["sessions"]["total"] == len(population())
    finally:
        cluster.drop()


def test_refresh_expiring_and_migrate_legacy(
    keys: Keys, fake_shopify: FakeShopify, shop: str
) -> None:
    name = shop.removesuffix(".myshopify.com")
    due, idle, legacy = (f"{name}-{n}.myshopify.com" for n in range(3))
    storage = keys.storage()
    seeded = {
        due: fake_shopify.seed_offline(due, refresh_token_expires_in=2 * 86400),
        idle: fake_shopify.seed_offline(idle),
        legacy: fake_shopify.seed_offline(legacy, legacy=True),
    }
    for session in seeded.values():
        storage.store_session(session)
    options = ("--key-prefix", keys.prefix, "--json", *at(fake_shopify))
    refreshed = run("refresh-expiring", *options, env=environment(fake_shopify), url=keys.url)
    assert refreshed.code == 0, refreshed.stderr
    assert refreshed.json["refreshed"] == [due]
    renewed = storage.load_session(offline_session_id(due))
    assert renewed is not None and renewed.refresh_token != seeded[due].refresh_token
    migrated = run("migrate-legacy", *options, env=environment(fake_shopify), url=keys.url)
    assert migrated.code == 0, migrated.stderr
    assert migrated.json["migrated"] == [legacy]
    after = storage.load_session(offline_session_id(legacy))
    assert after is not None and after.refresh_token and after.expires
    assert fake_shopify.counters(legacy).exchange_requests == 1
    for session in seeded.values():
        assert session.access_token not in refreshed.stdout + migrated.stdout
    storage.close()
