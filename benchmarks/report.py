"""Summaries over rounds (medians and spread), the Markdown report and the ratio chart.

The report's tables sit between named snippet markers, so that docs/performance.md
includes them from ``benchmarks/results/latest.md`` as they were measured.
"""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .phases import REPORT_ORDER, PhaseResult

DRIVER_PACKAGES = ("psycopg", "asyncpg", "PyMySQL", "aiomysql", "aiosqlite")
#: What each side or peer is called in the report.
LABELS = {
    "raw": "raw",
    "floor": "floor",
    "library": "URL",
    "engine": "app engine",
    "core": "Core",
    "drizzle": "Drizzle",
    "prisma": "Prisma",
}
#: Python sides compared with raw (their ratio) and with each Node peer.
COMPARED = ("library", "engine")
#: The Python sides; anything else in a run is a Node peer.
SIDE_NAMES = ("raw", "floor", "core", "library", "engine")
RATIO_LINE = 0.8


def label(side: str) -> str:
    return LABELS.get(side, side.capitalize())


@dataclass(frozen=True)
class Spread:
    """A median over rounds, and the lowest and highest round."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        values = list(values)
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Summary:
    """One target x phase over rounds, for every side and Node peer that ran it."""

    target: str
    phase: str
    #: ops/s per side or peer.
    ops: dict[str, Spread]
    #: p50 and p99 latency per side or peer, µs (median over rounds).
    p50_us: dict[str, float]
    p99_us: dict[str, float]
    #: (side, other) -> side ops/s / other ops/s, per round (the two ran seconds apart).
    ratios: dict[tuple[str, str], Spread] = field(default_factory=dict)

    @property
    def own_us(self) -> float | None:
        """What the library adds to SQLAlchemy's floor: library p50 - floor p50, µs."""
        library, floor = self.p50_us.get("library"), self.p50_us.get("floor")
        return None if library is None or floor is None else library - floor

    def ratio(self, side: str, other: str = "raw") -> Spread | None:
        return self.ratios.get((side, other))


def percentile(values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise(target: str, phase: str, runs: dict[str, list[PhaseResult]]) -> Summary:
    """Medians and spreads over rounds; ratios are taken round by round, then summarised."""
    ran = {who: results for who, results in runs.items() if results}
    wanted = [(who, "raw") for who in ran if who != "raw"]
    wanted += [(side, "core") for side in COMPARED]
    wanted += [(side, peer) for side in COMPARED for peer in ran if peer not in SIDE_NAMES]
    ratios = {
        (a, b): Spread.of(x.ops_per_s / y.ops_per_s for x, y in zip(ran[a], ran[b], strict=True))
        for a, b in wanted
        if a in ran and b in ran
    }
    return Summary(
        target=target,
        phase=phase,
        ops={who: Spread.of(r.ops_per_s for r in results) for who, results in ran.items()},
        p50_us={
            who: statistics.median(percentile(r.latencies_ns, 0.50) for r in results) / 1000
            for who, results in ran.items()
        },
        p99_us={
            who: statistics.median(percentile(r.latencies_ns, 0.99) for r in results) / 1000
            for who, results in ran.items()
        },
        ratios=ratios,
    )


# ----------------------------------------------------------------------- header


class LoadAverages:
    """The 1-minute load average at the start, after each round, and at the end."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = [os.getloadavg()]

    def sample(self) -> None:
        self.samples.append(os.getloadavg())

    def last(self) -> str:
        return _loads(self.samples[-1])

    def describe(self) -> str:
        ones = [one for one, _, _ in self.samples]
        return (
            f"before {_loads(self.samples[0])}, after {_loads(self.samples[-1])} (1, 5, 15 "
            f"min); 1-minute load after each round: median {statistics.median(ones):.2f}, "
            f"range {min(ones):.2f}-{max(ones):.2f}"
        )


def _loads(sample: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in sample)


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


def header(
    settings: dict[str, object],
    servers: dict[str, str],
    elapsed_s: float,
    loads: LoadAverages,
    sqlite_journals: str | None,
) -> list[str]:
    """The report's first lines: when, on what, with which versions, settings and load."""
    drivers = ", ".join(f"{name} {_package_version(name)}" for name in DRIVER_PACKAGES)
    server_text = ", ".join(f"{name} {v}" for name, v in servers.items()) or "none"
    lines = [
        "# shopify-sessions: library vs raw driver, SQLAlchemy's floor and Shopify's Node adapters",
        "",
        "<!-- --8<-- [start:setup] -->",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Python {platform.python_version()}, SQLAlchemy {_package_version('SQLAlchemy')}, "
        f"shopify-sessions {_package_version('shopify-sessions')}",
        f"- Drivers: {drivers}, sqlite3 (SQLite library {sqlite3.sqlite_version})",
        f"- Servers: {server_text}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores",
        f"- Load average: {loads.describe()}",
        "- Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
    ]
    if sqlite_journals is not None:
        lines.append(f"- SQLite journal modes: {sqlite_journals}")
    return [
        *lines,
        f"- Wall time: {elapsed_s:.0f} s",
        "<!-- --8<-- [end:setup] -->",
        "",
        "Every side and Node peer of a target runs in the same rounds, phase by phase, in an "
        "order that rotates from phase to phase and round to round, so a busy machine slows "
        "them alike. Values are the median over rounds, with the lowest and highest round in "
        "brackets. **raw**: hand-written driver code; **floor**: SQLAlchemy executing the "
        "library's statements on a held connection, parameters encoded beforehand; **Core**: "
        "SQLAlchemy Core's `execute` of the same statements on an app's own engine "
        "(SQLAlchemy's defaults), a pooled connection per operation and writes in "
        "`engine.begin()`, parameters encoded beforehand; **URL**: "
        "the storage built from a URL (its own autocommit engine); **app engine**: the "
        "storage given `create_engine(url)` / `create_async_engine(url)` with SQLAlchemy's "
        "defaults; **Drizzle** / **Prisma**: Shopify's Node adapters on the same server "
        "(absent through PgBouncer: they connect directly). A ratio is taken in each round "
        "(the two ran seconds apart), then summarised. `delete` ops are `delete_sessions` "
        "calls of 100 ids; `find` ops are shops; `concurrent_load` is 16 threads (sync) or "
        "tasks (asyncio) sharing one storage.",
        "",
    ]


# ------------------------------------------------------------------------ tables


def _spread(value: Spread | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    if digits:
        return f"{value.median:.{digits}f} ({value.low:.{digits}f}-{value.high:.{digits}f})"
    return f"{value.median:,.0f} ({value.low:,.0f}-{value.high:,.0f})"


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _columns(summaries: Sequence[Summary]) -> list[str]:
    """Every side and peer that ran, in the report's order: raw, floor, URL, engine, peers."""
    seen = list(dict.fromkeys(who for s in summaries for who in s.ops))
    first = [who for who in SIDE_NAMES if who in seen]
    return first + [who for who in seen if who not in first]


def _peers(summaries: Sequence[Summary]) -> list[str]:
    return [who for who in _columns(summaries) if who not in SIDE_NAMES]


def _section(name: str, title: str, lines: list[str]) -> list[str]:
    return [
        f"## {title}",
        "",
        f"<!-- --8<-- [start:{name}] -->",
        *lines,
        f"<!-- --8<-- [end:{name}] -->",
        "",
    ]


def ops_table(summaries: Sequence[Summary]) -> list[str]:
    columns = _columns(summaries)
    lines = [
        "| target | phase | " + " | ".join(f"{label(c)} ops/s" for c in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for s in summaries:
        cells = " | ".join(_spread(s.ops.get(c)) for c in columns)
        lines.append(f"| {s.target} | {s.phase} | {cells} |")
    return lines


def ratio_table(summaries: Sequence[Summary]) -> list[str]:
    others = [
        "raw",
        *(["core"] if any("core" in s.ops for s in summaries) else []),
        *_peers(summaries),
    ]
    pairs = [(side, other) for side in COMPARED for other in others]
    lines = [
        "| target | phase | "
        + " | ".join(f"{label(side)} ÷ {label(other)}" for side, other in pairs)
        + " |",
        "|---|---|" + "---:|" * len(pairs),
    ]
    for s in summaries:
        cells = " | ".join(_spread(s.ratio(side, other), 2) for side, other in pairs)
        lines.append(f"| {s.target} | {s.phase} | {cells} |")
    return lines


def latency_table(summaries: Sequence[Summary]) -> list[str]:
    columns = _columns(summaries)
    lines = [
        "| target | phase | "
        + " | ".join(f"{label(c)} p50 µs" for c in columns)
        + " | own µs | URL p99 µs |",
        "|---|---|" + "---:|" * (len(columns) + 2),
    ]
    for s in summaries:
        cells = " | ".join(_us(s.p50_us.get(c)) for c in columns)
        lines.append(
            f"| {s.target} | {s.phase} | {cells} | {_us(s.own_us)} "
            f"| {_us(s.p99_us.get('library'))} |"
        )
    return lines


def report_tables(summaries: Sequence[Summary]) -> list[str]:
    """The report's three tables, each between snippet markers of its own."""
    return [
        *_section("ops", "Operations per second", ops_table(summaries)),
        *_section("ratios", "Ratios, round by round", ratio_table(summaries)),
        *_section(
            "latency",
            "Latency per call (p50, µs; own µs = URL p50 - floor p50)",
            latency_table(summaries),
        ),
    ]


#: Where the README's summary table goes (``update_readme``).
README_START = "<!-- --8<-- [start:benchmark-summary] -->"
README_END = "<!-- --8<-- [end:benchmark-summary] -->"


def readme_table(summaries: Sequence[Summary]) -> list[str]:
    """Per target, each path's worst phase against raw, Core and the slower Node adapter
    (the median of its rounds' ratios, and the phase): the README's summary."""
    peers = _peers(summaries)

    def worst(target: str, side: str, others: Sequence[str]) -> str:
        found = [
            (ratio.median, s.phase)
            for s in summaries
            if s.target == target
            for other in others
            if (ratio := s.ratio(side, other)) is not None
        ]
        if not found:
            return "—"
        value, phase = min(found)
        return f"{value:.2f} ({phase})"

    columns = [("library", ("raw",)), ("engine", ("raw",)), ("engine", ("core",))]
    if peers:
        columns += [("library", tuple(peers)), ("engine", tuple(peers))]
    node = " / ".join(label(peer) for peer in peers)
    lines = [
        "| target | "
        + " | ".join(
            f"{label(side)} ÷ {label(others[0]) if len(others) == 1 else node}"
            for side, others in columns
        )
        + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for target in dict.fromkeys(s.target for s in summaries):
        cells = " | ".join(worst(target, side, others) for side, others in columns)
        lines.append(f"| {target} | {cells} |")
    return lines


def update_readme(path: Path, lines: Sequence[str]) -> bool:
    """Put ``lines`` between the README's summary markers; ``False`` if it has none."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    block = "\n".join([README_START, *lines, README_END])
    path.write_text(text[:start] + block + text[end + len(README_END) :], encoding="utf-8")
    return True


def plans_section(plans: dict[str, dict[str, list[str]]]) -> list[str]:
    lines: list[str] = []
    for dialect, by_query in plans.items():
        lines += ["", f"## EXPLAIN on {dialect}", ""]
        for query, plan in by_query.items():
            lines += [f"{query}:", "", "```", *plan, "```", ""]
    return lines


# ------------------------------------------------------------------------ chart


def ratio_chart(summaries: Sequence[Summary], path: Path) -> None:
    """Ratios to raw per target x phase (bars, with each round's range), one panel per
    engine path; the Node peers' ops/s ÷ raw as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(s.target for s in summaries))
    phases = [p for p in REPORT_ORDER if any(s.phase == p for s in summaries)]
    peers = _peers(summaries)
    by_key = {(s.target, s.phase): s for s in summaries}
    width = 0.8 / len(phases)
    figure, panels = plt.subplots(2, 1, figsize=(max(10.0, 1.9 * len(targets)), 10), sharey=True)
    marks = [s.ratio(p, "raw") for s in summaries for p in peers]
    highs = [r.high for s in summaries for side in COMPARED if (r := s.ratio(side)) is not None]
    top = max([1.1, *(h * 1.05 for h in highs), *(m.median * 1.05 for m in marks if m)])
    top = min(top, 12.0)
    for axes, (side, title) in zip(
        panels,
        (
            ("library", "storage built from a URL"),
            ("engine", "storage on the app's own Engine (SQLAlchemy defaults)"),
        ),
        strict=True,
    ):
        for index, phase in enumerate(phases):
            xs = [t + (index - (len(phases) - 1) / 2) * width for t in range(len(targets))]
            here = [by_key.get((target, phase)) for target in targets]
            ratios = [None if s is None else s.ratio(side) for s in here]
            heights = [0.0 if r is None else r.median for r in ratios]
            errors = [
                [0.0 if r is None else r.median - r.low for r in ratios],
                [0.0 if r is None else r.high - r.median for r in ratios],
            ]
            axes.bar(xs, heights, width, label=phase, color=f"C{index}")
            axes.errorbar(xs, heights, yerr=errors, fmt="none", ecolor="0.3", lw=0.8, capsize=1.5)
            for peer, marker in zip(peers, ("D", "^", "s", "o"), strict=False):
                points = [
                    (x, r.median)
                    for x, s in zip(xs, here, strict=True)
                    if s is not None and (r := s.ratio(peer)) is not None
                ]
                if points:
                    axes.scatter(
                        [x for x, _ in points],
                        [min(y, top) for _, y in points],
                        marker=marker,
                        s=22,
                        facecolors="black" if marker == "D" else "white",
                        edgecolors="black",
                        zorder=3,
                        label=f"Node {label(peer)}" if index == 0 else "_nolegend_",
                    )
        axes.axhline(1.0, color="0.4", linestyle=":", linewidth=1.0)
        axes.axhline(RATIO_LINE, color="tab:red", linestyle="--", linewidth=1.2, label="0.8")
        axes.set_xticks(range(len(targets)), targets, rotation=12)
        axes.set_ylabel("ops/s ÷ raw driver ops/s")
        axes.set_ylim(0, top)
        axes.set_title(f"shopify-sessions, {title} (1.0 = hand-written driver code)")
        axes.grid(axis="y", alpha=0.3)
    panels[0].legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
