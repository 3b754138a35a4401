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
    """One target x phase, medians over rounds; ``None`` where a side did not run."""

    target: str
    phase: str
    #: ops/s per side: library (URL-built engine), engine (the app's), floor, raw,
    #: drizzle and prisma (the Node peers, on the same server).
    ops: dict[str, float | None]
    #: library / raw and engine / raw: the median of per-round ratios.
    ratio: float
    engine_ratio: float
    #: p50 and p99 latency per side, µs.
    p50_us: dict[str, float | None]
    p99_us: dict[str, float | None]

    @property
    def own_us(self) -> float | None:
        """What the library adds to SQLAlchemy's floor: library p50 - floor p50, µs."""
        library, floor = self.p50_us.get("library"), self.p50_us.get("floor")
        return None if library is None or floor is None else library - floor

    def vs(self, side: str, peer: str) -> float | None:
        """ops/s of ``side`` / ops/s of ``peer``, or None if either did not run."""
        a, b = self.ops.get(side), self.ops.get(peer)
        return None if a is None or b is None else a / b


def percentile(values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise(
    target: str,
    phase: str,
    sides: dict[str, list[PhaseResult]],
    node: dict[str, list[PhaseResult]],
) -> Summary:
    """Medians over rounds. Ratios are medians of each round's side/raw ops/s."""
    every = {**sides, **node}

    def ops(side: str) -> float | None:
        results = every.get(side)
        return statistics.median(r.ops_per_s for r in results) if results else None

    def latency(side: str, fraction: float) -> float | None:
        results = every.get(side)
        if not results:
            return None
        return statistics.median(percentile(r.latencies_ns, fraction) for r in results) / 1000

    def ratio(side: str) -> float:
        pairs = zip(sides[side], sides["raw"], strict=True)
        return statistics.median(a.ops_per_s / b.ops_per_s for a, b in pairs)

    return Summary(
        target=target,
        phase=phase,
        ops={side: ops(side) for side in every},
        ratio=ratio("library"),
        engine_ratio=ratio("engine"),
        p50_us={side: latency(side, 0.50) for side in every},
        p99_us={side: latency(side, 0.99) for side in every},
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
        "# shopify-sessions: library vs raw driver, SQLAlchemy's floor and Shopify's Node adapters",
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
        "ops/s = operations / phase wall time; p50 = per-call latency in µs; every value "
        "is the median over rounds. **URL**: the storage built from a URL (its own "
        "autocommit engine); **app engine**: the storage given `create_engine(url)` / "
        "`create_async_engine(url)` with SQLAlchemy's defaults; **ratio** = that side's "
        "ops/s / raw ops/s (median of per-round ratios; 1.0 = as fast as hand-written "
        "driver code); **floor**: SQLAlchemy executing the library's statement on a held "
        "connection with pre-encoded parameters; **own µs** = URL p50 - floor p50, what "
        "the library adds per call (checkout, checks, encoding, building Sessions); "
        "**Drizzle** / **Prisma**: Shopify's Node adapters, same phases, same server "
        "(the drivers of the dialect, so the same figures on its sync and async rows). "
        "`delete` ops are `delete_sessions` calls of 100 ids; `find` ops are shops.",
        "",
    ]


# ------------------------------------------------------------------------ table


def _ops(value: float | None) -> str:
    return "absent" if value is None else f"{value:,.0f}"


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def markdown_table(summaries: Sequence[Summary]) -> list[str]:
    lines = [
        "| target | phase | raw ops/s | URL ops/s | URL ratio | app engine ops/s "
        "| app engine ratio | Drizzle ops/s | Prisma ops/s | p50 raw µs | p50 floor µs "
        "| p50 URL µs | p50 app engine µs | own µs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.target} | {s.phase} | {_ops(s.ops.get('raw'))} "
            f"| {_ops(s.ops.get('library'))} | {s.ratio:.2f} "
            f"| {_ops(s.ops.get('engine'))} | {s.engine_ratio:.2f} "
            f"| {_ops(s.ops.get('drizzle'))} | {_ops(s.ops.get('prisma'))} "
            f"| {_us(s.p50_us.get('raw'))} | {_us(s.p50_us.get('floor'))} "
            f"| {_us(s.p50_us.get('library'))} | {_us(s.p50_us.get('engine'))} "
            f"| {_us(s.own_us)} |"
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
    """Ratios to raw per target x phase: one panel per engine path, Node peers as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(s.target for s in summaries))
    phases = [p for p in REPORT_ORDER if any(s.phase == p for s in summaries)]
    by_key = {(s.target, s.phase): s for s in summaries}
    width = 0.8 / len(phases)
    figure, panels = plt.subplots(2, 1, figsize=(max(10.0, 2.1 * len(targets)), 9.5), sharey=True)
    peers = [s.vs(peer, "raw") for s in summaries for peer in ("drizzle", "prisma")]
    top = max([1.1, *(max(s.ratio, s.engine_ratio) * 1.1 for s in summaries)])
    top = max([top, *(ratio * 1.05 for ratio in peers if ratio is not None)])
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
            summaries_here = [by_key.get((target, phase)) for target in targets]
            heights = [
                0.0 if s is None else (s.ratio if side == "library" else s.engine_ratio)
                for s in summaries_here
            ]
            axes.bar(xs, heights, width, label=phase, color=f"C{index}")
            for peer, marker in (("drizzle", "D"), ("prisma", "^")):
                points = [
                    (x, s.vs(peer, "raw"))
                    for x, s in zip(xs, summaries_here, strict=True)
                    if s is not None and s.vs(peer, "raw") is not None
                ]
                if points:
                    axes.scatter(
                        [x for x, _ in points],
                        [y for _, y in points],
                        marker=marker,
                        s=22,
                        facecolors="white" if peer == "prisma" else "black",
                        edgecolors="black",
                        zorder=3,
                        label=f"Node {peer.capitalize()}" if index == 0 else "_nolegend_",
                    )
        axes.axhline(RATIO_LINE, color="tab:red", linestyle="--", linewidth=1.2, label="0.8")
        axes.set_xticks(range(len(targets)), targets, rotation=10)
        axes.set_ylabel("ops/s ÷ raw driver ops/s")
        axes.set_ylim(0, top)
        axes.set_title(f"shopify-sessions, {title} (1.0 = hand-written driver code)")
        axes.grid(axis="y", alpha=0.3)
    panels[0].legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
