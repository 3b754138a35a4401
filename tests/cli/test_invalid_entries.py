"""Rows and keys that hold no session are counted, named and skipped by ``check``,
``purge`` and ``copy``, which finish their work and exit 8, in text and in ``--json``.

The bad entries are what real data can hold: text where a date-time belongs (SQLite), a
refresh-token expiry out of any date's range (PostgreSQL, the raw adapters' epoch
milliseconds), MariaDB's zero date, Redis keys under the prefix whose values are not
sessions, and DynamoDB items whose attributes are not a session's. Their values (a token
among them) never appear in the output.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from test_command import SHOP, Database, open_database, population
from test_dynamodb_command import AWS, Table
from test_redis_command import Keys

from command import Run, run
from conftest import REDIS_URL, require_server
from shopify_sessions import SessionDataError
from shopify_sessions.redis._client import client_from_url, close_client

BAD_TOKEN = "shpat_in_a_bad_row"
RAW_POSTGRESQL = (
    'CREATE TABLE "{t}" ("id" varchar(255) NOT NULL PRIMARY KEY, "shop" varchar(255) NOT '
    'NULL, "state" varchar(255) NOT NULL, "isOnline" boolean NOT NULL, "scope" '
    'varchar(1024), "expires" integer, "accessToken" varchar(255), "refreshToken" '
    'varchar(255), "refreshTokenExpires" bigint, "userId" bigint, "firstName" varchar(255), '
    '"lastName" varchar(255), "email" varchar(255), "accountOwner" boolean, "locale" '
    'varchar(255), "collaborator" boolean, "emailVerified" boolean)'
)


@dataclass
class Place:
    """Where the sessions are: a table (``db``), Redis keys (``keys``) or a DynamoDB
    table (``dynamodb``: its URL names it)."""

    db: Database | None = None
    keys: Keys | None = None
    dynamodb: Table | None = None

    def options(self) -> tuple[list[str], str]:
        if self.keys is not None:
            return ["--key-prefix", self.keys.prefix], self.keys.url
        if self.dynamodb is not None:
            return [], self.dynamodb.url
        assert self.db is not None
        return ["--table", self.db.table], self.db.url

    def run(self, subcommand: str, *args: str) -> Run:
        options, url = self.options()
        return run(subcommand, *options, *args, url=url, env=AWS)


@pytest.fixture(params=["sqlite", "postgresql", "mysql", "redis", "dynamodb"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """A table or key prefix with the population's four sessions and two bad entries,
    ``bad_1`` (expired, so purge would look at it) and ``bad_2``."""
    if request.param == "dynamodb":
        require_server("dynamodb")
        table = Table()
        table.create()
        storage = table.storage()
        for session in population():
            storage.store_session(session)
        storage.client.put_item(
            TableName=table.name,
            Item={"id": {"S": "bad_1"}, "shop": {"S": SHOP}, "expires": {"S": "not a date"},
                  "accessToken": {"S": BAD_TOKEN}},
        )  # fmt: skip
        storage.client.put_item(
            TableName=table.name,
            Item={"id": {"S": "bad_2"}, "shop": {"S": SHOP}, "isOnline": {"S": "yes"},
                  "accessToken": {"S": BAD_TOKEN}},
        )  # fmt: skip
        storage.close()
        yield Place(dynamodb=table)
        table.drop()
        return
    if request.param == "redis":
        require_server("redis")
        keys = Keys(REDIS_URL)
        storage = keys.storage()
        for session in population():
            storage.store_session(session)
        storage.close()
        client = client_from_url(keys.url, is_async=False, options=None)
        client.set(f"{keys.prefix}_bad_1", '[["id","bad_1"],["shop",5],["accessToken","x"]]')
        client.set(f"{keys.prefix}_bad_2", f'[["id","bad_2"],["accessToken","{BAD_TOKEN}"')
        close_client(client)
        yield Place(keys=keys)
        keys.drop()
        return
    db = open_database(request.param, tmp_path)
    q = db.raw.dialect.identifier_preparer.quote
    if db.server == "postgresql":
        db.sql(RAW_POSTGRESQL.format(t=db.table))
    else:
        assert run("init", "--table", db.table, url=db.url).code == 0
    storage = db.storage()
    for session in population():
        storage.store_session(session)
    storage.close()
    # Each expired (or unreadably so), for purge to look at.
    bad = {
        "sqlite": {"expires": "'2030-13-45 not a date'"},
        "postgresql": {"expires": "1000", q("refreshTokenExpires"): "9000000000000000000"},
        "mysql": {"expires": "'0000-00-00 00:00:00'"},
    }[db.server]
    columns = f"id, shop, state, {q('isOnline')}, {q('accessToken')}, {', '.join(bad)}"
    with db.raw.begin() as connection:
        if db.server == "mysql":  # MariaDB's default mode lets a zero date in
            connection.execute(text("SET SESSION sql_mode = ''"))
        for id in ("bad_1", "bad_2"):
            values = f"'{id}', '{SHOP}', '', false, '{BAD_TOKEN}', {', '.join(bad.values())}"
            connection.execute(text(f"INSERT INTO {q(db.table)} ({columns}) VALUES ({values})"))
    yield Place(db=db)
    db.drop()
    db.raw.dispose()


def assert_named_not_shown(result: Run) -> None:
    entries = result.json["invalid_entries"]
    # in the walk's order: the id's on SQL and Redis, the table's own on DynamoDB
    assert sorted(entry["entry"][-5:] for entry in entries) == ["bad_1", "bad_2"]
    assert all(entry["entry"] in entry["error"] for entry in entries)
    assert result.json["invalid"] == 2
    assert BAD_TOKEN not in result.stdout + result.stderr
    assert "not a date" not in result.stdout + result.stderr


def test_check_counts_names_and_skips_what_is_no_session(place: Place) -> None:
    checked = place.run("check", "--json")
    assert checked.code == 8, checked.stdout + checked.stderr
    assert checked.json["ok"] is False
    assert checked.json["sessions"]["total"] == len(population())
    assert_named_not_shown(checked)

    human = place.run("check")
    assert human.code == 8
    assert "but 2" in human.stdout and "hold no session" in human.stdout
    assert human.stderr.count("skipped, not a session") == 2
    assert BAD_TOKEN not in human.stdout + human.stderr


def test_purge_finishes_its_work_past_what_is_no_session(place: Place) -> None:
    purged = place.run("purge", "--grace", "1d", "--json")
    assert purged.code == 8, purged.stdout + purged.stderr
    assert purged.json["deleted"] == 1  # the online session expired two days ago
    assert_named_not_shown(purged)
    again = place.run("check", "--json")
    assert again.json["sessions"]["total"] == len(population()) - 1
    assert again.json["invalid"] == 2  # purge deleted no entry it could not read


def test_copy_copies_every_session_and_lists_what_is_no_session(
    place: Place, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / f'target_{uuid.uuid4().hex[:6]}.sqlite3'}"
    options, url = place.options()
    source = ["--source-key-prefix" if place.keys else "--source-table", *options[1:]]
    copied = run("copy", url, target, *source[: len(options)], "--json", env=AWS)
    assert copied.code == 8, copied.stdout + copied.stderr
    assert (
        copied.json["copied"]
        == copied.json["verified_equal"] + copied.json["verified_equivalent"]
        == len(population())
    )
    assert (copied.json["failed"], copied.json["different"]) == (0, 0)
    assert_named_not_shown(copied)
    on_target = run("check", "--json", url=target)
    assert (on_target.code, on_target.json["sessions"]["total"]) == (0, len(population()))


def test_without_a_handler_a_walk_raises_the_typed_error(place: Place) -> None:
    storage = (
        place.keys.storage()
        if place.keys
        else place.dynamodb.storage()
        if place.dynamodb
        else place.db.storage()  # type: ignore[union-attr]
    )
    with pytest.raises(SessionDataError, match=r"bad_[12]"):
        for _ in storage.sessions():
            pass
    storage.close()
