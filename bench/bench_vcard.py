"""Benchmark: vCard import speed and quirk coverage, beside vobject measured in the same run.

    .venv/bin/python bench/bench_vcard.py [N]

Prints ``figure  value  baseline  ratio`` lines. The baseline is vobject 0.9.9 (a
bench-only dependency, not needed at run time), fed the same bytes decoded as UTF-8, with
every card's FN/TEL/EMAIL touched so its lazy parsing is paid for.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vobject  # noqa: E402

from phone_bridge.sample_data import generate_vcards  # noqa: E402
from protocol.vcard import import_vcards  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "vcard"
RUNS = 5


def median_seconds(fn: Callable[[], int], runs: int = RUNS) -> tuple[float, int]:
    """Return the median wall time of ``runs`` calls and the last call's card count."""
    times, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def ours(data: bytes) -> int:
    """Import with protocol.vcard; return the number of contacts."""
    return len(import_vcards(data).contacts)


def baseline(data: bytes) -> int:
    """Import with vobject, touching the fields a car shows; return the card count."""
    count = 0
    for card in vobject.readComponents(data.decode("utf-8"), allowQP=True):
        _ = card.fn.value, [t.value for t in card.contents.get("tel", [])]
        _ = [e.value for e in card.contents.get("email", [])]
        count += 1
    return count


def vobject_reads(path: Path) -> bool:
    """Tell whether vobject reads a corpus file and finds the same FN as we do."""
    want = import_vcards(path.read_bytes()).contacts
    try:
        text = path.read_bytes().decode("utf-8")
        got = [c.fn.value.strip() for c in vobject.readComponents(text, allowQP=True)]
    except Exception:  # vobject fails in many ways; any failure counts as "no"
        return False
    return got == [c.fn for c in want]


def row(figure: str, value: float, base: float, unit: str) -> None:
    """Print one aligned result line; ratio is value over baseline."""
    ratio = value / base if base else float("inf")
    print(f"{figure:<34} {value:>10.3f}{unit:<8} {base:>10.3f}{unit:<8} {ratio:>7.2f}x")


def main() -> int:
    """Run the benchmark and print the table."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    data = generate_vcards(n, photos=n // 100)
    print(f"# {n} cards, {len(data) / 1e6:.1f} MB, {n // 100} with photos; median of {RUNS}")
    print(f"{'figure':<34} {'value':>18} {'baseline':>18} {'ratio':>8}")
    t_ours, c_ours = median_seconds(lambda: ours(data))
    t_base, c_base = median_seconds(lambda: baseline(data))
    assert c_ours == c_base == n, (c_ours, c_base)
    row(f"import {n} cards (s)", t_ours, t_base, " s")
    row("cards per second", n / t_ours, n / t_base, " /s")
    files = sorted(CORPUS.glob("*.vcf"))
    clean = sum(not import_vcards(p.read_bytes()).errors for p in files)
    base_ok = sum(vobject_reads(p) for p in files)
    row(f"corpus files imported (of {len(files)})", clean, base_ok, "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
