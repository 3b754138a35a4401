"""The README's summary table (and the ratio chart) from a benchmark report already written.

    .venv/bin/python -m benchmarks.readme [benchmarks/results/latest.md] [--chart]

``benchmarks.run`` does this at the end of a run that writes the default report; this
redoes it from the report's tables (after a run whose chart could not be drawn, say). The
ratios come from the report's ratio table (taken round by round); the chart's Node marks,
which the report keeps as ops/s only, are the ratio of the medians.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .compare import number, tables
from .report import LABELS, Spread, Summary, ratio_chart, readme_table, update_readme

ROOT = Path(__file__).resolve().parent.parent


def _spread(cell: str | None) -> Spread | None:
    if not cell or cell == "—":
        return None
    median, _, rest = cell.partition(" (")
    low, _, high = rest.rstrip(")").partition("-")
    values = [number(part) for part in (median, low, high)]
    if any(value is None for value in values):
        return None
    return Spread(*values)  # type: ignore[arg-type]


def summaries(text: str) -> list[Summary]:
    """The report's ops and ratios per target and phase (latencies left out)."""
    by_label = {label: side for side, label in LABELS.items()}
    found: dict[tuple[str, str], Summary] = {}
    for _header, rows in tables(text):
        for (target, phase), row in rows.items():
            summary = found.setdefault(
                (target, phase), Summary(target, phase, ops={}, p50_us={}, p99_us={})
            )
            for column, cell in row.items():
                value = _spread(cell)
                if value is None:
                    continue
                if column.endswith(" ops/s"):
                    summary.ops[by_label.get(column[: -len(" ops/s")], column)] = value
                elif " ÷ " in column:
                    side, other = column.split(" ÷ ")
                    summary.ratios[by_label.get(side, side), by_label.get(other, other)] = value
    for summary in found.values():  # the Node peers against raw, for the chart's marks
        raw = summary.ops.get("raw")
        for peer in ("drizzle", "prisma"):
            ops = summary.ops.get(peer)
            if raw and ops and (peer, "raw") not in summary.ratios:
                ratio = ops.median / raw.median
                summary.ratios[peer, "raw"] = Spread(ratio, ratio, ratio)
    return [s for s in found.values() if s.ratios]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "report", type=Path, nargs="?", default=ROOT / "benchmarks/results/latest.md"
    )
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--chart", type=Path, nargs="?", const=ROOT / "docs/benchmark-ratios.png")
    args = parser.parse_args(argv)
    found = summaries(args.report.read_text(encoding="utf-8"))
    if update_readme(args.readme, readme_table(found)):
        print(f"wrote the summary table of {args.readme}")
    if args.chart is not None:
        ratio_chart(found, args.chart)
        print(f"wrote {args.chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
