"""How ``manage.py shopify_sessions`` runs the ``shopify-sessions`` command: as a process of
its own (as a user runs it: its output, exit codes and cleanup), given the database, the
table and the app's credentials of the settings in its environment, never on its command
line. Options on the command line win over them, as they do for the command."""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured

from ._settings import credentials, database_url, options, sessions_alias, table_name

#: Django's options of every command: those that take a value, and those that don't.
_WITH_VALUE = ("--settings", "--pythonpath", "--verbosity", "-v")
_FLAGS = ("--traceback", "--no-color", "--force-color", "--skip-checks")


def django_options_first(arguments: list[str]) -> list[str]:
    """``arguments`` with Django's own options moved to the front, before the subcommand,
    where Django's parser takes them; the rest keeps its order."""
    django: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        name = argument.split("=", 1)[0]
        if argument in _FLAGS or (name in _WITH_VALUE and "=" in argument):
            django.append(argument)
        elif argument in _WITH_VALUE and index + 1 < len(arguments):
            django += arguments[index : index + 2]
            index += 1
        else:
            rest.append(argument)
        index += 1
    return [*django, *rest]


def command_line(
    subcommand: str, arguments: list[str], prog: str = "manage.py shopify_sessions"
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``shopify-sessions SUBCOMMAND ARGUMENTS``, run as
    ``prog`` (its help and hints name it)."""
    argv = [sys.executable, "-m", "shopify_sessions.cli", subcommand, *arguments]
    config = options()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SHOPIFY_SESSIONS_PROG_NAME": prog,
    }
    # The table of a DATABASES entry is the one its migration made (the layout's name);
    # a URL's is the one the settings name, if any.
    table = table_name(config) if sessions_alias(config) is not None else config["TABLE"]
    for variable, value in (
        ("SHOPIFY_SESSIONS_TABLE", table),
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
