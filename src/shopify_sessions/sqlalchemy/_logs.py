"""Tokens kept out of the logs of the engines the storage builds from a URL.

``hide_parameters=True`` keeps bound parameters out of SQLAlchemy's statement logging and
exception text, but not the rows: with the ``sqlalchemy.engine`` logger at DEBUG (or
``echo="debug"``), SQLAlchemy logs each row it reads, tokens included. And aiosqlite logs
every call it hands to its thread at DEBUG, the statement's parameters included. Neither
depends on a level the storage could pin: an app that sets every logger to DEBUG (or the
root, with the ``aiosqlite`` logger unset) would undo that. So:

- the storage's own engines never log rows: SQLAlchemy asks the engine's
  ``_should_log_debug()`` before it logs a result's columns and rows, and those engines
  answer no (statements, at INFO, are still logged, without their parameters);
- a filter on the ``aiosqlite`` logger shows each call with its SQL and without its
  arguments, once a storage runs on aiosqlite (on its own engine or the app's: the
  storage's statements are the storage's either way). It applies to every aiosqlite
  record of the process, whosever connection it is about; it changes only what the
  record shows, and never drops one.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

#: The logger name of the engines the storage builds (``sqlalchemy.engine.Engine.<name>``).
ENGINE_LOGGING_NAME = "shopify_sessions"


def keep_tokens_out_of_logs(engine: Any) -> None:
    """Make an engine the storage built (an Engine, or an AsyncEngine's) log no row."""
    sync_engine = getattr(engine, "sync_engine", engine)
    sync_engine._should_log_debug = _never


def _never() -> bool:
    return False


class AiosqliteArguments(logging.Filter):
    """Shows the calls aiosqlite logs (``functools.partial`` objects holding a statement
    and its parameters) as the call's name and its SQL: no parameter reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(a, functools.partial) for a in record.args
        ):
            record.args = tuple(_shown(argument) for argument in record.args)
        return True


def _shown(argument: object) -> object:
    if not isinstance(argument, functools.partial):
        return argument
    name = getattr(argument.func, "__qualname__", None) or type(argument.func).__name__
    sql = argument.args[0] if argument.args and isinstance(argument.args[0], str) else None
    if sql is None:
        return f"{name}(<arguments hidden>)"
    return f"{name}({sql!r}, <parameters hidden>)"


def hide_aiosqlite_arguments() -> None:
    """Put :class:`AiosqliteArguments` on the ``aiosqlite`` logger, once."""
    logger = logging.getLogger("aiosqlite")
    if not any(isinstance(f, AiosqliteArguments) for f in logger.filters):
        logger.addFilter(AiosqliteArguments())
