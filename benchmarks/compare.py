"""Before and after: benchmark reports side by side, per target and phase.

    .venv/bin/python -m benchmarks.compare LABEL=REPORT.md [LABEL=REPORT.md ...]
        [--output benchmarks/results/before-after.md]

For each target and phase: the storage built from a URL in ops/s (first and last report),
its ratio to the raw driver, and its ratio to Shopify's Drizzle adapter (to Prisma for
``concurrent_load``), in every report. Ratios come from a report's ratio table (taken round
by round) where it has one, else from its medians (reports before the Node peers were
interleaved). A report given as ``git:REV:PATH`` is read from git.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"[\d,]+(?:\.\d+)?")


def read(source: str) -> str:
    if source.startswith("git:"):
        _, rev, path = source.split(":", 2)
        return subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    return Path(source).read_text(encoding="utf-8")


def tables(text: str) -> list[tuple[list[str], dict[tuple[str, str], dict[str, str]]]]:
    """Every Markdown table of a report: its header, and its cells by (target, phase)."""
    found: list[tuple[list[str], dict[tuple[str, str], dict[str, str]]]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if header is None:
            header = cells
            found.append((header, {}))
        elif not set(cells[0]) <= {"-", ":"}:
            found[-1][1][cells[0], cells[1]] = dict(zip(header, cells, strict=False))
    return found


def number(cell: str | None) -> float | None:
    match = NUMBER.match(cell or "")
    return None if match is None else float(match.group().replace(",", ""))


def figures(text: str) -> dict[tuple[str, str], dict[str, float | None]]:
    """(target, phase) -> URL ops/s, URL ÷ raw, URL ÷ Drizzle, URL ÷ Prisma."""
    out: dict[tuple[str, str], dict[str, float | None]] = {}
    for header, rows in tables(text):
        for key, row in rows.items():
            got = out.setdefault(key, {})
            if "URL ops/s" in header:
                url = number(row.get("URL ops/s"))
                got["url"] = url
                got.setdefault("raw", number(row.get("URL ratio")))
                for peer in ("Drizzle", "Prisma"):
                    ops = number(row.get(f"{peer} ops/s"))
                    if url and ops:
                        got.setdefault(peer, url / ops)
            if "URL ÷ raw" in header:  # round by round: better than the medians'
                got["raw"] = number(row.get("URL ÷ raw"))
                for peer in ("Drizzle", "Prisma"):
                    got[peer] = number(row.get(f"URL ÷ {peer}"))
            if "raw ops/s" in header and "URL ratio" not in header and "raw" not in got:
                url, raw = number(row.get("URL ops/s")), number(row.get("raw ops/s"))
                got["raw"] = url / raw if url and raw else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("reports", nargs="+", help="LABEL=PATH (or LABEL=git:REV:PATH)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    reports = [
        (label, figures(read(source)))
        for label, source in (report.split("=", 1) for report in args.reports)
    ]
    (first_label, first), (last_label, last) = reports[0], reports[-1]
    labels = [label for label, _ in reports]
    header = [
        "target",
        "phase",
        f"URL ops/s {first_label}",
        f"URL ops/s {last_label}",
        *(f"÷ raw {label}" for label in labels),
        *(f"÷ Node {label}" for label in labels),
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for key, row in last.items():
        peer = "Prisma" if key[1] == "concurrent_load" else "Drizzle"
        cells = [key[0], key[1], _ops(first.get(key, {}).get("url")), _ops(row.get("url"))]
        cells += [_ratio(table.get(key, {}).get("raw")) for _, table in reports]
        cells += [_ratio(table.get(key, {}).get(peer)) for _, table in reports]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return 0


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ops(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


if __name__ == "__main__":
    sys.exit(main())
