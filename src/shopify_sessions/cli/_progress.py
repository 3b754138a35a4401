"""A Rich progress bar on stderr for anything that walks the table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ._output import Output


@contextmanager
def progress_bar(output: Output, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(rows)``; the bar shows on a terminal, never in ``--json`` mode."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.err,
        disable=output.as_json or not output.err.is_terminal,
    )
    task = progress.add_task(description, total=total)
    with progress:
        yield lambda rows: progress.advance(task, rows)
        progress.update(task, completed=max(total, progress.tasks[0].completed))
