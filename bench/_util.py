"""Shared helpers for the benchmarks: medians, percentiles, and the figure table.

Every benchmark prints one row per figure: ``figure  value  baseline  ratio  target``,
where the baseline was measured in the same run on the same machine, and ``ratio`` is
value / baseline (how many times slower than the baseline we are).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Figure", "median", "percentile", "print_table", "summarise_ms"]


def median(values: Sequence[float]) -> float:
    """Return the median of ``values`` (NaN when empty, so a missing figure shows)."""
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], p: float) -> float:
    """Return the ``p``-th percentile (0-100) by linear interpolation between ranks.

    Args:
        values: the samples, in any order.
        p: the percentile, e.g. 99.

    Returns:
        The percentile, or NaN when ``values`` is empty.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise_ms(seconds: Sequence[float]) -> str:
    """Describe latency samples (in seconds) as ``p50/p99/max`` in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return (
        f"n={len(ms)} p50={percentile(ms, 50):.2f} p99={percentile(ms, 99):.2f} "
        f"max={max(ms, default=math.nan):.2f} ms"
    )


@dataclass
class Figure:
    """One row of the table: a measured value beside its same-run baseline."""

    name: str
    value: float
    baseline: float
    unit: str
    target: str = ""  # e.g. "<= 0.5 s"; empty when the figure has no target
    met: bool | None = None  # None: no target, or not checkable

    @property
    def ratio(self) -> float:
        """Value over baseline (NaN when the baseline is zero or missing)."""
        if not self.baseline or math.isnan(self.baseline):
            return math.nan
        return self.value / self.baseline


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def print_table(figures: Sequence[Figure], baselines: dict[str, str]) -> None:
    """Print the figures as an aligned table, then what each baseline is.

    Args:
        figures: the rows, in order.
        baselines: baseline label -> one-line description, printed under the table.
    """
    rows = [("figure", "value", "baseline", "ratio", "target", "met")]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "NO")
        rows.append(
            (
                f.name,
                f"{_fmt(f.value)} {f.unit}",
                f"{_fmt(f.baseline)} {f.unit}",
                "n/a" if math.isnan(f.ratio) else f"{f.ratio:.1f}x" if f.ratio >= 0.1
                else f"{f.ratio:.2g}x",
                f.target,
                met,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    if baselines:
        print()
        for label, text in baselines.items():
            print(f"baseline {label}: {text}")
