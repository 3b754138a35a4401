"""``manage.py shopify_sessions SUBCOMMAND [OPTIONS]``: the ``shopify-sessions`` command on
the sessions table of the settings."""

from __future__ import annotations

import argparse
import os
import subprocess
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ..._command import command_line, django_options_first


class Command(BaseCommand):
    help = (
        "Run a shopify-sessions subcommand (check, init, upgrade, purge, reencrypt, copy, "
        "refresh-expiring, migrate-legacy) on the sessions table of SHOPIFY_SESSIONS, with "
        "the app's credentials of the settings. Its options follow it, as the command "
        "takes them: manage.py shopify_sessions refresh-expiring --within 7d --json; "
        "manage.py shopify_sessions SUBCOMMAND --help tells its options."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        #: What the command calls itself in its help and hints: this command's name.
        self.prog = f"{os.path.basename(prog_name) or 'manage.py'} {subcommand}"
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subcommand", help="the shopify-sessions subcommand")
        parser.add_argument(
            "arguments", nargs=argparse.REMAINDER, help="its options (SUBCOMMAND --help)"
        )

    def run_from_argv(self, argv: list[str]) -> None:
        # Django's own options (--settings, --traceback, -v...) may follow the subcommand,
        # as for any other command: they are Django's, never the subcommand's.
        super().run_from_argv([*argv[:2], *django_options_first(argv[2:])])

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand: str = options["subcommand"]
        prog = getattr(self, "prog", "manage.py shopify_sessions")
        argv, environment = command_line(subcommand, list(options["arguments"]), prog)
        code = subprocess.run(argv, env=environment, check=False).returncode
        if code:
            raise CommandError(f"{prog} {subcommand} exited with {code}", returncode=code)
