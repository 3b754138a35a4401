"""The Typer application: one line per subcommand.

To add a subcommand, write ``_<name>.py`` with one function taking the options of
``_options.py`` (and its own), whose body runs inside ``reporting(...)``, and register
it below with ``_register("<name>", ...)``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

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


def paragraphs(text: str) -> str:
    """A docstring as help text: each paragraph on one line, which Rich wraps to the
    terminal (Typer keeps the docstring's own line breaks, which then break lines
    mid-sentence). A paragraph that starts with ``\\b`` keeps its lines, as in Click."""
    kept = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b\n"):
            kept.append(paragraph.removeprefix("\b\n"))
        else:
            kept.append(" ".join(line.strip() for line in paragraph.splitlines()))
    return "\n\n".join(kept)


def _flags_untyped(params: list[Any]) -> list[Any]:
    """``params`` with no value type shown for a flag (``--json``, ``--help``): Typer
    0.29 shows ``<bool>`` beside them, which reads as if they took a value."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Group(TyperGroup):
    """The command's group: its flags show no value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


class Command(TyperCommand):
    """A subcommand: its flags show no value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


app = typer.Typer(
    name="shopify-sessions",
    cls=Group,
    help=paragraphs(
        """
        Operate a Shopify sessions table: check it, create or upgrade it, purge expired
        sessions, re-encrypt tokens, copy sessions between databases, keep offline tokens
        warm and migrate legacy ones. The database URL comes from --url or DATABASE_URL.

        \b
        Exit codes:
          0  ok
          1  a problem found (check, copy, refresh-expiring, migrate-legacy)
          2  bad usage or input
          3  database unreachable
          4  table missing
          5  table unusable
          6  the database refused an operation
          7  the database refused the connection (credentials, or no such database)
          8  done, but some rows or keys hold no session (skipped, listed)
          9  the environment lacks the app's credentials (SHOPIFY_API_KEY, SHOPIFY_API_SECRET)
        """
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


def _register(name: str, function: Callable[..., None]) -> None:
    """Add subcommand ``name``: ``function``, its docstring as help, by paragraph."""
    app.command(name, cls=Command, help=paragraphs(function.__doc__ or ""))(function)


_register("check", _check.check)
_register("init", _init.init)
_register("upgrade", _upgrade.upgrade)
_register("purge", _purge.purge)
_register("reencrypt", _reencrypt.reencrypt)
_register("copy", _copy.copy)
_register("refresh-expiring", _refresh_expiring.refresh_expiring)
_register("migrate-legacy", _migrate_legacy.migrate_legacy)


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
