"""refresh-expiring and migrate-legacy, run as a user runs them (a subprocess, real
databases), against FakeShopify reached with --shopify-url: every dialect, exit codes,
--json, no tokens; and FakeShopify run on its own (``python -m shopify_sessions.testing``)."""

from __future__ import annotations

import json
import os
import pty
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from test_command import SERVERS, Database, open_database

from command import COMMAND, Run, run
from shopify_requests import unreachable_url
from shopify_sessions import offline_session_id
from shopify_sessions._time import utc_now
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
from shopify_sessions.testing import FakeShopify


@pytest.fixture(params=SERVERS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    database = open_database(request.param, tmp_path)
    created = run("init", "--table", database.table, url=database.url)
    assert created.code == 0, created.stderr
    yield database
    database.drop()
    database.raw.dispose()


def environment(fake_shopify: FakeShopify) -> dict[str, str]:
    """The app's credentials that ``fake_shopify`` accepts."""
    return {
        "SHOPIFY_API_KEY": fake_shopify.client_id,
        "SHOPIFY_API_SECRET": fake_shopify.client_secret,
    }


def at(fake_shopify: FakeShopify) -> tuple[str, str]:
    """The option that sends the command's calls to Shopify to ``fake_shopify``."""
    return ("--shopify-url", fake_shopify.url)


def lifecycle(db: Database, fake_shopify: FakeShopify, *args: str) -> Run:
    options = (*args, "--table", db.table, *at(fake_shopify))
    return run(*options, env=environment(fake_shopify), url=db.url)


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
    command = [COMMAND, "migrate-legacy", "--table", db.table, "--json", *at(fake_shopify)]
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


#: An environment without the app's credentials (an empty value is no value).
NO_CREDENTIALS = {"SHOPIFY_API_KEY": "", "SHOPIFY_API_SECRET": ""}


def test_missing_credentials_are_a_configuration_error(db: Database) -> None:
    result = run("refresh-expiring", "--table", db.table, "--json", env=NO_CREDENTIALS, url=db.url)
    assert result.code == 9, result.stdout + result.stderr
    assert result.json["error"]["type"] == "ConfigurationError"
    message = result.json["error"]["message"]
    assert message.startswith("SHOPIFY_API_KEY and SHOPIFY_API_SECRET are not set: ")
    assert "app's client id" in message and "InvalidSession" not in result.stdout


def test_a_missing_secret_is_named_before_the_database_is_touched(tmp_path: Path) -> None:
    absent = tmp_path / "absent.sqlite3"  # a database the command would refuse (exit 7)
    key_only = {**NO_CREDENTIALS, "SHOPIFY_API_KEY": "my-app"}
    result = run("migrate-legacy", env=key_only, url=f"sqlite:///{absent}")
    assert result.code == 9, result.stdout + result.stderr
    assert result.stderr.startswith("error: SHOPIFY_API_SECRET is not set: "), result.stderr
    assert not absent.exists()


def test_a_dry_run_needs_no_credentials(db: Database, fake_shopify: FakeShopify, shop: str) -> None:
    storage = db.storage()
    legacy = fake_shopify.seed_offline(shop, legacy=True)
    storage.store_session(legacy)
    listed = run(
        "migrate-legacy", "--dry-run", "--json", "--table", db.table, env=NO_CREDENTIALS, url=db.url
    )
    assert listed.code == 0, listed.stdout + listed.stderr
    assert (listed.json["legacy"], listed.json["dry_run"]) == ([shop], True)
    assert fake_shopify.counters(shop).token_requests == 0
    assert storage.load_session(legacy.id) == legacy
    storage.close()


def test_each_failure_names_its_shop_once_in_an_operators_words(
    tmp_path: Path, fake_shopify: FakeShopify, shop: str
) -> None:
    """Shopify's failures as an operator reads them: the shop once per line (and as the
    JSON key only), what went wrong and what happens next, never shopifyapp's advice to
    a web handler ("Respond 500 Internal Server Error using the provided response")."""
    url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    assert run("init", url=url).code == 0
    name = shop.removesuffix(".myshopify.com")
    down, refused, legacy = (f"{name}-{n}.myshopify.com" for n in ("down", "refused", "legacy"))
    storage = SQLAlchemySessionStorage(url)
    for due in (down, refused):
        storage.store_session(fake_shopify.seed_offline(due, refresh_token_expires_in=86400))
    storage.store_session(fake_shopify.seed_offline(legacy, legacy=True))
    fake_shopify.fail(down, *[503] * 5)
    fake_shopify.fail(refused, "invalid_client")
    fake_shopify.fail(legacy, *[503] * 5)
    credentials = environment(fake_shopify)

    refreshed = run("refresh-expiring", *at(fake_shopify), env=credentials, url=url)
    migrated = run("migrate-legacy", *at(fake_shopify), env=credentials, url=url)
    unreachable = ("--shopify-url", unreachable_url())
    offline = run("refresh-expiring", "--json", *unreachable, env=credentials, url=url)

    assert (refreshed.code, migrated.code, offline.code) == (1, 1, 1)
    lines = (refreshed.stderr + migrated.stderr).splitlines()
    assert lines == [
        f"warning: {down}: Shopify answered with server errors (5xx), retries included; "
        "the stored session is unchanged, the next run tries again (server_error)",
        f"warning: {refused}: Shopify refused the app's credentials: check SHOPIFY_API_KEY "
        "and SHOPIFY_API_SECRET (or the app was uninstalled); the stored session is "
        "unchanged, the next run tries again (invalid_client)",
        f"warning: {legacy}: Shopify answered HTTP 503; the stored session is unchanged, "
        "the next run tries again (http_503)",
    ]
    failed = offline.json["failed"]
    assert sorted(failed) == [down, refused]
    for failure in failed.values():
        assert failure["code"] == "network_error"
        assert failure["message"] == (
            "Shopify could not be reached (a network error); the stored session is "
            "unchanged, the next run tries again (network_error)"
        )
    everything = refreshed.stdout + migrated.stdout + offline.stdout + offline.stderr
    assert "Respond" not in everything and "provided response" not in everything
    storage.close()


# --- FakeShopify on its own ----------------------------------------------------------------


@contextmanager
def standalone_fake_shopify(*options: str) -> Iterator[dict[str, str]]:
    """``python -m shopify_sessions.testing OPTIONS`` running, as a user starts it: the
    variables it prints (``export NAME=value``), read from its output; stopped with
    Ctrl-C (SIGINT) afterwards, which must end it cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "shopify_sessions.testing", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("# FakeShopify is listening")
        printed = {}
        for _ in range(3):
            name, _, value = process.stdout.readline().removeprefix("export ").partition("=")
            printed[name] = shlex.split(value)[0]
        yield printed
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0 and errors == "", errors


def test_the_command_reaches_fake_shopify_run_on_its_own(tmp_path: Path, shop: str) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    assert run("init", url=url).code == 0
    storage = SQLAlchemySessionStorage(url)
    name = shop.removesuffix(".myshopify.com")
    due, legacy = f"{name}-due.myshopify.com", f"{name}-legacy.myshopify.com"
    with standalone_fake_shopify("--mode", "grace") as printed:
        assert set(printed) == {
            "SHOPIFY_SESSIONS_SHOPIFY_URL",
            "SHOPIFY_API_KEY",
            "SHOPIFY_API_SECRET",
        }
        fake = FakeShopify.attach(printed["SHOPIFY_SESSIONS_SHOPIFY_URL"])
        assert (fake.client_id, fake.client_secret) == (
            printed["SHOPIFY_API_KEY"],
            printed["SHOPIFY_API_SECRET"],
        )
        storage.store_session(fake.seed_offline(due, refresh_token_expires_in=86400))
        storage.store_session(fake.seed_offline(legacy, legacy=True))
        credentials = {name: printed[name] for name in ("SHOPIFY_API_KEY", "SHOPIFY_API_SECRET")}

        # --shopify-url ...
        option = ("--shopify-url", printed["SHOPIFY_SESSIONS_SHOPIFY_URL"])
        refreshed = run("refresh-expiring", "--json", *option, env=credentials, url=url)
        assert refreshed.code == 0, refreshed.stdout + refreshed.stderr
        assert refreshed.json["refreshed"] == [due]
        assert fake.counters(due).refreshes == 1

        # ... or the variables as printed, SHOPIFY_SESSIONS_SHOPIFY_URL among them.
        migrated = run("migrate-legacy", "--json", env=printed, url=url)
        assert migrated.code == 0, migrated.stdout + migrated.stderr
        assert migrated.json["migrated"] == [legacy]
        assert fake.counters(legacy).exchanges == 1
        after = storage.load_session(offline_session_id(legacy))
        assert after is not None and fake.accepts(legacy, after.access_token)
    storage.close()


def test_fake_shopify_on_its_own_takes_its_settings() -> None:
    with standalone_fake_shopify(
        "--client-id", "my-app", "--client-secret", "s3cret", "--access-lifetime", "60"
    ) as printed:
        assert (printed["SHOPIFY_API_KEY"], printed["SHOPIFY_API_SECRET"]) == ("my-app", "s3cret")
        fake = FakeShopify.attach(printed["SHOPIFY_SESSIONS_SHOPIFY_URL"])
        session = fake.seed_offline("settings.myshopify.com")
        assert session.expires is not None and session.refresh_token
        lasts = session.expires - utc_now()
        assert timedelta(seconds=50) < lasts <= timedelta(seconds=60)
    refused = subprocess.run(
        [sys.executable, "-m", "shopify_sessions.testing", "--latency", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "latency must be a number of seconds" in refused.stderr


@pytest.mark.parametrize(
    "given",
    [
        "127.0.0.1:8080",
        "ftp://127.0.0.1",
        "http://127.0.0.1:8080/admin",
        "http://:80",
        "http://h:x",
    ],
)
def test_a_shopify_url_that_cannot_be_used_is_a_usage_error(tmp_path: Path, given: str) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    result = run("refresh-expiring", "--json", "--shopify-url", given, url=url)
    assert result.code == 2, result.stdout + result.stderr
    assert "Invalid value for '--shopify-url'" in result.json["error"]["message"]
    assert not (tmp_path / "sessions.sqlite3").exists()  # refused before the database


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
    command += ["--batch-size", "5", *at(fake_shopify)]
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
        [COMMAND, "refresh-expiring", "--url", url, "--concurrency", "8", *at(fake_shopify)],
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
