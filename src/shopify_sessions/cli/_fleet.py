"""What ``refresh-expiring`` and ``migrate-legacy`` share: ``--concurrency``, whether the
progress bar shows, and the run's outcomes as JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from ..tokens import RefreshReport
from ..tokens._fleet import DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from ._output import Output

Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency",
        min=1,
        max=MAX_CONCURRENCY,
        metavar="N",
        help=(
            "Shops renewed at a time (threads). Each still under its session lock: one "
            "renewal per shop however many copies run. A 429 from Shopify slows them all."
        ),
    ),
]

__all__ = ["DEFAULT_CONCURRENCY", "Concurrency", "fleet_results", "shows_progress"]


def shows_progress(output: Output) -> bool:
    """Whether the progress bar shows (a terminal, not ``--json``): only then are the
    shops counted before the run, for the bar's total."""
    return not output.as_json and output.err.is_terminal


def fleet_results(output: Output, report: RefreshReport, concurrency: int) -> dict[str, object]:
    """Say what a fleet run adds to ``finish``'s lines, and give the JSON it adds: each
    shop's outcome, those renewed by another worker, and the 429s met.

    The report's shops are put in name order first: the run finishes them in no
    particular order, and an operator (or a diff of two runs) reads them sorted.
    """
    for shops in (
        report.refreshed,
        report.done_elsewhere,
        report.skipped,
        report.reauthorization_required,
    ):
        shops.sort()
    failed = sorted(report.failed.items())
    report.failed.clear()
    report.failed.update(failed)
    if report.done_elsewhere:
        output.say(f"{len(report.done_elsewhere)} session(s) renewed by another worker meanwhile")
    if report.rate_limited:
        output.say(f"Shopify answered 429 {report.rate_limited} time(s); the run slowed down")
    return {
        "done_elsewhere": report.done_elsewhere,
        "outcomes": report.outcomes,
        "rate_limited": report.rate_limited,
        "concurrency": concurrency,
    }
