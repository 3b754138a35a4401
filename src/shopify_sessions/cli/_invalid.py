"""Entries that hold no session, found while a subcommand walks the sessions: counted,
named by their id or key (never by their value, which may hold a token) and skipped, so
that one bad row or key does not stop ``check``, ``purge`` or ``copy``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._errors import SessionDataError
from ._output import Output

#: Entries named in the output (the count is always complete).
LISTED = 20


class InvalidEntries:
    """An ``on_invalid`` handler for the storages' walks that keeps what the report needs."""

    __slots__ = ("count", "listed", "progress")

    def __init__(self) -> None:
        self.count = 0
        self.listed: list[dict[str, str]] = []
        #: The progress bar's advance, which a skipped entry moves too.
        self.progress: Callable[[int], object] | None = None

    def __call__(self, entry: str, error: SessionDataError) -> None:
        self.count += 1
        if self.progress is not None:
            self.progress(1)
        if len(self.listed) < LISTED:
            self.listed.append({"entry": entry, "error": str(error)})

    def __bool__(self) -> bool:
        return self.count > 0

    def report(self, output: Output) -> dict[str, Any]:
        """Warn about each entry named, and the result's fields: ``invalid`` (how many)
        and ``invalid_entries`` (the first :data:`LISTED`, with why)."""
        for item in self.listed:
            output.warn(f"skipped, not a session: {item['error']}")
        if self.count > len(self.listed):
            more = self.count - len(self.listed)
            output.warn(f"... and {more} more entries that hold no session")
        return {"invalid": self.count, "invalid_entries": self.listed}
