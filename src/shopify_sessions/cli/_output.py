"""What the command prints, and how errors become messages and exit codes.

Human output goes through Rich; ``--json`` prints exactly one JSON document on stdout.
Progress and errors go to stderr. Tokens are never printed: results carry counts and
ids, and error messages come from this package's errors, which never hold a token.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Table

from .._encryption import TokenDecryptionError
from .._errors import (
    DatabaseURLError,
    InvalidSessionError,
    MissingSessionTableError,
    SessionStorageError,
    SessionTableSchemaError,
    StorageAccessDeniedError,
    StorageUnavailableError,
    UnsupportedDialectError,
)

#: Click's exceptions, from the Click that Typer runs on (recent Typer has its own copy).
click_exceptions: Any = sys.modules[typer.BadParameter.__module__]


class ExitCode(enum.IntEnum):
    """The command's exit codes (documented in the README and ``--help``)."""

    OK = 0
    PROBLEM = 1  # check found a problem; copy could not copy or verify every session
    USAGE = 2  # bad options or input (Typer's own usage errors too)
    UNAVAILABLE = 3  # the database cannot be reached
    NO_TABLE = 4  # the sessions table does not exist
    SCHEMA = 5  # the table exists but cannot hold sessions
    FAILED = 6  # the database refused an operation, or a token did not decrypt
    REFUSED = 7  # the server refused the connection: credentials, or no such database
    INVALID_ENTRIES = 8  # done, but some rows or keys hold no session: skipped, listed
    CONFIGURATION = 9  # the environment lacks what the subcommand needs: the app's credentials


class ConfigurationError(SessionStorageError):
    """The command's environment lacks what the subcommand needs (the app's credentials
    for a call to Shopify): nothing was done, and nothing will be until it is set."""


class Output:
    """Where and how one run of a subcommand prints."""

    def __init__(self, command: str, as_json: bool) -> None:
        self.command = command
        self.as_json = as_json
        #: What a failure's JSON document says besides the error (what was done first).
        self.details: dict[str, Any] = {}
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def say(self, message: str) -> None:
        """A line for people (nothing in ``--json`` mode)."""
        if not self.as_json:
            self.out.print(message)

    def warn(self, message: str) -> None:
        """A warning on stderr, in both modes (``message`` is text, not Rich markup)."""
        self.err.print(f"[yellow]warning:[/] {escape(message)}")

    def done(self, result: dict[str, Any], code: ExitCode = ExitCode.OK) -> NoReturn:
        """Print the JSON result (in ``--json`` mode) and exit with ``code``."""
        if self.as_json:
            document = {"command": self.command, "ok": code == ExitCode.OK, **result}
            sys.stdout.write(json.dumps(document, default=str) + "\n")
            sys.stdout.flush()
        raise typer.Exit(int(code))

    def fail(self, error: BaseException, code: ExitCode) -> NoReturn:
        """Report ``error`` and exit with ``code``."""
        self.report(error, code)
        raise typer.Exit(int(code))

    def report(self, error: BaseException, code: ExitCode) -> None:
        """Tell about ``error``: a JSON document on stdout, or a line on stderr (as text:
        ``pip install 'shopify-sessions[pymysql]'`` is no Rich markup)."""
        if isinstance(error, click_exceptions.ClickException):
            message = error.format_message()
        else:
            message = str(error) or type(error).__name__
        if self.as_json:
            document: dict[str, Any] = {
                "command": self.command,
                "ok": False,
                "exit_code": int(code),
                "error": {"type": type(error).__name__, "message": message},
                **self.details,
            }
            if isinstance(error, SessionTableSchemaError):
                document["error"]["problems"] = list(error.problems)
            sys.stdout.write(json.dumps(document) + "\n")
            sys.stdout.flush()
        else:
            self.err.print(f"[red]error:[/] {escape(message)}")


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code of an error that ends a subcommand."""
    if isinstance(error, ConfigurationError):
        return ExitCode.CONFIGURATION
    if isinstance(error, (DatabaseURLError, UnsupportedDialectError, InvalidSessionError)):
        return ExitCode.USAGE
    if isinstance(error, StorageAccessDeniedError):
        return ExitCode.REFUSED
    if isinstance(error, StorageUnavailableError):
        return ExitCode.UNAVAILABLE
    if isinstance(error, MissingSessionTableError):
        return ExitCode.NO_TABLE
    if isinstance(error, SessionTableSchemaError):
        return ExitCode.SCHEMA
    if isinstance(error, (SessionStorageError, TokenDecryptionError)):
        return ExitCode.FAILED
    if isinstance(error, (ValueError, TypeError)):
        return ExitCode.USAGE
    return ExitCode.FAILED


@contextmanager
def reporting(command: str, as_json: bool) -> Iterator[Output]:
    """Run a subcommand's body: this package's errors become a message and an exit code."""
    output = Output(command, as_json)
    try:
        yield output
    except (SessionStorageError, ValueError, TypeError, ImportError) as error:
        output.fail(error, exit_code_for(error))


def plain_name(table: Table) -> str:
    """``schema.name`` or ``name``, unquoted: how JSON documents name a table."""
    return f"{table.schema}.{table.name}" if table.schema else table.name


def usage_failure(error: Any) -> NoReturn:
    """A usage error Click found before a subcommand ran, as the JSON document of
    ``--json`` (exit 2)."""
    context = error.ctx
    command = context.info_name if context is not None and context.parent is not None else None
    Output(command or "shopify-sessions", as_json=True).report(error, ExitCode.USAGE)
    raise SystemExit(int(ExitCode.USAGE))
