"""Summaries over rounds, the Markdown report and the ratio chart."""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .phases import REPORT_ORDER, PhaseResult

DRIVER_PACKAGES = ("psycopg", "asyncpg", "PyMySQL", "aiomysql", "aiosqlite")
#: The target ratio for every target, and the lower bar SQLite is held to.
RATIO_LINE = 0.8
SQLITE_RATIO_LINE = 0.5


@dataclass(frozen=True)
class Summary:
    """One target x phase, medians over rounds."""

    target: str
    phase: str
    lib_ops: float
    raw_ops: float
    ratio: float
    lib_p50_us: float
    lib_p99_us: float
    raw_p50_us: float
    raw_p99_us: float


def percentile(values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise(target: str, phase: str, lib: list[PhaseResult], raw: list[PhaseResult]) -> Summary:
    """Medians over rounds. The ratio is the median of each round's library/raw ops/s."""

    def median_us(results: list[PhaseResult], fraction: float) -> float:
        return statistics.median(percentile(r.latencies_ns, fraction) for r in results) / 1000

    return Summary(
        target=target,
        phase=phase,
        lib_ops=statistics.median(r.ops_per_s for r in lib),
        raw_ops=statistics.median(r.ops_per_s for r in raw),
        ratio=statistics.median(a.ops_per_s / b.ops_per_s for a, b in zip(lib, raw, strict=True)),
        lib_p50_us=median_us(lib, 0.50),
        lib_p99_us=median_us(lib, 0.99),
        raw_p50_us=median_us(raw, 0.50),
        raw_p99_us=median_us(raw, 0.99),
    )


# ----------------------------------------------------------------------- header


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def header(settings: dict[str, object], servers: dict[str, str], elapsed_s: float) -> list[str]:
    """The report's first lines: when, on what, with which versions and settings."""
    drivers = ", ".join(f"{name} {_package_version(name)}" for name in DRIVER_PACKAGES)
    server_text = ", ".join(f"{name} {v}" for name, v in servers.items()) or "none"
    return [
        "# shopify-sessions: library vs raw driver",
        "",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Python {platform.python_version()}, SQLAlchemy {_package_version('SQLAlchemy')}, "
        f"shopify-sessions {_package_version('shopify-sessions')}",
        f"- Drivers: {drivers}, sqlite3 (SQLite library {sqlite3.sqlite_version})",
        f"- Servers: {server_text}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores",
        "- Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        f"- Wall time: {elapsed_s:.0f} s",
        "",
        "ops/s = operations / phase wall time; p50/p99 = per-call latency in µs; every value is "
        "the median over rounds; ratio = library ops/s / raw ops/s (median of per-round "
        "ratios; 1.0 = as fast as hand-written driver code). `delete` ops are "
        "`delete_sessions` calls of 100 ids; `find` ops are shops.",
        "",
    ]


# ------------------------------------------------------------------------ table


def markdown_table(summaries: Sequence[Summary]) -> list[str]:
    lines = [
        "| target | phase | library ops/s | raw ops/s | ratio "
        "| p50 lib µs | p99 lib µs | p50 raw µs | p99 raw µs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.target} | {s.phase} | {s.lib_ops:,.0f} | {s.raw_ops:,.0f} | {s.ratio:.2f} "
            f"| {s.lib_p50_us:,.0f} | {s.lib_p99_us:,.0f} "
            f"| {s.raw_p50_us:,.0f} | {s.raw_p99_us:,.0f} |"
        )
    return lines


def plans_section(plans: dict[str, dict[str, list[str]]]) -> list[str]:
    lines: list[str] = []
    for dialect, by_query in plans.items():
        lines += ["", f"## EXPLAIN on {dialect}", ""]
        for query, plan in by_query.items():
            lines += [f"{query}:", "", "```", *plan, "```", ""]
    return lines


# ------------------------------------------------------------------------ chart


def ratio_chart(summaries: Sequence[Summary], path: Path) -> None:
    """Bars of the ratio per target x phase, with lines at 0.8 and, for SQLite, 0.5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(s.target for s in summaries))
    phases = [p for p in REPORT_ORDER if any(s.phase == p for s in summaries)]
    by_key = {(s.target, s.phase): s.ratio for s in summaries}
    width = 0.8 / len(phases)
    figure, axes = plt.subplots(figsize=(max(8.0, 1.9 * len(targets)), 5.0))
    for index, phase in enumerate(phases):
        xs = [t + (index - (len(phases) - 1) / 2) * width for t in range(len(targets))]
        heights = [by_key.get((target, phase), 0.0) for target in targets]
        axes.bar(xs, heights, width, label=phase)
    axes.axhline(RATIO_LINE, color="tab:red", linestyle="--", linewidth=1.2, label="0.8")
    sqlite_positions = [i for i, t in enumerate(targets) if t.startswith("sqlite")]
    for n, position in enumerate(sqlite_positions):
        axes.hlines(
            SQLITE_RATIO_LINE,
            position - 0.45,
            position + 0.45,
            colors="black",
            linestyles=":",
            linewidth=1.5,
            label="0.5 (SQLite)" if n == 0 else "_nolegend_",
        )
    axes.set_xticks(range(len(targets)), targets, rotation=15)
    axes.set_ylabel("library ops/s / raw ops/s")
    axes.set_ylim(0, max([1.1, *(s.ratio * 1.1 for s in summaries)]))
    axes.set_title("shopify-sessions vs hand-written driver code (higher is better, 1.0 = parity)")
    axes.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=130)
    plt.close(figure)
