"""The fault loops of ``tests/faults`` at length: kills of the car and the phone, cuts, drops.

Each loop is ``tests.faults.loops.run_lanes`` (real ``carhub run``, ``phone-bridge sync``
and ``carhub-radio`` processes, a ``CutProxy``, faults at seeded random byte offsets, the
same checks as the CI tests), but it counts failures instead of stopping at the first.
It prints one line per loop, ``NAME: N runs, F failures`` (0 expected), each failure's
message (seed, lane, round and offset, enough to repeat it with ``FAULTS_SEED``), then a
table: the median resume (the recovery sync's own ``seconds``, as the phone reports it)
beside a full sync of the same book in the same run.

    .venv/bin/python bench/bench_faults.py            # 200 car kills, 1,000 cuts, ...
    .venv/bin/python bench/bench_faults.py --quick    # a few rounds of each, < 2 minutes
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import Figure, median, print_table
from tests.faults.loops import LoopResult, run_lanes, versions
from tests.faults.mirror import seeded
from tests.faults.rig import ble_rig, env_seed, lan_rig

# loop -> (rounds, quick rounds, contacts in the book, rig)
LOOPS = {
    "car_kill": (200, 4, 20_000, lan_rig),
    "phone_kill": (200, 4, 5_000, lan_rig),
    "cut": (1_000, 10, 2_000, lan_rig),
    "ble_drop": (200, 4, 2_000, ble_rig),
    "radio_kill": (50, 2, 2_000, ble_rig),
}


def run(name: str, quick: bool, root: Path) -> tuple[LoopResult, float]:
    """Run one loop in its own temp dir; returns its result and wall time."""
    full_n, quick_n, contacts, rig = LOOPS[name]
    _, seed = seeded(name, env_seed())
    d = root / name
    d.mkdir()
    books = versions(d, contacts)
    start = time.perf_counter()
    result = run_lanes(d, books, name, quick_n if quick else full_n, seed, make_rig=rig, stop=False)
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run every loop (or those named); print the lines and the table.

    Returns:
        0 when no loop had a failure, else 1.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few rounds of each loop")
    ap.add_argument("loops", nargs="*", help=f"some of {', '.join(LOOPS)} (default: all)")
    args = ap.parse_args(argv)
    unknown = set(args.loops) - set(LOOPS)
    if unknown:
        ap.error(f"unknown loops: {', '.join(sorted(unknown))}")
    figures: list[Figure] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
        for name in args.loops or list(LOOPS):
            result, wall = run(name, args.quick, Path(tmp))
            print(result.line(), f"({wall:.0f} s)", flush=True)
            for msg in result.failures:
                print(f"  {msg.splitlines()[0][:300]}")
            failed += len(result.failures)
            contacts = LOOPS[name][2]
            figures.append(
                Figure(f"{name}_resume_{contacts}_median", median(result.resume_s),
                       result.full_s, "s", "< full sync", median(result.resume_s) < result.full_s)
            )  # fmt: skip
    print()
    print_table(
        figures,
        {"full sync": "the same book, every contact changed, no fault, in the same run"},
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
