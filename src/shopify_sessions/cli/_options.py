"""The options every subcommand shares: the database, the table, the output, and where
the lifecycle subcommands reach Shopify."""

from __future__ import annotations

import os
import shlex
from typing import Annotated
from urllib.parse import urlsplit

import typer

Url = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="DATABASE_URL",
        show_envvar=True,
        help=(
            "Database URL: postgres://, postgresql://, mysql://, mariadb://, sqlite:///path "
            "(a synchronous driver is chosen; an asyncio driver in the URL is replaced), "
            "redis://, rediss://, unix:// (add ?cluster=true for a Redis Cluster), or "
            "dynamodb://<table>?region=<region> (the table is in the URL; add "
            "&endpoint_url=<url> for a local DynamoDB; credentials from boto3's chain)."
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


def shopify_url(value: str | None) -> str | None:
    """``--shopify-url``, checked before anything runs: ``http(s)://host[:port]``, nothing
    after it (a path would be dropped, not joined)."""
    if not value:
        return None
    parsed = urlsplit(value)
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise typer.BadParameter(f"{value!r} has no valid port") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise typer.BadParameter(f"{value!r} is not an http:// or https:// URL")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise typer.BadParameter(f"{value!r} has more than a scheme, host and port")
    return value


ShopifyUrl = Annotated[
    str | None,
    typer.Option(
        "--shopify-url",
        envvar="SHOPIFY_SESSIONS_SHOPIFY_URL",
        show_envvar=True,
        callback=shopify_url,
        help=(
            "Send the calls to Shopify (https://<shop>.myshopify.com/...) to this "
            "http(s)://host:port instead, the shop kept in the Host header: a FakeShopify "
            "(python -m shopify_sessions.testing) or a proxy. Default: Shopify itself."
        ),
        show_default=False,
    ),
]


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
