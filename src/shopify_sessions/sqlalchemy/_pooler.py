"""Transaction poolers between the storage and PostgreSQL: how a URL says so, and the engine
options that work through one.

A transaction pooler (PgBouncer or Supavisor in transaction mode, Neon's pooled endpoint)
gives each transaction whichever server connection is free, so nothing may outlive a
transaction on the server: no server-side prepared statement (psycopg prepares a statement
at its fifth run on a connection; asyncpg names every statement it runs, and SQLAlchemy
caches them), no ``SET``, no session lock. Through such a pooler a statement may run under
another client's prepared-statement name: a failure at best, another client's statement
(a ``DELETE`` for a ``SELECT``) at worst.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import URL

from .._errors import DatabaseURLError
from ._url import parse_url

PoolerMode = Literal["transaction", "none"]
"""What ``pooler=`` and ``?pooler=`` accept: ``"transaction"``, a transaction pooler stands
between the storage and PostgreSQL; ``"none"``, nothing does (or a session-mode pooler, which
needs nothing). Left out, it is inferred from the host, and found at first use."""
POOLER_MODES: tuple[PoolerMode, ...] = ("transaction", "none")
POOLER_PARAMETER = "pooler"


def take_pooler(url: URL, pooler: object) -> tuple[URL, bool]:
    """``url`` without its ``?pooler=``, and whether it reaches PostgreSQL through a
    transaction pooler: as ``pooler`` or the URL says, else as its host implies."""
    if pooler is not None and pooler not in POOLER_MODES:
        raise ValueError(f"pooler must be one of {POOLER_MODES} or None, not {pooler!r}")
    given = url.query.get(POOLER_PARAMETER)
    if given is not None:
        if not isinstance(given, str) or given not in POOLER_MODES:
            raise DatabaseURLError(
                f"?{POOLER_PARAMETER}= takes one of {', '.join(POOLER_MODES)}, not {given!r}"
            )
        if pooler is not None and pooler != given:
            raise DatabaseURLError(
                f"the URL says ?{POOLER_PARAMETER}={given} and the storage pooler={pooler!r}"
            )
        url = url.difference_update_query([POOLER_PARAMETER])
    mode = pooler or given
    pooled = is_known_transaction_pooler(url) if mode is None else mode == "transaction"
    if pooled and url.get_backend_name() != "postgresql":
        raise DatabaseURLError(
            f"{POOLER_PARAMETER}=transaction is for PostgreSQL; {url.get_backend_name()} "
            "needs nothing of the kind"
        )
    return url, pooled


def is_known_transaction_pooler(url: URL) -> bool:
    """Whether ``url``'s host is a hosted transaction pooler: Supabase's pooler (Supavisor)
    on port 6543, or a Neon pooled endpoint (``-pooler.`` in the host name)."""
    host = (url.host or "").lower()
    if host.endswith(".pooler.supabase.com") and url.port == 6543:
        return True
    return "-pooler." in host


def pooler_engine_options(url: str | URL) -> dict[str, Any]:
    """Engine options that make an engine work through a transaction pooler.

    For ``create_engine`` / ``create_async_engine`` with the same URL (without any
    ``?pooler=``, which only the storages read)::

        engine = create_async_engine(url, **pooler_engine_options(url))

    psycopg never prepares statements on the server (``prepare_threshold=None``); asyncpg
    runs without statement caches, under a unique name per statement, and, since it
    prepares and executes a statement in two exchanges that only a transaction keeps on
    one server connection, never in autocommit. Other drivers need nothing.

    Raises:
        DatabaseURLError: ``url`` is not a database URL.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        return {}
    driver = parsed.get_driver_name()
    if driver == "psycopg":
        return {"connect_args": {"prepare_threshold": None}}
    if driver == "asyncpg":
        return {
            "connect_args": {
                "statement_cache_size": 0,
                "prepared_statement_cache_size": 0,
                "prepared_statement_name_func": unique_statement_name,
            }
        }
    return {}


def unique_statement_name() -> str:
    """A prepared statement name no other client of a pooled server connection uses."""
    return f"__shopify_sessions_{uuid.uuid4().hex}__"


def merge_engine_options(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Engine options layered left to right; ``connect_args`` are merged, not replaced."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "connect_args" and key in merged:
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged
