"""The shopify-sessions command, run as a user runs it: a subprocess on real databases.

Every subcommand on PostgreSQL, MariaDB and SQLite, and on PostgreSQL through PgBouncer in
transaction mode (its URL as a platform gives it, without ``?pooler=``), with its exit
codes and ``--json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, inspect, make_url, text

from command import Run, run
from conftest import MYSQL_URL, POSTGRESQL_URL, pgbouncer, require_server, unique_table_name
from shopify_sessions import AssociatedUser, FernetTokenCipher, OnlineAccessInfo, Session
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage

UTC = timezone.utc
SHOP = "cli.myshopify.com"
SERVERS = ("sqlite", "postgresql", "mysql", "pgbouncer")


@dataclass
class Database:
    """One real database, a URL to it as a platform gives it, and a fresh table name."""

    server: str  # "sqlite", "postgresql", "mysql" or "pgbouncer" (PostgreSQL through it)
    url: str  # without a driver, as in DATABASE_URL
    table: str
    raw: Engine

    def storage(self, **options: Any) -> SQLAlchemySessionStorage:
        return SQLAlchemySessionStorage(self.url, table=self.table, **options)

    def drop(self, name: str | None = None) -> None:
        """Drop the table (the test's own by default) and its lock table."""
        quote = self.raw.dialect.identifier_preparer.quote
        with self.raw.begin() as connection:
            for each in (name or self.table, f"{name or self.table}_locks"):
                connection.execute(text(f"DROP TABLE IF EXISTS {quote(each)}"))

    def sql(self, statement: str) -> list[Any]:
        with self.raw.begin() as connection:
            result = connection.execute(text(statement))
            return list(result) if result.returns_rows else []


def database_url(server: str, tmp_path: Path) -> str:
    if server == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    if server == "pgbouncer":
        url = pgbouncer("transaction").url
    else:
        url = make_url(POSTGRESQL_URL if server == "postgresql" else MYSQL_URL)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)


def open_database(server: str, tmp_path: Path) -> Database:
    require_server("postgresql" if server == "pgbouncer" else server)
    url = database_url(server, tmp_path)
    # Rows are looked at directly, never through PgBouncer.
    direct = database_url("postgresql", tmp_path) if server == "pgbouncer" else url
    sync = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
    raw = create_engine(make_url(direct).set(drivername=sync[make_url(direct).get_backend_name()]))
    return Database(server, url, unique_table_name("cli"), raw)


@pytest.fixture(params=SERVERS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = open_database(request.param, tmp_path)
    yield database
    database.drop()
    database.raw.dispose()


NOW = datetime.now(UTC).replace(microsecond=0)


def population() -> list[Session]:
    """Two offline (one with a refresh token due in 3 days), two online, one expired."""
    user = AssociatedUser(id=42, first_name="Ada", email="ada@example.com", account_owner=True)
    return [
        Session(f"offline_{SHOP}", SHOP, "", False, scope="read_orders", access_token="shpat_1"),
        Session(
            f"offline_refresh_{SHOP}",
            SHOP,
            "",
            False,
            expires=NOW + timedelta(hours=1),
            access_token="shpat_2",
            refresh_token="shprt_2",
            refresh_token_expires=NOW + timedelta(days=3),
        ),
        Session(
            f"{SHOP}_42",
            SHOP,
            "",
            True,
            expires=NOW + timedelta(hours=1),
            access_token="shpua_3",
            online_access_info=OnlineAccessInfo(associated_user=user),
        ),
        Session(
            f"{SHOP}_43",
            SHOP,
            "",
            True,
            expires=NOW - timedelta(days=2),
            access_token="shpua_4",
            online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=43)),
        ),
    ]


TOKENS = ("shpat_1", "shpat_2", "shprt_2", "shpua_3", "shpua_4")


def assert_no_token(result: Run) -> None:
    for token in TOKENS:
        assert token not in result.stdout and token not in result.stderr


# --- check and init ------------------------------------------------------------------------


def test_check_and_init(db: Database) -> None:
    missing = run("check", "--table", db.table, "--json", url=db.url)
    # A SQLite file that does not exist is a database that does not exist (not created).
    assert missing.code == (7 if db.server == "sqlite" else 4)
    assert missing.json["ok"] is False
    assert missing.json["error"]["type"] == (
        "StorageAccessDeniedError" if db.server == "sqlite" else "MissingSessionTableError"
    )
    assert f"shopify-sessions init --table {db.table}" in missing.json["error"]["message"]

    ddl = run("init", "--table", db.table, "--sql", url=db.url)
    assert ddl.code == 0
    assert "CREATE TABLE" in ddl.stdout and "CREATE INDEX" in ddl.stdout
    assert not inspect(db.raw).has_table(db.table)  # --sql changes nothing

    created = run("init", "--table", db.table, "--json", url=db.url)
    assert (created.code, created.json["created"]) == (0, True)
    assert inspect(db.raw).has_table(db.table)
    again = run("init", "--table", db.table, "--json", url=db.url)
    assert (again.code, again.json["created"]) == (0, False)

    storage = db.storage()
    for session in population():
        storage.store_session(session)
    storage.close()

    checked = run("check", "--table", db.table, "--json", url=db.url)
    assert checked.code == 0, checked.stderr
    assert checked.json["layout"] == "default"
    assert checked.json["problems"] == [] and checked.json["advice"] == []
    assert checked.json["sessions"] == {
        "total": 4,
        "offline": 2,
        "online": 2,
        "expired": 1,
        "with_refresh_token": 1,
        "refresh_due_7_days": 1,
        "refresh_expired": 0,
        "encrypted": 0,
    }
    human = run("check", "--table", db.table, url=db.url)
    assert human.code == 0
    assert "layout: default" in human.stdout and "sessions: 4" in human.stdout
    assert_no_token(checked)
    assert_no_token(human)


def test_check_lists_every_problem_and_what_upgrade_would_do(db: Database) -> None:
    quote = "`" if db.server == "mysql" else '"'
    db.sql(
        f"CREATE TABLE {quote}{db.table}{quote} (id varchar(255) NOT NULL PRIMARY KEY, "
        f"shop varchar(255) NOT NULL, state varchar(255) NOT NULL, {quote}isOnline{quote} "
        f"integer NOT NULL, scope varchar(255), expires integer, "
        f"{quote}accessToken{quote} varchar(255))"
    )
    result = run("check", "--table", db.table, "--json", url=db.url)
    assert result.code == 5
    assert result.json["layout"] == "raw"  # integer expires: the raw adapters
    [problem] = result.json["problems"]
    assert "missing column(s): userId, firstName" in problem and "refreshTokenExpires" in problem
    assert "add column refreshToken VARCHAR(255)" in result.json["advice"]
    assert "create index on shop" in result.json["advice"]


def test_version_is_the_installed_packages() -> None:
    from importlib.metadata import version

    import shopify_sessions

    done = run("--version")
    assert (done.code, done.stderr) == (0, "")
    assert done.stdout == f"shopify-sessions {shopify_sessions.__version__}\n"
    assert shopify_sessions.__version__ == version("shopify-sessions")


def test_an_unreachable_database_is_exit_3() -> None:
    result = run("check", "--json", url="postgresql://postgres@127.0.0.1:1/test")
    assert result.code == 3
    assert result.json["error"]["type"] == "StorageUnavailableError"


def test_bad_input_is_exit_2_before_the_database_is_touched(tmp_path: Path) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/test"
    assert run("check", url="oracle://x@y/z").code == 2
    assert run("purge", "--grace", "soon", url=unreachable).code == 2
    assert run("check").code == 2  # no --url and no DATABASE_URL
    same = run("copy", unreachable, unreachable.replace("postgresql", "postgres"), "--json")
    assert same.code == 2
    assert "same table" in same.json["error"]["message"]
    assert run("copy", unreachable, "mysql://root@127.0.0.1:1/test", "--batch-size", "0").code == 2
    no_keys = run("reencrypt", "--json", url=unreachable)
    assert no_keys.code == 2
    assert "SHOPIFY_SESSIONS_KEYS is not set" in no_keys.json["error"]["message"]
    bad_key = run("reencrypt", url=unreachable, env={"SHOPIFY_SESSIONS_KEYS": "k1:secretvalue"})
    assert bad_key.code == 2
    assert "secretvalue" not in bad_key.stderr + bad_key.stdout


# --- purge ---------------------------------------------------------------------------------


def test_purge_with_grace_and_dry_run(db: Database) -> None:
    assert run("init", "--table", db.table, url=db.url).code == 0
    storage = db.storage()
    for session in population():
        storage.store_session(session)
    recent = Session(
        f"{SHOP}_44", SHOP, "", True, expires=NOW - timedelta(hours=2), access_token="shpua_5"
    )
    renewable = Session(
        f"offline_old_{SHOP}",
        SHOP,
        "",
        False,
        expires=NOW - timedelta(days=30),
        access_token="shpat_6",
        refresh_token="shprt_6",
        refresh_token_expires=NOW + timedelta(days=60),
    )
    storage.store_session(recent)
    storage.store_session(renewable)

    dry = run("purge", "--table", db.table, "--grace", "1d", "--dry-run", "--json", url=db.url)
    assert dry.code == 0, dry.stderr
    assert (dry.json["would_delete"], dry.json["deleted"]) == (1, 0)
    assert len(db.sql(f"SELECT id FROM {db.raw.dialect.identifier_preparer.quote(db.table)}")) == 6

    purged = run("purge", "--table", db.table, "--grace", "1d", "--json", url=db.url)
    assert (purged.code, purged.json["deleted"]) == (0, 1)
    assert storage.load_session(f"{SHOP}_43") is None
    assert storage.load_session(recent.id) is not None

    human = run("purge", "--table", db.table, "--grace", "0", url=db.url)
    assert human.code == 0 and "deleted 1 expired session(s)" in human.stdout
    assert storage.load_session(recent.id) is None
    assert storage.load_session(renewable.id) is not None  # a refresh token can renew it
    storage.close()


# --- reencrypt ------------------------------------------------------------------------------


def test_reencrypt_with_keys_from_the_environment(db: Database) -> None:
    assert run("init", "--table", db.table, url=db.url).code == 0
    storage = db.storage()
    sessions = population()
    for session in sessions:
        storage.store_session(session)
    storage.close()
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = {"SHOPIFY_SESSIONS_KEYS": f"2026-05:{old}"}

    first = run("reencrypt", "--table", db.table, "--json", url=db.url, env=env)
    assert first.code == 0, first.stderr
    assert (first.json["rewritten"], first.json["rows"], first.json["key_id"]) == (4, 4, "2026-05")
    assert_no_token(first)
    q = db.raw.dialect.identifier_preparer.quote
    stored = db.sql(f"SELECT {q('accessToken')} FROM {q(db.table)}")
    assert all(value.startswith("fernet:2026-05:") for (value,) in stored)
    checked = run("check", "--table", db.table, "--json", url=db.url)
    assert checked.json["sessions"]["encrypted"] == 4

    rotate = {"SHOPIFY_SESSIONS_KEYS": f"2026-11:{new},2026-05:{old}"}
    second = run("reencrypt", "--table", db.table, "--json", url=db.url, env=rotate)
    assert (second.code, second.json["rewritten"]) == (0, 4)
    again = run("reencrypt", "--table", db.table, "--json", url=db.url, env=rotate)
    assert (again.code, again.json["rewritten"]) == (0, 0)

    cipher = FernetTokenCipher({"2026-11": new})
    reader = db.storage(token_cipher=cipher)
    for session in sessions:
        assert reader.load_session(session.id) == session
    reader.close()
    # A key missing for rows encrypted with it: exit 6, and still no token printed.
    wrong = {"SHOPIFY_SESSIONS_KEYS": f"2027-01:{Fernet.generate_key().decode()}"}
    failed = run("reencrypt", "--table", db.table, "--json", url=db.url, env=wrong)
    assert failed.code == 6
    assert failed.json["error"]["type"] == "TokenDecryptionError"


def test_check_says_which_session_lock_the_table_gets(db: Database) -> None:
    assert run("init", "--table", db.table, url=db.url).code == 0
    lock = run("check", "--table", db.table, "--json", url=db.url).json["lock"]
    if db.server == "sqlite":
        assert lock["mechanism"].startswith("flock") and lock["advice"] == []
        return
    assert lock["mechanism"] == f'a lease in the lock table "{db.table}_locks"'
    assert lock["server"] == ("MariaDB" if db.server == "mysql" else "PostgreSQL")
    assert lock["pooler"] is (db.server == "pgbouncer")
    if db.server == "pgbouncer":  # found, though the URL didn't say
        [advice] = lock["advice"]
        assert "add ?pooler=transaction" in advice
        flagged = run("check", "--table", db.table, "--json", url=f"{db.url}?pooler=transaction")
        assert flagged.code == 0 and flagged.json["lock"]["advice"] == []
    else:
        assert lock["advice"] == []

    # A table from before lock tables: check says so, upgrade creates it (UNLOGGED).
    db.drop(f"{db.table}_locks")
    missing = run("check", "--table", db.table, "--json", url=db.url)
    assert any("does not exist" in line for line in missing.json["lock"]["advice"])
    upgraded = run("upgrade", "--table", db.table, "--json", url=db.url)
    assert upgraded.code == 0, upgraded.stderr
    assert upgraded.json["steps"] == [f'create the lock table "{db.table}_locks"']
    flag = "?pooler=transaction" if db.server == "pgbouncer" else ""
    after = run("check", "--table", db.table, "--json", url=db.url + flag)
    assert after.json["lock"]["advice"] == []
