"""shopify_sessions.django and Django's databases, for real: the migration on PostgreSQL,
MariaDB and SQLite (each in a test database of its own that Django creates, migrates and
drops, as its test runner does), in every layout it creates, beside a Node app's table,
and reversed; the storage following Django's connection into the test database and back;
sessions and the caller's transaction on SQLite; the system checks; ``manage.py
shopify_sessions`` with Django's options and its own name."""

from __future__ import annotations

import inspect as python_inspect
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "django_app"
sys.path.insert(0, str(PROJECT))
os.environ["DJANGO_SETTINGS_MODULE"] = "django_settings"

import django  # noqa: E402
from django.core.checks import run_checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.test import override_settings  # noqa: E402

django.setup()

from conftest import require_server, unique_table_name  # noqa: E402
from layouts import LAYOUTS  # noqa: E402
from shopify_sessions import (  # noqa: E402
    Session,
    SessionTableSchemaError,
    StorageOperationError,
    offline_session_id,
)
from shopify_sessions import django as shopify  # noqa: E402
from shopify_sessions.django._settings import migration_table_names  # noqa: E402
from shopify_sessions.sqlalchemy import resolve_url  # noqa: E402
from shopify_sessions.sqlalchemy._layout import Layout, detect_layout  # noqa: E402

SERVERS = {"sqlite": "default", "postgresql": "postgresql", "mysql": "mysql"}


def _session(shop: str = "a-shop.myshopify.com", token: str = "a token") -> Session:
    return Session(
        id=offline_session_id(shop), shop=shop, state="", is_online=False, access_token=token
    )


def _migrate(alias: str, *target: str) -> None:
    call_command("migrate", "shopify_sessions", *target, database=alias, verbosity=0)


# Django before 6.1 copies the test database's rows for later tests unless told not to;
# 6.1 no longer does at creation, and deprecates the argument.
_NO_SERIALIZE: dict[str, Any] = {"serialize": False} if django.VERSION < (6, 1) else {}


class DjangoTestDatabase:
    """A test database of Django's own for ``alias``, under a name no other run uses:
    created and migrated by Django as its test runner does it, then dropped."""

    def __init__(self, alias: str, *, in_memory: bool = False) -> None:
        self.alias = alias
        self.connection = connections[alias]
        self.in_memory = in_memory  # SQLite's default test database

    def __enter__(self) -> DjangoTestDatabase:
        settings_dict = self.connection.settings_dict
        self.old_name = settings_dict["NAME"]
        self.old_test = dict(settings_dict["TEST"])
        name: str | None
        if self.in_memory:
            name = None
        elif self.connection.vendor == "sqlite":
            name = os.path.join(os.path.dirname(self.old_name), f"test_{uuid.uuid4().hex}.db")
        else:
            name = f"test_ss_{uuid.uuid4().hex[:12]}"
        settings_dict["TEST"]["NAME"] = name
        try:
            self.name = self.connection.creation.create_test_db(
                verbosity=0, autoclobber=True, **_NO_SERIALIZE
            )
        except BaseException:  # made, then its migration failed: dropped all the same
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.connection.creation.destroy_test_db(self.old_name, verbosity=0)
        finally:
            self.connection.settings_dict["TEST"] = self.old_test

    def url(self) -> str:
        return shopify.database_url(self.alias)

    def engine(self) -> Engine:
        """An engine of the test database, on the driver the storage would pick (a bare
        ``postgresql://`` means psycopg2 to SQLAlchemy 2.0, psycopg to 2.1)."""
        return create_engine(resolve_url(self.url(), is_async=False))

    def tables(self) -> set[str]:
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return set(inspect(connection).get_table_names())
        finally:
            engine.dispose()


@pytest.fixture(params=list(SERVERS), ids=list(SERVERS))
def alias(request: pytest.FixtureRequest) -> str:
    require_server(request.param)
    return SERVERS[request.param]


@pytest.fixture
def sessions_of(alias: str) -> Iterator[dict[str, Any]]:
    """The settings of a sessions table of its own in ``alias``."""
    config = {"DATABASE": alias, "TABLE": unique_table_name("dj")}
    with override_settings(SHOPIFY_SESSIONS=config):
        yield config


# --- the migration --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["default", "drizzle", "prisma"])
def test_migrate_creates_the_table_in_the_layout_of_the_settings_and_reverses(
    alias: str, layout: str
) -> None:
    table = unique_table_name("dj")
    if (alias, layout) == ("default", "prisma"):
        # Prisma's SQLite dates are DATETIME epoch milliseconds, which Django's SQLite
        # connections would convert (to nothing) as they read them: refused, with the way.
        with (
            override_settings(SHOPIFY_SESSIONS={"TABLE": table, "LAYOUT": layout}),
            pytest.raises(SessionTableSchemaError, match=r"'drizzle' LAYOUT"),
        ):
            DjangoTestDatabase(alias).__enter__()
        return
    with (
        override_settings(SHOPIFY_SESSIONS={"DATABASE": alias, "TABLE": table, "LAYOUT": layout}),
        DjangoTestDatabase(alias) as database,
    ):
        # The test database was migrated by Django as it made it: the table is there.
        assert {table, f"{table}_locks"} <= database.tables()
        storage = shopify.get_storage()
        storage.check_table()
        assert detect_layout(storage.table, storage.engine.dialect) is Layout(layout)
        assert storage.store_session(_session())
        assert storage.load_session(_session().id) == _session()

        _migrate(alias, "zero")  # reversed: the tables it made are gone
        assert not {table, f"{table}_locks"} & database.tables()
        _migrate(alias)
        assert {table, f"{table}_locks"} <= database.tables()


def test_an_existing_node_table_is_checked_and_left_alone_both_ways(alias: str) -> None:
    server = next(name for name, each in SERVERS.items() if each == alias)
    adapter = "drizzle" if server == "sqlite" else "prisma"  # see the test below for SQLite's
    node = next(each for each in LAYOUTS if each.adapter == adapter and each.server == server)
    table = unique_table_name("dj")
    with (
        override_settings(SHOPIFY_SESSIONS={"DATABASE": alias, "TABLE": table}),
        DjangoTestDatabase(alias) as database,
    ):
        _migrate(alias, "zero")
        quote = "`" if server == "mysql" else '"'
        engine = database.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql(node.ddl(table, quote))
            connection.execute(
                text(
                    f"INSERT INTO {quote}{table}{quote} (id, shop, state, {quote}isOnline"
                    f"{quote}, {quote}accessToken{quote}) VALUES ('n', 's', '', false, 't')"
                )
            )
        try:
            _migrate(alias)  # checked, left as it is; its lock table added beside it
            assert f"{table}_locks" in database.tables()
            with engine.connect() as connection:
                assert (
                    connection.exec_driver_sql(
                        f"SELECT count(*) FROM {quote}{table}{quote}"
                    ).scalar()
                    == 1
                )
            untouched = _reflected(engine, table)
            assert detect_layout(untouched, engine.dialect) is Layout(adapter)
            _migrate(alias, "zero")  # not the migration's table: it stays
            assert table in database.tables()
        finally:
            engine.dispose()


def test_a_prisma_table_on_sqlite_is_refused_rather_than_misread() -> None:
    """Django's SQLite connection parses DATETIME columns itself (detect_types): Prisma's
    epoch milliseconds came back as no expiry at all. The storage refuses such a table."""
    table = unique_table_name("dj")
    prisma = next(each for each in LAYOUTS if each.name == "prisma-sqlite")
    with (
        override_settings(SHOPIFY_SESSIONS={"TABLE": table}),
        DjangoTestDatabase("default"),
    ):
        _migrate("default", "zero")  # the migration's table goes; a Node app's comes
        with connections["default"].cursor() as cursor:
            cursor.execute(prisma.ddl(table, '"'))
        with pytest.raises(SessionTableSchemaError, match=r"SHOPIFY_SESSIONS\['URL'\]"):
            shopify.get_storage().store_session(_session())
        with pytest.raises(SessionTableSchemaError, match="an existing table"):
            _migrate("default")


def test_an_existing_table_the_storage_cannot_use_fails_the_migration(alias: str) -> None:
    table = unique_table_name("dj")
    with (
        override_settings(SHOPIFY_SESSIONS={"DATABASE": alias, "TABLE": table}),
        DjangoTestDatabase(alias) as database,
    ):
        _migrate(alias, "zero")
        engine = database.engine()
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"CREATE TABLE {table} (id VARCHAR(255) PRIMARY KEY)")
            with pytest.raises(
                SessionTableSchemaError, match=r"manage\.py shopify_sessions upgrade"
            ):
                _migrate(alias)
        finally:
            engine.dispose()


def test_flush_empties_the_tables_as_a_transaction_test_case_does(alias: str) -> None:
    """A TransactionTestCase (pytest-django's django_db(transaction=True)) flushes the
    database after each test: the stub models put the sessions tables in the flush."""
    names = migration_table_names()  # what the models were made with in this process
    with (
        override_settings(SHOPIFY_SESSIONS={"DATABASE": alias, "TABLE": names[0]}),
        DjangoTestDatabase(alias),  # a database of its own: the default names are free
    ):
        storage = shopify.get_storage()
        storage.store_session(_session())
        call_command("flush", database=alias, interactive=False, verbosity=0)
        assert storage.load_session(_session().id) is None


@pytest.mark.parametrize(("layout", "table"), [("default", ""), ("prisma", ""), ("drizzle", "t")])
def test_makemigrations_finds_nothing_to_do(layout: str, table: str) -> None:
    """Whatever the settings name: the stub models and the migration's state agree."""
    checked = _manage_py(
        "makemigrations",
        "--check",
        "--dry-run",
        "--settings",
        "django_settings",
        table=table,
        layout=layout,
        command=(),
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No changes detected" in checked.stdout


def test_sqlmigrate_shows_the_statements(alias: str, sessions_of: dict[str, Any]) -> None:
    with DjangoTestDatabase(alias):
        _migrate(alias, "zero")
        sql = _capture(
            lambda: call_command("sqlmigrate", "shopify_sessions", "0001", database=alias)
        )
    assert "CREATE TABLE" in sql and sessions_of["TABLE"] in sql and "Shopify sessions" in sql


# --- the storage follows Django's connection --------------------------------------------------


def test_the_storage_follows_django_into_the_test_database_and_back(
    alias: str, sessions_of: dict[str, Any]
) -> None:
    """Made before the test database exists (an import-time get_storage()), it writes into
    the test database while there is one, and Django can drop it after a lock's lease."""
    development_url = shopify.database_url(alias)
    storage = shopify.get_storage()
    with DjangoTestDatabase(alias) as database:
        assert database.url() != development_url
        in_tests = shopify.get_storage()
        assert in_tests is not storage
        with in_tests.lock_session(_session().id):  # a lease, on PostgreSQL and MariaDB
            in_tests.store_session(_session())
        engine = database.engine()
        try:
            with engine.connect() as connection:
                table = sessions_of["TABLE"]
                quote = "`" if alias == "mysql" else '"'
                rows = connection.exec_driver_sql(f"SELECT id FROM {quote}{table}{quote}").all()
        finally:
            engine.dispose()
        assert [row[0] for row in rows] == [_session().id]
        connections[alias].close()  # Django lets go of it (CONN_MAX_AGE, a request's end)
        assert in_tests.load_session(_session().id) == _session()  # on its new one
    # Dropped with its connections closed (Django refuses to drop a database in use).
    assert shopify.database_url(alias) == development_url
    assert shopify.get_storage() is not in_tests


@pytest.mark.parametrize("server", ["sqlite", "postgresql"])
def test_a_failed_operation_inside_a_transaction_leaves_the_transaction_usable(
    server: str,
) -> None:
    """Each operation is a savepoint of the caller's transaction: on PostgreSQL a failed
    statement would otherwise abort all of it. (The failure is made by DDL, which MySQL
    would commit at once.)"""
    require_server(server)
    alias, table = SERVERS[server], unique_table_name("dj")
    with (
        override_settings(SHOPIFY_SESSIONS={"DATABASE": alias, "TABLE": table}),
        DjangoTestDatabase(alias),
        transaction.atomic(using=alias),
    ):
        storage = shopify.get_storage()
        storage.store_session(_session())
        with connections[alias].cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")
        with pytest.raises(StorageOperationError):
            storage.store_session(_session())
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")  # the caller's transaction goes on
            assert cursor.fetchone() == (1,)
        transaction.set_rollback(True, using=alias)


def test_a_connection_killed_under_the_storage_is_replaced_by_the_retry() -> None:
    """PostgreSQL ends the backend of Django's connection (a restart, an idle timeout): the
    next operation fails over to a new connection from Django, as the storage's own engine
    would, instead of failing until the request ends."""
    require_server("postgresql")
    table = unique_table_name("dj")
    with (
        override_settings(SHOPIFY_SESSIONS={"DATABASE": "postgresql", "TABLE": table}),
        DjangoTestDatabase("postgresql") as database,
    ):
        storage = shopify.get_storage()
        storage.store_session(_session())
        with connections["postgresql"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        engine = database.engine()
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            engine.dispose()
        assert storage.load_session(_session().id) == _session()


def test_the_django_storage_overrides_the_backends_attempt_as_it_is() -> None:
    """DjangoSessionStorage runs every operation through its own ``_attempt``: a change of
    the backend's signature must show here, not as an operation run on another engine."""
    from shopify_sessions.django._storage import DjangoSessionStorage
    from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage

    def names(function: Any) -> list[str]:
        return list(python_inspect.signature(function).parameters)

    assert names(DjangoSessionStorage._attempt) == names(SQLAlchemySessionStorage._attempt)
    assert '"lock_session"' in python_inspect.getsource(SQLAlchemySessionStorage._take_lease)


# --- SQLite and the caller's transaction ------------------------------------------------------


@pytest.mark.parametrize("in_memory", [False, True], ids=["file", "in-memory"])
def test_a_session_stored_inside_a_transaction_that_wrote_on_sqlite_works(
    in_memory: bool,
) -> None:
    """It waited 25 s for that very transaction, then failed with 'database is locked'."""
    config = {"DATABASE": "default", "TABLE": unique_table_name("dj")}
    connection = connections["default"]
    with (
        override_settings(SHOPIFY_SESSIONS=config),
        DjangoTestDatabase("default", in_memory=in_memory),
    ):
        storage = shopify.get_storage()
        if in_memory:  # the storage works on it; a command, in a process of its own, cannot
            with pytest.raises(ImproperlyConfigured, match=r"\['TEST'\]\['NAME'\]"):
                shopify.database_url()
        with transaction.atomic():  # ATOMIC_REQUESTS, a TestCase, django_db: the same
            with connection.cursor() as cursor:
                cursor.execute("CREATE TABLE app_rows (x INTEGER)")
                cursor.execute("INSERT INTO app_rows VALUES (1)")  # the write lock is held
            storage.store_session(_session())
            assert storage.load_session(_session().id) == _session()
        assert storage.load_session(_session().id) == _session()  # committed with it


# --- system checks ---------------------------------------------------------------------------


def _messages(**overrides: Any) -> dict[str, str]:
    with override_settings(**overrides):
        return {message.id: message.msg for message in run_checks() if message.id}


def test_the_system_checks_refuse_what_get_storage_refuses() -> None:
    asyncio_url = _messages(SHOPIFY_SESSIONS={"URL": "postgresql+asyncpg://u@h/db"})
    assert "asyncio driver" in asyncio_url["shopify_sessions.E003"]
    assert "'prisme'" in _messages(SHOPIFY_SESSIONS={"LAYOUT": "prisme"})["shopify_sessions.E004"]
    prisma_on_sqlite = _messages(SHOPIFY_SESSIONS={"LAYOUT": "prisma"})["shopify_sessions.E004"]
    assert "SQLite" in prisma_on_sqlite
    assert "shopify_sessions.E004" not in _messages(
        SHOPIFY_SESSIONS={"LAYOUT": "prisma", "DATABASE": "postgresql"}
    )
    assert (
        "not in DATABASES"
        in _messages(SHOPIFY_SESSIONS={"DATABASE": "nowhere"})["shopify_sessions.E002"]
    )
    assert (
        "dummy" in _messages(SHOPIFY_SESSIONS={"DATABASE": "unsupported"})["shopify_sessions.E002"]
    )
    assert "unknown keys" in _messages(SHOPIFY_SESSIONS={"TABEL": "x"})["shopify_sessions.E001"]
    assert "SHOPIFY_API_KEY" in _messages(SHOPIFY_API_KEY="")["shopify_sessions.W001"]
    assert not {
        key
        for key in _messages(SHOPIFY_API_KEY="k", SHOPIFY_API_SECRET="s")
        if key.startswith("shopify_sessions")
    }
    for refused in ({"URL": "postgresql+asyncpg://u@h/db"}, {"LAYOUT": "prisme"}):
        with override_settings(SHOPIFY_SESSIONS=refused), pytest.raises(Exception):  # noqa: B017
            shopify.get_storage()


def test_the_database_check_reads_the_migrated_table(
    alias: str, sessions_of: dict[str, Any]
) -> None:
    with DjangoTestDatabase(alias):
        assert not [m for m in run_checks(databases=[alias]) if m.id == "shopify_sessions.E010"]
        with connections[alias].cursor() as cursor:
            cursor.execute(f"ALTER TABLE {sessions_of['TABLE']} DROP COLUMN state")
        problems = [m.msg for m in run_checks(databases=[alias]) if m.id == "shopify_sessions.E010"]
        assert problems and "state" in problems[0]


# --- manage.py shopify_sessions --------------------------------------------------------------


def _manage_py(
    *arguments: str,
    table: str = "session",
    layout: str = "default",
    command: tuple[str, ...] = ("shopify_sessions",),
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SHOPIFY_SESSIONS_TEST_TABLE": table,
        "SHOPIFY_SESSIONS_TEST_LAYOUT": layout,
        # Prisma's layout is for PostgreSQL and MySQL (not SQLite) under Django.
        "SHOPIFY_SESSIONS_TEST_DATABASE": "postgresql" if layout == "prisma" else "default",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *command, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def test_manage_py_takes_djangos_options_after_the_subcommand_and_names_itself() -> None:
    table = unique_table_name("dj")
    # The database file is there, the table is not (whichever tests ran before this one).
    Path(os.environ["SQLITE_PATH"]).touch()
    missing = _manage_py("check", "--settings", "django_settings", "--json", table=table)
    assert "No such option" not in missing.stderr, missing.stderr
    assert missing.returncode == 4, missing.stdout + missing.stderr  # the table is missing
    assert "manage.py shopify_sessions init" in missing.stdout
    assert "shopify-sessions init" not in missing.stdout

    helped = _manage_py("check", "--help", "--settings=django_settings", "-v", "0")
    assert helped.returncode == 0, helped.stderr
    assert "manage.py shopify_sessions check [OPTIONS]" in helped.stdout
    assert "shopify_sessions.cli" not in helped.stdout


def test_manage_py_refuses_what_get_storage_refuses() -> None:
    environment_settings = "django_settings_asyncio"
    module = Path(__file__).parent / f"{environment_settings}.py"
    assert module.is_file()
    refused = _manage_py("check", "--settings", environment_settings)
    assert refused.returncode != 0
    assert "shopify_sessions.E003" in refused.stderr and "asyncio driver" in refused.stderr


def _reflected(engine: Any, table: str) -> Any:
    from sqlalchemy import MetaData, Table

    with engine.connect() as connection:
        return Table(table, MetaData(), autoload_with=connection)


def _capture(call: Any) -> str:
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        call()
    return out.getvalue()
