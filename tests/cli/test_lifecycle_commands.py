"""refresh-expiring and migrate-legacy, run as a user runs them (a subprocess, real
databases), against the Shopify stand-in: every dialect, exit codes, --json, no tokens."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_command import SERVERS, Database, open_database

from command import COMMAND, Run, run
from shopify_sessions import offline_session_id
from standin import CLIENT_ID, CLIENT_SECRET
from standin_client import StandIn, admin_call

ROUTING = str(Path(__file__).with_name("routing"))


@pytest.fixture(params=SERVERS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    database = open_database(request.param, tmp_path)
    created = run("init", "--table", database.table, url=database.url)
    assert created.code == 0, created.stderr
    yield database
    database.drop()
    database.raw.dispose()


def environment(standin: StandIn) -> dict[str, str]:
    return {
        "SHOPIFY_API_KEY": CLIENT_ID,
        "SHOPIFY_API_SECRET": CLIENT_SECRET,
        "SHOPIFY_STANDIN_PORT": str(standin.port),
        "PYTHONPATH": ROUTING,
    }


def lifecycle(db: Database, standin: StandIn, *args: str) -> Run:
    return run(*args, "--table", db.table, env=environment(standin), url=db.url)


def test_refresh_expiring(db: Database, standin: StandIn, shop: str) -> None:
    standin.reset()
    name = shop.removesuffix(".myshopify.com")
    due, idle, gone = (f"{name}-{n}.myshopify.com" for n in range(3))
    seeded = {
        due: standin.seeded_session(due, refresh_expires_in=2 * 86400),
        idle: standin.seeded_session(idle),
        gone: standin.seeded_session(gone, refresh_expires_in=86400),
    }
    storage = db.storage()
    for session in seeded.values():
        storage.store_session(session)
    standin.fault(gone, "invalid_grant")

    first = lifecycle(db, standin, "refresh-expiring", "--within", "7d", "--json")
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
    second = lifecycle(db, standin, "refresh-expiring")
    assert second.code == 0, second.stderr
    assert "refreshed 0 of 0 session(s)" in second.stdout
    storage.close()


def test_migrate_legacy(db: Database, standin: StandIn, shop: str) -> None:
    standin.reset()
    name = shop.removesuffix(".myshopify.com")
    first_shop, second_shop, expiring_shop = (f"{name}-{n}.myshopify.com" for n in range(3))
    storage = db.storage()
    legacy = {s: standin.seeded_session(s, kind="legacy") for s in (first_shop, second_shop)}
    for session in legacy.values():
        storage.store_session(session)
    expiring = standin.seeded_session(expiring_shop)
    storage.store_session(expiring)

    listed = lifecycle(db, standin, "migrate-legacy", "--dry-run", "--json")
    assert listed.code == 0, listed.stderr
    assert sorted(listed.json["legacy"]) == sorted(legacy)

    # Two copies at once, as two cron hosts might: one exchange per shop all the same.
    command = [COMMAND, "migrate-legacy", "--table", db.table, "--json"]
    env = {**environment(standin), "DATABASE_URL": db.url}
    both = [
        subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    with standin.client() as client:
        for shop_name, session in legacy.items():
            assert standin.counts(shop_name)["exchange_requests"] == 1
            migrated = storage.load_session(session.id)
            assert migrated is not None and migrated.refresh_token and migrated.expires
            assert admin_call(client, shop_name, session.access_token) == 401
            assert admin_call(client, shop_name, migrated.access_token) == 200
            assert session.access_token not in "".join(outputs)
    assert storage.load_session(expiring.id) == expiring
    assert standin.counts(expiring_shop).get("exchange_requests", 0) == 0

    again = lifecycle(db, standin, "migrate-legacy", first_shop, "--json")
    assert again.code == 0, again.stderr
    assert (again.json["migrated"], again.json["skipped"]) == ([], [first_shop])
    assert standin.counts(first_shop)["exchange_requests"] == 1
    storage.close()


def test_missing_credentials_are_a_usage_error(db: Database, standin: StandIn) -> None:
    result = run("refresh-expiring", "--table", db.table, "--json", url=db.url)
    assert result.code == 2
    assert "SHOPIFY_API_KEY is not set" in result.json["error"]["message"]
