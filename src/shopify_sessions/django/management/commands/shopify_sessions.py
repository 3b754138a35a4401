"""``manage.py shopify_sessions SUBCOMMAND [OPTIONS]``: the ``shopify-sessions`` command on
the sessions table of the settings."""

from __future__ import annotations

import argparse
import subprocess
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ..._command import command_line


class Command(BaseCommand):
    help = (
        "Run a shopify-sessions subcommand (check, init, upgrade, purge, reencrypt, copy, "
        "refresh-expiring, migrate-legacy) on the sessions table of SHOPIFY_SESSIONS, with "
        "the app's credentials of the settings. Its options follow it, as the command "
        "takes them: manage.py shopify_sessions refresh-expiring --within 7d --json"
    )
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subcommand", help="the shopify-sessions subcommand")
        parser.add_argument(
            "arguments", nargs=argparse.REMAINDER, help="its options (shopify-sessions --help)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand: str = options["subcommand"]
        argv, environment = command_line(subcommand, list(options["arguments"]))
        code = subprocess.run(argv, env=environment, check=False).returncode
        if code:
            raise CommandError(f"shopify-sessions {subcommand} exited with {code}", returncode=code)
