"""The README's Alembic recipe, for real on PostgreSQL, MariaDB and SQLite.

An Alembic environment made by ``alembic init`` with ``session_table(metadata)`` in
``target_metadata``: ``alembic revision --autogenerate`` then ``alembic upgrade head``
make the same table as ``create_table()``, and then ``alembic check`` finds nothing to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, create_engine, inspect, make_url, text

from conftest import MYSQL_URL, POSTGRESQL_URL, require_server, unique_table_name
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage, session_table

ALEMBIC = str(Path(sys.executable).parent / "alembic")

#: What the README tells users to put in the env.py that `alembic init` wrote.
RECIPE_IMPORTS = """
import os

from shopify_sessions.sqlalchemy import resolve_url, session_table
from sqlalchemy import MetaData

config = context.config
# DATABASE_URL as the platform gives it (postgres://, mysql://): a sync driver is chosen.
config.set_main_option(
    "sqlalchemy.url",
    resolve_url(os.environ["DATABASE_URL"], is_async=False).render_as_string(hide_password=False),
)
"""
RECIPE_METADATA = """
target_metadata = MetaData()
session_table(target_metadata, os.environ.get("SESSIONS_TABLE", "session"))


def include_name(name, type_, parent_names):
    # A database shared with other apps: look only at the tables declared here.
    return type_ != "table" or name in target_metadata.tables
"""


def patch_env(env_py: Path) -> None:
    source = env_py.read_text()
    source = source.replace("config = context.config\n", RECIPE_IMPORTS, 1)
    source = source.replace("target_metadata = None\n", RECIPE_METADATA, 1)
    source = source.replace(
        "connection=connection, target_metadata=target_metadata",
        "connection=connection,\n            target_metadata=target_metadata,\n"
        "            include_name=include_name,\n"
        '            version_table=os.environ.get("ALEMBIC_VERSION_TABLE", "alembic_version"),',
        1,
    )
    assert source.count("include_name=include_name") == 1
    env_py.write_text(source)


def url_for(server: str, tmp_path: Path) -> str:
    if server == "sqlite":
        return f"sqlite:///{tmp_path / 'app.sqlite3'}"
    url = make_url(POSTGRESQL_URL if server == "postgresql" else MYSQL_URL)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    server = request.param
    require_server(server)
    url = url_for(server, tmp_path)
    sync = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
    engine: Engine = create_engine(make_url(url).set(drivername=sync[server]))
    names = {
        "SESSIONS_TABLE": unique_table_name("alembic"),
        "ALEMBIC_VERSION_TABLE": unique_table_name("alembic_version"),
        "REFERENCE": unique_table_name("created"),
    }
    yield {"server": server, "url": url, "engine": engine, "names": names, "dir": tmp_path}
    with engine.begin() as connection:
        for name in names.values():
            connection.execute(
                text(f"DROP TABLE IF EXISTS {engine.dialect.identifier_preparer.quote(name)}")
            )
    engine.dispose()


def alembic(place: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **place["names"], "DATABASE_URL": place["url"]}
    return subprocess.run(
        [ALEMBIC, *args],
        cwd=place["dir"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def shape(engine: Engine, name: str) -> dict[str, Any]:
    """Everything about a table that a migration decides, with its name taken out."""
    inspector = inspect(engine)
    dialect = engine.dialect
    columns = [
        (
            column["name"],
            str(column["type"].compile(dialect=dialect)),
            column["nullable"],
            str(column.get("default")),
        )
        for column in inspector.get_columns(name)
    ]
    indexes = sorted(
        (index["name"].replace(name, "T"), tuple(index["column_names"]), bool(index["unique"]))
        for index in inspector.get_indexes(name)
    )
    primary_key = inspector.get_pk_constraint(name)["constrained_columns"]
    return {"columns": columns, "indexes": indexes, "primary_key": primary_key}


def test_autogenerate_and_upgrade_make_the_table_create_table_makes(place: dict[str, Any]) -> None:
    made = alembic(place, "init", "migrations")
    assert made.returncode == 0, made.stderr
    patch_env(place["dir"] / "migrations" / "env.py")
    (place["dir"] / "alembic.ini").write_text(
        (place["dir"] / "alembic.ini")
        .read_text()
        .replace("driver://user:pass@localhost/dbname", "")
    )

    revision = alembic(place, "revision", "--autogenerate", "-m", "sessions table")
    assert revision.returncode == 0, revision.stderr
    [script] = (place["dir"] / "migrations" / "versions").glob("*.py")
    body = script.read_text()
    assert "op.create_table(" in body and "op.create_index(" in body

    upgraded = alembic(place, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr

    engine = place["engine"]
    names = place["names"]
    reference = SQLAlchemySessionStorage(
        place["url"], table=session_table(MetaData(), names["REFERENCE"])
    )
    reference.create_table()
    reference.close()
    alembic_made = shape(engine, names["SESSIONS_TABLE"])
    assert alembic_made == shape(engine, names["REFERENCE"])
    assert len(alembic_made["columns"]) == 17 and alembic_made["indexes"]

    # The storage uses the table Alembic made, and a second autogenerate finds nothing.
    storage = SQLAlchemySessionStorage(place["url"], table=names["SESSIONS_TABLE"])
    storage.check_table()
    storage.close()
    checked = alembic(place, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
