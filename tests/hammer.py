"""Worker processes for the concurrency test: threads or tasks hammering a few hot ids.

Every store writes one marker into every text field of the session, so a row that
mixes two writes (a torn upsert) shows as a session whose fields disagree.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session
from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage

HOT_IDS = [f"hot_{n}" for n in range(5)]
SHOP = "hammer.myshopify.com"


def session_for(id: str, marker: str) -> Session:
    user = AssociatedUser(id=42, first_name=marker, email=f"{marker}@example.com")
    return Session(
        id,
        SHOP,
        marker,
        True,
        scope=marker,
        access_token=f"token-{marker}",
        refresh_token=f"refresh-{marker}",
        online_access_info=OnlineAccessInfo(associated_user=user),
    )


def consistent(session: Session) -> bool:
    """Whether every field of ``session`` carries the same marker."""
    marker = session.state
    user = session.online_access_info.associated_user if session.online_access_info else None
    return (
        session.scope == marker
        and session.access_token == f"token-{marker}"
        and session.refresh_token == f"refresh-{marker}"
        and user is not None
        and user.first_name == marker
        and user.email == f"{marker}@example.com"
    )


class Tally:
    def __init__(self) -> None:
        self.operations = 0
        self.errors: list[str] = []
        self.torn: list[str] = []
        self.written: set[str] = set()

    def result(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "errors": self.errors[:20],
            "error_count": len(self.errors),
            "torn": self.torn[:20],
            "written": sorted(self.written),
        }


def _step(rng: random.Random, marker: str) -> tuple[str, Any]:
    id = rng.choice(HOT_IDS)
    roll = rng.random()
    if roll < 0.55:
        return "store", session_for(id, marker)
    if roll < 0.9:
        return "load", id
    if roll < 0.95:
        return "find", SHOP
    return "delete", id


def _check(tally: Tally, found: Any) -> None:
    sessions = found if isinstance(found, list) else [found] if found is not None else []
    for session in sessions:
        if not consistent(session):
            tally.torn.append(repr(session))


def open_storage(url: str, table: str, options: dict[str, Any], is_async: bool) -> Any:
    """A SQL storage on ``table``, or a Redis one under that key prefix."""
    if url.startswith("redis"):
        from shopify_sessions.redis import AsyncRedisSessionStorage, RedisSessionStorage

        return (AsyncRedisSessionStorage if is_async else RedisSessionStorage)(
            url, key_prefix=table
        )
    kind = AsyncSQLAlchemySessionStorage if is_async else SQLAlchemySessionStorage
    return kind(url, table=table, engine_options=options)


#: Operations each worker runs whatever the clock says.
MIN_STEPS = 25


def run_sync(
    url: str, table: str, process: int, workers: int, seconds: float, options: dict[str, Any]
) -> dict[str, Any]:
    """``workers`` threads of random operations for ``seconds``, each at least
    :data:`MIN_STEPS` of them (a loaded machine slows the run, it never shortens it)."""
    storage = open_storage(url, table, options, is_async=False)
    tally = Tally()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(worker: int) -> None:
        rng = random.Random(process * 1000 + worker)
        n = 0
        while n < MIN_STEPS or time.monotonic() < deadline:
            marker = f"{process}.{worker}.{n}"
            n += 1
            op, argument = _step(rng, marker)
            try:
                if op == "store":
                    storage.store_session(argument)
                    with lock:
                        tally.written.add(marker)
                elif op == "load":
                    _check(tally, storage.load_session(argument))
                elif op == "find":
                    _check(tally, storage.find_sessions_by_shop(argument))
                else:
                    storage.delete_session(argument)
            except Exception as error:  # the test asserts there are none
                tally.errors.append(f"{op}: {type(error).__name__}: {error}")
            with lock:
                tally.operations += 1

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    storage.close()
    return tally.result()


def run_async(
    url: str, table: str, process: int, workers: int, seconds: float, options: dict[str, Any]
) -> dict[str, Any]:
    """:func:`run_sync` with ``workers`` tasks of one event loop."""

    async def main() -> dict[str, Any]:
        storage = open_storage(url, table, options, is_async=True)
        tally = Tally()
        deadline = time.monotonic() + seconds

        async def work(worker: int) -> None:
            rng = random.Random(process * 1000 + worker)
            n = 0
            while n < MIN_STEPS or time.monotonic() < deadline:
                marker = f"{process}.{worker}.{n}"
                n += 1
                op, argument = _step(rng, marker)
                try:
                    if op == "store":
                        await storage.store_session(argument)
                        tally.written.add(marker)
                    elif op == "load":
                        _check(tally, await storage.load_session(argument))
                    elif op == "find":
                        _check(tally, await storage.find_sessions_by_shop(argument))
                    else:
                        await storage.delete_session(argument)
                except Exception as error:  # the test asserts there are none
                    tally.errors.append(f"{op}: {type(error).__name__}: {error}")
                tally.operations += 1

        await asyncio.gather(*(work(w) for w in range(workers)))
        await storage.close()
        return tally.result()

    return asyncio.run(main())
