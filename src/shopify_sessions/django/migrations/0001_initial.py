"""The sessions table and its lock table, in the database, table and layout of
``SHOPIFY_SESSIONS`` (see ``shopify_sessions.django._migration``); Django's state gets the
two stub models that name them (``shopify_sessions.django.models``)."""

from typing import ClassVar

from django.db import migrations, models

from shopify_sessions.django._migration import SessionTables
from shopify_sessions.django._settings import migration_table_names

SESSIONS_TABLE, LOCK_TABLE = migration_table_names()


class Migration(migrations.Migration):
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[migrations.operations.base.Operation]] = [
        migrations.SeparateDatabaseAndState(
            database_operations=[SessionTables()],
            state_operations=[
                migrations.CreateModel(
                    name="Session",
                    fields=[
                        ("id", models.CharField(max_length=255, primary_key=True, serialize=False)),
                    ],
                    options={"db_table": SESSIONS_TABLE, "default_permissions": ()},
                ),
                migrations.CreateModel(
                    name="SessionLock",
                    fields=[
                        ("id", models.CharField(max_length=255, primary_key=True, serialize=False)),
                    ],
                    options={"db_table": LOCK_TABLE, "default_permissions": ()},
                ),
            ],
        ),
    ]
