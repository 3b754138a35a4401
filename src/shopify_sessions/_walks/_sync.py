# Generated from _async.py by scripts/unasync.py: edit that file, then run the script.
"""The synchronous walk that deletes expired sessions, for the storages that can only read every
session to find them (Redis, DynamoDB)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from .._session import Session
from .._storage import InvalidEntryHandler, expiry_cutoff, purgeable_ids


class WalkedStorage(Protocol):
    """What the walk needs of a storage: its sessions a batch at a time, and a deletion."""

    def sessions(
        self, *, batch_size: int = ..., on_invalid: InvalidEntryHandler | None = ...
    ) -> Iterator[list[Session]]: ...

    def delete_sessions(self, ids: Sequence[str]) -> bool: ...


def delete_expired_by_walk(
    storage: WalkedStorage,
    *,
    grace: timedelta,
    now: datetime | None,
    batch_size: int,
    dry_run: bool,
    progress: Callable[[int], object] | None,
    on_invalid: InvalidEntryHandler | None,
) -> int:
    """``delete_expired_sessions`` by a walk of ``storage``'s sessions: each batch's
    :func:`~shopify_sessions._storage.purgeable_ids` deleted (unless ``dry_run``),
    ``progress`` told how many sessions were examined; how many were (or would be) deleted."""
    now, cutoff = expiry_cutoff(grace, now)
    deleted = 0
    for batch in storage.sessions(batch_size=batch_size, on_invalid=on_invalid):
        doomed = purgeable_ids(batch, cutoff, now)
        if doomed and not dry_run:
            storage.delete_sessions(doomed)
        deleted += len(doomed)
        if progress is not None:
            progress(len(batch))
    return deleted
