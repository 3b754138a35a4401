"""What a newcomer met running the command, each run as they run it (the installed console
script): usage errors under --json, hints that repeat the options given, the install hint
in plain output, a mistyped SQLite source, a refused connection told apart from an
unreachable server, and purge's default grace as the docs give it."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, inspect, make_url
from test_command import SERVERS, Database, open_database

from command import Run, run
from conftest import MYSQL_URL, POSTGRESQL_URL, require_server, unique_table_name
from shopify_sessions import Session
from shopify_sessions.cli._purge import DEFAULT_GRACE, parse_duration
from shopify_sessions.sqlalchemy import session_table

ROOT = Path(__file__).resolve().parents[2]
TEST_HOOKS = str(Path(__file__).with_name("hooks"))  # its sitecustomize: HIDE_MODULES


@pytest.fixture(params=SERVERS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = open_database(request.param, tmp_path)
    yield database
    database.drop()
    database.raw.dispose()


@pytest.fixture
def schema(db: Database) -> Iterator[str]:
    """A schema of the test's own: a PostgreSQL schema, a MySQL database, SQLite's main."""
    if db.server == "sqlite":
        yield "main"
        return
    name = unique_table_name("schema")
    kind = "DATABASE" if db.server == "mysql" else "SCHEMA"  # PostgreSQL, directly or not
    db.sql(f"CREATE {kind} {name}")
    try:
        yield name
    finally:
        db.sql(f"DROP {kind} IF EXISTS {name}" + (" CASCADE" if kind == "SCHEMA" else ""))


def assert_usage_error_as_json(result: Run, command: str, *words: str) -> None:
    assert result.code == 2, result.stderr
    assert result.stderr == ""  # no Rich box
    error = result.json["error"]
    assert (result.json["command"], result.json["ok"], result.json["exit_code"]) == (
        command,
        False,
        2,
    )
    for word in words:
        assert word in error["message"], error


def test_usage_errors_are_json_under_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    assert_usage_error_as_json(run("check", "--json"), "check", "--url", "DATABASE_URL")
    assert_usage_error_as_json(
        run("purge", "--grace", "7days", "--json", url=url), "purge", "--grace", "'7days'"
    )
    assert_usage_error_as_json(
        run("refresh-expiring", "--within", "soon", "--json", url=url), "refresh-expiring"
    )
    assert_usage_error_as_json(run("check", "--bogus", "--json", url=url), "check", "--bogus")
    # Without --json, Typer's own box on stderr, as before.
    human = run("purge", "--grace", "7days", url=url)
    assert human.code == 2 and human.stdout == "" and "Invalid value" in human.stderr


def hint(result: Run) -> list[str]:
    """The command a message tells to run, as words."""
    as_json = result.stdout.startswith("{")
    message = result.json["error"]["message"] if as_json else result.stdout + result.stderr
    [command] = re.findall(r"`(shopify-sessions [^`]+)`", message)
    return shlex.split(command)[1:]


def test_hints_repeat_the_options_given_and_work_to_the_letter(db: Database, schema: str) -> None:
    options = ["--table", db.table, "--schema", schema]
    for subcommand in ("check", "purge", "upgrade"):
        missing = run(subcommand, *options, "--json", url=db.url)
        assert missing.code == (7 if db.server == "sqlite" else 4), missing.stdout
        assert hint(missing) == ["init", *options]
    assert not Path(make_url(db.url).database or "").is_file()  # nothing created meanwhile

    assert run(*hint(missing), url=db.url).code == 0  # init, as the hint says
    checked = run("check", *options, "--json", url=db.url)
    assert checked.code == 0, checked.stdout
    assert checked.json["table"] == f"{schema}.{db.table}"  # no quotes inside the JSON

    # A table without its index on shop: check advises the upgrade, with the same options.
    quote = db.raw.dialect.identifier_preparer.quote
    db.sql(f"DROP TABLE {quote(schema)}.{quote(db.table)}")
    table = session_table(MetaData(), db.table, schema=schema)
    table.indexes.clear()
    table.create(db.raw)
    advised = run("check", *options, url=db.url)
    assert advised.code == 0 and "create index on shop" in advised.stdout
    assert hint(advised) == ["upgrade", *options]
    assert run(*hint(advised), url=db.url).code == 0
    assert run("check", *options, "--json", url=db.url).json["advice"] == []
    indexes = inspect(db.raw).get_indexes(db.table, schema=schema)
    assert [index["column_names"] for index in indexes] == [["shop"]]


def test_the_install_hint_survives_rich() -> None:
    hidden = {"PYTHONPATH": TEST_HOOKS, "HIDE_MODULES": "pymysql,MySQLdb"}
    url = "mysql://root@127.0.0.1:1/test"
    install = "pip install 'shopify-sessions[pymysql]'"
    plain = run("check", url=url, env=hidden)
    assert plain.code == 2 and install in plain.stderr, plain.stderr
    as_json = run("check", "--json", url=url, env=hidden)
    assert as_json.code == 2 and install in as_json.json["error"]["message"]


def test_copy_never_creates_its_sqlite_source(tmp_path: Path) -> None:
    source, target = tmp_path / "mistyped.sqlite3", tmp_path / "target.sqlite3"
    copied = run("copy", f"sqlite:///{source}", f"sqlite:///{target}", "--json")
    assert copied.code == 7, copied.stdout
    assert copied.json["error"]["type"] == "StorageAccessDeniedError"
    assert f"{source} does not exist" in copied.json["error"]["message"]
    assert "init" not in copied.json["error"]["message"]  # nothing to create for a source
    assert not source.exists() and not target.exists()
    checked = run("check", url=f"sqlite:///{source}")
    assert checked.code == 7 and not source.exists()


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_refused_is_told_apart_from_unreachable(server: str) -> None:
    require_server(server)
    base = make_url(POSTGRESQL_URL if server == "postgresql" else MYSQL_URL)
    base = base.set(drivername=base.get_backend_name())
    refused = [
        base.set(database=unique_table_name("nodb")),  # no such database
        base.set(username="nobody_" + unique_table_name("u")),  # no such user
    ]
    if server == "mysql":  # PostgreSQL here trusts every local connection
        refused.append(base.set(password="a-wrong-password"))
    for url in refused:
        result = run("check", "--json", url=url.render_as_string(hide_password=False))
        assert result.code == 7, (url, result.stdout)
        assert result.json["error"]["type"] == "StorageAccessDeniedError"
        assert "refused the connection" in result.json["error"]["message"]
    unreachable = run("check", "--json", url=base.set(port=1).render_as_string(False))
    assert unreachable.code == 3
    assert unreachable.json["error"]["type"] == "StorageUnavailableError"
    message = unreachable.json["error"]["message"]
    assert 'cannot connect to the database of "session"' in message
    assert "the reflection" not in message


def test_purge_keeps_a_week_by_default_as_the_docs_say(db: Database) -> None:
    operating = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    [documented] = re.findall(r"`purge \[--grace (\w+)\]", operating)
    assert parse_duration(documented) == DEFAULT_GRACE == timedelta(days=7)

    assert run("init", "--table", db.table, url=db.url).code == 0
    storage = db.storage()
    shop, now = "s.myshopify.com", datetime.now(timezone.utc)
    days_ago = {
        days: Session(
            f"{shop}_{days}",
            shop,
            "",
            True,
            access_token=f"shpua_{days}",
            expires=now - timedelta(days=days),
        )
        for days in (2, 8)
    }
    for session in days_ago.values():
        storage.store_session(session)
    purged = run("purge", "--table", db.table, url=db.url)
    assert purged.code == 0 and "deleted 1 expired session(s) (grace 7d)" in purged.stdout
    assert storage.load_session(days_ago[8].id) is None
    assert storage.load_session(days_ago[2].id) is not None
    assert run("purge", "--table", db.table, "--grace", "0", url=db.url).code == 0
    assert storage.load_session(days_ago[2].id) is None
    storage.close()


SUBCOMMANDS = [
    "check",
    "init",
    "upgrade",
    "purge",
    "reencrypt",
    "copy",
    "refresh-expiring",
    "migrate-legacy",
]


@pytest.mark.parametrize("subcommand", [None, *SUBCOMMANDS])
def test_help_is_wrapped_by_paragraph_and_flags_take_no_value(subcommand: str | None) -> None:
    """On a wide terminal each paragraph of the help is one line (a docstring's own line
    breaks no longer break sentences), and nothing reads as if a flag took a value."""
    words = [subcommand] if subcommand else []
    helped = run(*words, "--help", env={"COLUMNS": "1000"})
    assert helped.code == 0, helped.stderr
    text = helped.stdout
    for oddity in ("<bool>", "[default: (", "…"):
        assert oddity not in text, (oddity, text)
    lines = [line.strip(" │") for line in text.splitlines()]
    if subcommand is None:
        assert "Exit codes:" in lines
        assert any(line.startswith("9  the environment lacks the app's") for line in lines)
        return
    from shopify_sessions.cli._app import app

    command = typer_command(app).commands[subcommand]
    for paragraph in command.help.split("\n\n"):
        assert " ".join(paragraph.split()) in lines, (paragraph, text)
    if subcommand != "copy":
        assert any("--url" in line and "postgres://, postgresql://" in line for line in lines)


def typer_command(app: object) -> Any:
    import typer.main

    return typer.main.get_command(app)  # type: ignore[arg-type]
