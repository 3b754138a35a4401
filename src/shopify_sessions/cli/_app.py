"""The Typer application: one line per subcommand.

To add a subcommand, write ``_<name>.py`` with one function taking the options of
``_options.py`` (and its own), whose body runs inside ``reporting(...)``, and register
it below with ``app.command("<name>")(...)``.
"""

from __future__ import annotations

import sys

import typer

from .. import __version__
from . import (
    _check,
    _copy,
    _init,
    _migrate_legacy,
    _purge,
    _reencrypt,
    _refresh_expiring,
    _upgrade,
)
from ._options import program_name
from ._output import click_exceptions, usage_failure

app = typer.Typer(
    name="shopify-sessions",
    help=(
        "Operate a Shopify sessions table: check it, create or upgrade it, purge expired "
        "sessions, re-encrypt tokens, copy sessions between databases, keep offline tokens "
        "warm and migrate legacy ones. The database URL comes from --url or DATABASE_URL. "
        "Exit codes: 0 ok; 1 a problem found (check, copy, refresh-expiring, "
        "migrate-legacy); 2 bad usage or input; 3 database unreachable; 4 table missing; "
        "5 table unusable; 6 the database refused an operation; 7 the database refused the "
        "connection (credentials, or no such database); 8 done, but some rows or keys hold "
        "no session (skipped, listed)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        print(f"shopify-sessions {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        help="Show the installed version of shopify-sessions and exit.",
        callback=_show_version,
        is_eager=True,
    ),
) -> None:
    """Options before the subcommand."""


app.command("check")(_check.check)
app.command("init")(_init.init)
app.command("upgrade")(_upgrade.upgrade)
app.command("purge")(_purge.purge)
app.command("reencrypt")(_reencrypt.reencrypt)
app.command("copy")(_copy.copy)
app.command("refresh-expiring")(_refresh_expiring.refresh_expiring)
app.command("migrate-legacy")(_migrate_legacy.migrate_legacy)


def run() -> None:
    """Run the command. Under ``--json`` a usage error too is one JSON document on stdout,
    as every other failure is; without it, Typer shows it in its own box."""
    arguments = sys.argv[1:]
    prog = program_name()
    if "--json" not in arguments:
        app(prog_name=prog)
        return
    try:
        code = app(arguments, prog_name=prog, standalone_mode=False)
    except click_exceptions.UsageError as error:
        usage_failure(error)
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        code = 1
    raise SystemExit(code if isinstance(code, int) else 0)
