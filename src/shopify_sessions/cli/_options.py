"""The options every subcommand shares: the database, the table, the output."""

from __future__ import annotations

import os
import shlex
from typing import Annotated

import typer

Url = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="DATABASE_URL",
        show_envvar=True,
        help=(
            "Database URL: postgres[ql]://, mysql://, mariadb://, sqlite:///path "
            "(a synchronous driver is chosen; an asyncio driver in the URL is replaced), "
            "redis://, rediss://, unix:// (add ?cluster=true for a Redis Cluster), or "
            "dynamodb://<table>?region=<region>[&endpoint_url=<url>] (the table is in the "
            "URL; credentials from boto3's chain)."
        ),
        show_default=False,
    ),
]
TableName = Annotated[
    str,
    typer.Option("--table", envvar="SHOPIFY_SESSIONS_TABLE", help="Name of the sessions table."),
]
Schema = Annotated[
    str | None,
    typer.Option(
        "--schema",
        envvar="SHOPIFY_SESSIONS_SCHEMA",
        help="Schema (MySQL: database) of the table.",
        show_default=False,
    ),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts.")
]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, help="Rows read (and written) per query.")
]

DEFAULT_TABLE = "session"

KeyPrefix = Annotated[
    str,
    typer.Option(
        "--key-prefix",
        help="Redis: the prefix of the session keys (the Node adapter's sessionKeyPrefix).",
    ),
]
DEFAULT_KEY_PREFIX = "shopify_sessions"


def program_name() -> str:
    """What the command is called where it runs: ``shopify-sessions``, or the name of the
    program that runs it for the user (``manage.py shopify_sessions``), which sets
    ``SHOPIFY_SESSIONS_PROG_NAME``."""
    return os.environ.get("SHOPIFY_SESSIONS_PROG_NAME") or "shopify-sessions"


def command_line(subcommand: str, table: str, schema: str | None) -> str:
    """``shopify-sessions <subcommand>`` with the ``--table`` and ``--schema`` the user
    gave, ready to paste: a hint followed to the letter works on the same table."""
    words = [*shlex.split(program_name()), subcommand]
    if table != DEFAULT_TABLE:
        words += ["--table", table]
    if schema is not None:
        words += ["--schema", schema]
    return shlex.join(words)
