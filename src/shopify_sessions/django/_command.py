"""How ``manage.py shopify_sessions`` runs the ``shopify-sessions`` command: as a process of
its own (as a user runs it, with its output, exit codes and cleanup), given the database
and the app's credentials of the settings in its environment, never on its command line,
and the table and schema of the settings where the command line does not name them."""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured

from ._settings import credentials, database_url, options


def command_line(subcommand: str, arguments: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``shopify-sessions SUBCOMMAND ARGUMENTS``."""
    import typer.main

    from ..cli._app import app

    command = getattr(typer.main.get_command(app), "commands", {}).get(subcommand)
    taken = {
        name for param in getattr(command, "params", ()) for name in getattr(param, "opts", ())
    }
    argv = [sys.executable, "-m", "shopify_sessions.cli", subcommand, *arguments]
    environment = dict(os.environ)
    config = options()
    for option, value in (("--table", config["TABLE"]), ("--schema", config["SCHEMA"])):
        if option in taken and value is not None and not _given(option, arguments):
            argv += [option, str(value)]
    if "--url" in taken and not _given("--url", arguments):
        environment["DATABASE_URL"] = database_url()
    try:
        client_id, client_secret = credentials()
    except ImproperlyConfigured:
        pass  # the subcommands that need them say so
    else:
        environment.update(SHOPIFY_API_KEY=client_id, SHOPIFY_API_SECRET=client_secret)
    return argv, environment


def _given(option: str, arguments: list[str]) -> bool:
    return any(a == option or a.startswith(option + "=") for a in arguments)
