"""refresh-expiring and migrate-legacy, run as a user runs them (a subprocess, real
databases), against FakeShopify: every dialect, exit codes, --json, no tokens."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from test_command import SERVERS, Database, open_database

from command import COMMAND, Run, run
from shopify_sessions import offline_session_id
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
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


def test_copies_of_refresh_expiring_at_once_refresh_each_shop_once(
    db: Database, fake_shopify: FakeShopify, shop: str
) -> None:
    """Two cron hosts at once, each --concurrency 4: one refresh per shop, and --json says
    which copy refreshed which shop and which found it done by the other."""
    fake_shopify.reset(latency=0.02)
    name = shop.removesuffix(".myshopify.com")
    shops = sorted(f"{name}-{n:02}.myshopify.com" for n in range(16))
    storage = db.storage()
    for each in shops:
        storage.store_session(fake_shopify.seed_offline(each, refresh_token_expires_in=86400))
    command = [COMMAND, "refresh-expiring", "--table", db.table, "--json", "--concurrency", "4"]
    command += ["--batch-size", "5"]
    env = {**environment(fake_shopify), "DATABASE_URL": db.url}
    both = [
        subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    documents = [json.loads(output) for output in outputs]
    for each in shops:
        counters = fake_shopify.counters(each)
        assert (counters.refreshes, counters.reuses) == (1, 0), (each, counters)
    assert sorted(s for d in documents for s in d["refreshed"]) == shops
    for document in documents:
        assert document["concurrency"] == 4 and document["rate_limited"] == 0
        assert set(document["outcomes"].values()) <= {"refreshed", "done_elsewhere"}
        assert sorted(document["done_elsewhere"]) == sorted(
            s for s, outcome in document["outcomes"].items() if outcome == "done_elsewhere"
        )
    storage.close()


def test_a_concurrency_out_of_range_is_a_usage_error(
    db: Database, fake_shopify: FakeShopify
) -> None:
    for command in ("refresh-expiring", "migrate-legacy"):
        for value in ("0", "257", "many"):
            result = lifecycle(db, fake_shopify, command, "--concurrency", value)
            assert result.code == 2, (command, value, result.stderr)
            assert "--concurrency" in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
def test_the_progress_of_refresh_expiring_shows_in_a_terminal(
    tmp_path: Path, fake_shopify: FakeShopify
) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    storage = SQLAlchemySessionStorage(url)
    storage.create_table()
    shops = [f"bar-{tmp_path.name[-6:]}-{n}.myshopify.com" for n in range(30)]
    for each in shops:
        storage.store_session(fake_shopify.seed_offline(each, refresh_token_expires_in=86400))
    storage.close()
    leader, follower = pty.openpty()
    terminal = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    terminal.update(environment(fake_shopify))
    terminal.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [COMMAND, "refresh-expiring", "--url", url, "--concurrency", "8"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=terminal,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "refreshing" in screen and "━" in screen
    assert f"{len(shops)}/{len(shops)}" in screen
    assert f"refreshed {len(shops)} of {len(shops)} session(s)" in screen
