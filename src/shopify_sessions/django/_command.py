"""How ``manage.py shopify_sessions`` runs the ``shopify-sessions`` command: as a process of
its own (as a user runs it: its output, exit codes and cleanup), given the database, the
table and the app's credentials of the settings in its environment, never on its command
line. Options on the command line win over them, as they do for the command."""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured

from ._settings import credentials, database_url, options


def command_line(subcommand: str, arguments: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``shopify-sessions SUBCOMMAND ARGUMENTS``."""
    argv = [sys.executable, "-m", "shopify_sessions.cli", subcommand, *arguments]
    config = options()
    environment = {**os.environ, "DATABASE_URL": database_url()}
    for variable, value in (
        ("SHOPIFY_SESSIONS_TABLE", config["TABLE"]),
        ("SHOPIFY_SESSIONS_SCHEMA", config["SCHEMA"]),
    ):
        if value is not None:
            environment[variable] = str(value)
    try:
        client_id, client_secret = credentials()
    except ImproperlyConfigured:
        pass  # the subcommands that need them say so
    else:
        environment.update(SHOPIFY_API_KEY=client_id, SHOPIFY_API_SECRET=client_secret)
    return argv, environment
