"""refresh-expiring and migrate-legacy, run as a user runs them (a subprocess, real
databases), against FakeShopify: every dialect, exit codes, --json, no tokens."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_command import SERVERS, Database, open_database

from command import COMMAND, Run, run
from shopify_sessions import offline_session_id
from shopify_sessions.testing import FakeShopify

ROUTING = str(Path(__file__).with_name("routing"))


@pytest.fixture(params=SERVERS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    database = open_database(request.param, tmp_path)
    created = run("init", "--table", database.table, url=database.url)
    assert created.code == 0, created.stderr
    yield database
    database.drop()
    database.raw.dispose()


def environment(fake_shopify: FakeShopify) -> dict[str, str]:
    return {
        "SHOPIFY_API_KEY": fake_shopify.client_id,
        "SHOPIFY_API_SECRET": fake_shopify.client_secret,
        "FAKE_SHOPIFY_URL": fake_shopify.url,
        "PYTHONPATH": ROUTING,
    }


def lifecycle(db: Database, fake_shopify: FakeShopify, *args: str) -> Run:
    return run(*args, "--table", db.table, env=environment(fake_shopify), url=db.url)


def test_refresh_expiring(db: Database, fake_shopify: FakeShopify, shop: str) -> None:
    name = shop.removesuffix(".myshopify.com")
    due, idle, gone = (f"{name}-{n}.myshopify.com" for n in range(3))
    seeded = {
        due: fake_shopify.seed_offline(due, refresh_token_expires_in=2 * 86400),
        idle: fake_shopify.seed_offline(idle),
        gone: fake_shopify.seed_offline(gone, refresh_token_expires_in=86400),
    }
    storage = db.storage()
    for session in seeded.values():
        storage.store_session(session)
    fake_shopify.fail(gone, "invalid_grant")

    first = lifecycle(db, fake_shopify, "refresh-expiring", "--within", "7d", "--json")
    assert first.code == 1, first.stderr
    assert first.json["refreshed"] == [due]
    assert first.json["reauthorization_required"] == [gone]
    assert first.json["failed"] == {}
    renewed = storage.load_session(offline_session_id(due))
    assert renewed is not None and renewed.refresh_token != seeded[due].refresh_token
    assert storage.load_session(offline_session_id(idle)) == seeded[idle]
    for session in seeded.values():
        for token in (session.access_token, session.refresh_token):
            assert token and token not in first.stdout + first.stderr

    storage.delete_session(offline_session_id(gone))
    second = lifecycle(db, fake_shopify, "refresh-expiring")
    assert second.code == 0, second.stderr
    assert "refreshed 0 of 0 session(s)" in second.stdout
    storage.close()


def test_migrate_legacy(db: Database, fake_shopify: FakeShopify, shop: str) -> None:
    name = shop.removesuffix(".myshopify.com")
    first_shop, second_shop, expiring_shop = (f"{name}-{n}.myshopify.com" for n in range(3))
    storage = db.storage()
    legacy = {s: fake_shopify.seed_offline(s, legacy=True) for s in (first_shop, second_shop)}
    for session in legacy.values():
        storage.store_session(session)
    expiring = fake_shopify.seed_offline(expiring_shop)
    storage.store_session(expiring)

    listed = lifecycle(db, fake_shopify, "migrate-legacy", "--dry-run", "--json")
    assert listed.code == 0, listed.stderr
    assert sorted(listed.json["legacy"]) == sorted(legacy)

    # Two copies at once, as two cron hosts might: one exchange per shop all the same.
    command = [COMMAND, "migrate-legacy", "--table", db.table, "--json"]
    env = {**environment(fake_shopify), "DATABASE_URL": db.url}
    both = [
        subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    for shop_name, session in legacy.items():
        assert fake_shopify.counters(shop_name).exchange_requests == 1
        migrated = storage.load_session(session.id)
        assert migrated is not None and migrated.refresh_token and migrated.expires
        assert not fake_shopify.accepts(shop_name, session.access_token)
        assert fake_shopify.accepts(shop_name, migrated.access_token)
        assert session.access_token not in "".join(outputs)
    assert storage.load_session(expiring.id) == expiring
    assert fake_shopify.counters(expiring_shop).exchange_requests == 0

    again = lifecycle(db, fake_shopify, "migrate-legacy", first_shop, "--json")
    assert again.code == 0, again.stderr
    assert (again.json["migrated"], again.json["skipped"]) == ([], [first_shop])
    assert fake_shopify.counters(first_shop).exchange_requests == 1
    storage.close()


def test_missing_credentials_are_a_usage_error(db: Database) -> None:
    result = run("refresh-expiring", "--table", db.table, "--json", url=db.url)
    assert result.code == 2
    assert "SHOPIFY_API_KEY is not set" in result.json["error"]["message"]
