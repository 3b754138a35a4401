"""The migration operation that creates the sessions table and its lock table.

A table's name and layout come from ``SHOPIFY_SESSIONS`` (``TABLE``, ``SCHEMA``,
``LAYOUT``), and its columns differ by layout and database: no Django model field maps
them all, so the operation creates them as the storage would (the package's SQLAlchemy
definitions, compiled for the database being migrated), through Django's schema editor,
so that ``sqlmigrate`` shows the statements and ``--fake`` skips them like any others.

- In the sessions' database only (``DATABASE``; a ``URL`` is not Django's to migrate), and
  where the routers allow ``shopify_sessions`` to migrate.
- A table that exists (a Node app's, one made by ``shopify-sessions init``) is left as it
  is and checked: a table the storage could not use fails the migration, listing every
  problem. Its lock table is created beside it if missing.
- A table the operation creates carries a comment saying so (PostgreSQL and MySQL keep
  table comments, SQLite keeps the CREATE statement's text). Reversed, the operation drops
  the tables it created, and only those: a Node app's table stays.
"""

from __future__ import annotations

from typing import Any

from django.db import router
from django.db.migrations.operations.base import Operation
from sqlalchemy import Connection, MetaData, Table, inspect, text
from sqlalchemy.schema import DropTable

from .._errors import MissingSessionTableError, SessionTableSchemaError
from ..sqlalchemy._create import create_statements, layout_table
from ..sqlalchemy._table import lock_table_name, session_lock_table
from ._settings import layout, options, sessions_alias, table_name
from ._storage import DjangoSessionStorage, converted_columns

#: The comment of a table the migration created: how its reverse knows it may drop it.
MARKER = "Shopify sessions, created by the shopify_sessions Django migration"


class SessionTables(Operation):
    """Create the sessions table of ``SHOPIFY_SESSIONS`` and its lock table, or check the
    existing one (see the module's docstring); reversed, drop the tables it created."""

    reversible = True
    reduces_to_sql = True

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def describe(self) -> str:
        return "Create the Shopify sessions table and its lock table (or check an existing one)"

    @property
    def migration_name_fragment(self) -> str:
        return "session_tables"

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        where = self._where(app_label, schema_editor)
        if where is None:
            return
        storage, name, schema = where
        sessions: Table | None = None
        try:
            storage.check_table()
        except MissingSessionTableError:
            sessions = layout_table(MetaData(), layout(), name, schema=schema, comment=MARKER)
        except SessionTableSchemaError as error:
            raise SessionTableSchemaError(
                f"{storage.table_description} (an existing table, which the migration leaves "
                "as it is: `manage.py shopify_sessions upgrade` adds what an older table "
                "lacks; or name another table in SHOPIFY_SESSIONS['TABLE'])",
                error.problems,
            ) from error
        if sessions is not None:
            converted = converted_columns(sessions, storage.engine.dialect)
            if converted:
                problem = (
                    f"{', '.join(converted)} would be DATETIME, which Django's SQLite "
                    "connections convert as they read it (Prisma keeps epoch milliseconds "
                    "there): give SQLite the 'default' or 'drizzle' LAYOUT, or keep a Prisma "
                    "table at a SHOPIFY_SESSIONS['URL']"
                )
                raise SessionTableSchemaError(storage.table_description, [problem])
        locks: Table | None = session_lock_table(MetaData(), lock_table_name(name), schema=schema)
        with storage.engine.connect() as connection:
            assert locks is not None
            if inspect(connection).has_table(locks.name, schema=schema):
                locks = None
            dialect = connection.dialect
        for statement in create_statements(sessions, locks, dialect):
            schema_editor.execute(statement, params=None)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        where = self._where(app_label, schema_editor)
        if where is None:
            return
        storage, name, schema = where
        with storage.engine.connect() as connection:
            if not _created_here(connection, name, schema):
                return  # not ours (a Node app's, or gone already): left as it is
            dialect = connection.dialect
            exists = inspect(connection).has_table(lock_table_name(name), schema=schema)
        drops = [Table(name, MetaData(), schema=schema)]
        if exists:
            drops.insert(0, Table(lock_table_name(name), MetaData(), schema=schema))
        for table in drops:
            schema_editor.execute(str(DropTable(table).compile(dialect=dialect)), params=None)

    def _where(
        self, app_label: str, schema_editor: Any
    ) -> tuple[DjangoSessionStorage, str, str | None] | None:
        """The storage on the database being migrated, the table's name and schema; ``None``
        when the sessions are in another database (or a URL), or the routers say no."""
        alias = schema_editor.connection.alias
        config = options()
        if sessions_alias(config) != alias:
            return None
        if not router.allow_migrate(alias, app_label, model_name="session"):
            return None
        name, schema = table_name(config), config["SCHEMA"]
        return DjangoSessionStorage(alias, table=name, schema=schema), name, schema


def _created_here(connection: Connection, name: str, schema: str | None) -> bool:
    """Whether the table ``name`` exists and carries the migration's comment."""
    inspector = inspect(connection)
    if not inspector.has_table(name, schema=schema):
        return False
    if connection.dialect.name == "sqlite":
        stored = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": name},
        ).scalar()
        return MARKER in str(stored or "")
    comment = inspector.get_table_comment(name, schema=schema).get("text")
    return comment == MARKER
