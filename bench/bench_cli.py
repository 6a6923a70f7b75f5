"""Whole-process benchmarks of ``phone-bridge``: start-up, ``sync`` of 10k contacts, idle ``run``.

Run: ``.venv/bin/python bench/bench_cli.py [--runs N] [--quick]``

Every figure is a whole process as a user runs it (the ``phone-bridge`` console script,
with this checkout on ``PYTHONPATH``): wall time from spawn to exit, and peak RSS
(``ru_maxrss`` from ``os.wait4``), medians of N runs. The car is ``carhub run
--auto-confirm --json`` as in ``bench_lan.py`` (its ``Car``), on loopback. Baselines, from
the same run:

- ``python -c pass``: the interpreter's own start-up time and RSS (the floor of any CLI);
- a sync as ``bench_lan.py`` measures it: ``sync_once`` in this process over an open
  session, the book already parsed (first: into an empty mirror; unchanged: the same
  book again with a cold digest cache, as a fresh process has);

and the figures:

- ``help``, ``status``: ``phone-bridge --help`` and ``status`` with one paired car;
- ``sync_10k_first``: a fresh state dir (new key, so an empty mirror on the car; no book
  cache), paired beforehand, then ``sync HOST:PORT --contacts book.vcf --json``;
- ``sync_10k_unchanged``: the same again with nothing changed (``HOST:PORT``), and by the
  car's name (``_by_name``: a paired car is dialled at its last address, no mDNS);
- ``run_idle_rss``: ``phone-bridge run HOST:PORT --contacts book.vcf --json`` after its
  first ``synced`` event and 2 s idle: ``VmRSS`` from ``/proc`` (500 contacts, as in the
  lab; ``_10k`` with the 10k book).

``--profile`` also prints ``-X importtime``'s top imports of ``status`` and of ``sync``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _util import Figure, median, print_table  # noqa: E402
from bench_lan import CAR_NAME, EMPTY, Car, Phone, load, proc_kb  # noqa: E402

from phone_bridge.sample_data import generate_vcards  # noqa: E402

PHONE = str(Path(sys.executable).with_name("phone-bridge"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
IDLE_SECONDS = 2.0


# Spawns each measured process and reports its wall time and peak RSS. It is a separate,
# small interpreter because a child's ru_maxrss starts from its parent's RSS at the fork
# (the kernel keeps the larger of the two at exec): spawned from this 70 MB bench, every
# process would report 70 MB. This one holds ~9 MB, below ``python -c pass`` itself.
SPAWNER = r"""
import json, os, sys, time
for line in sys.stdin:
    cmd, out, err = json.loads(line)
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
               (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
    start = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    print(json.dumps([wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]), flush=True)
"""


class Spawner:
    """The small process that runs each measured command (see ``SPAWNER``)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", SPAWNER], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=ENV, text=True,
        )  # fmt: skip

    def run(self, cmd: list[str]) -> tuple[float, float, bytes]:
        """Run ``cmd`` to its end; return (wall seconds, peak RSS in MB, stdout).

        Raises:
            RuntimeError: the process failed.
        """
        assert self.proc.stdin is not None and self.proc.stdout is not None
        out, err = self.work / "spawn.out", self.work / "spawn.err"
        self.proc.stdin.write(json.dumps([cmd, str(out), str(err)]) + "\n")
        self.proc.stdin.flush()
        wall, maxrss_kb, code = json.loads(self.proc.stdout.readline())
        if code != 0:
            raise RuntimeError(f"{cmd} exited {code}: {err.read_text()[-2000:]}")
        return wall, maxrss_kb / 1024, out.read_bytes()

    def close(self) -> None:
        """End the spawner."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


SPAWN: Spawner | None = None


def timed_process(cmd: list[str]) -> tuple[float, float, bytes]:
    """Run ``cmd`` to its end in the spawner: (wall seconds, peak RSS in MB, stdout)."""
    assert SPAWN is not None
    return SPAWN.run(cmd)


def runs_of(cmd: list[str], n: int) -> tuple[list[float], list[float]]:
    """Run ``cmd`` once to warm the page cache, then ``n`` times; (walls, peak RSSs)."""
    timed_process(cmd)
    walls, rss = [], []
    for _ in range(n):
        w, r, _ = timed_process(cmd)
        walls.append(w)
        rss.append(r)
    return walls, rss


def pb(state: Path, *args: str) -> list[str]:
    return [PHONE, "--state-dir", str(state), *args]


def pair(state: Path, car: Car) -> None:
    timed_process(pb(state, "pair", car.endpoint, "--auto-confirm", "--json"))


def sync_json(state: Path, car: str, book: Path) -> tuple[float, float, dict[str, object]]:
    """One ``phone-bridge sync``: (wall seconds, peak RSS MB, its JSON result)."""
    wall, rss, out = timed_process(pb(state, "sync", car, "--contacts", str(book), "--json"))
    return wall, rss, json.loads(out.splitlines()[-1])


def idle_run_rss(state: Path, car: Car, book: Path) -> tuple[float, float]:
    """Start ``run``, wait for its first sync and ``IDLE_SECONDS``; (VmRSS, VmHWM) in MB."""
    cmd = pb(state, "run", car.endpoint, "--contacts", str(book), "--json")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("phone-bridge run ended before syncing")
            if json.loads(line).get("event") == "synced":
                break
        time.sleep(IDLE_SECONDS)
        return proc_kb(proc.pid, "VmRSS") / 1024, proc_kb(proc.pid, "VmHWM") / 1024
    finally:
        proc.terminate()
        proc.wait(10)


async def in_process_syncs(car: Car, work: Path, data: bytes, n: int) -> tuple[float, float]:
    """The baselines: medians of ``n`` in-process syncs (first, unchanged), as bench_lan."""
    phone = Phone(work / "inproc", car)
    await phone.pair()
    first, unchanged = [], []
    try:
        for _ in range(n):
            first.append(await phone.sync(load(data)))
            unchanged.append(await phone.sync(load(data)))  # a cold digest cache, as a process
            await phone.sync(EMPTY)
    finally:
        await phone.close()
    print(f"  in-process sync: first {_r(first)} s, unchanged {_r(unchanged)} s")
    return median(first), median(unchanged)


def _r(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


def importtime_top(cmd: list[str], top: int = 12) -> None:
    """Print the ``top`` imports by cumulative time of one run under ``-X importtime``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd], capture_output=True,
                          text=True, env=ENV, check=False)  # fmt: skip
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cum, name = (p.strip() for p in line.removeprefix("import time:").split("|"))
            if cum.isdigit() and not name.startswith(" "):
                rows.append((int(cum), name))
    total = sum(c for c, n in rows if not n.startswith("."))
    print(f"  importtime {' '.join(cmd[-3:])}: {len(rows)} imports")
    for cum, name in sorted(rows, reverse=True)[:top]:
        print(f"    {cum / 1000:7.1f} ms  {name}")
    del total


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="3 runs per figure")
    parser.add_argument("--profile", action="store_true", help="print importtime tops")
    args = parser.parse_args()
    n = 3 if args.quick else args.runs
    work = Path(tempfile.mkdtemp(prefix="bench_cli."))
    global SPAWN
    SPAWN = Spawner(work)
    car = Car(work / "car")
    try:
        figures = measure(car, work, n, args.profile)
    finally:
        car.stop()
        SPAWN.close()
    print()
    print_table(figures, {
        "python -c pass": "the interpreter alone: start-up wall time and peak RSS",
        "in-process sync": "sync_once over an open session, the book already parsed "
                           "(bench_lan.py's measure)",
    })  # fmt: skip


def measure(car: Car, work: Path, n: int, profile: bool) -> list[Figure]:
    """All the figures, each beside its same-run baseline."""
    data = generate_vcards(10_000)
    book = work / "book10k.vcf"
    book.write_bytes(data)
    pass_t, pass_rss = runs_of([sys.executable, "-c", "pass"], n)
    base_t, base_rss = median(pass_t), median(pass_rss)
    print(f"  python -c pass: {_r(pass_t)} s, {median(pass_rss):.1f} MB")

    help_t, help_rss = runs_of([PHONE, "--help"], n)
    print(f"  --help: {_r(help_t)} s, {median(help_rss):.1f} MB")
    phone = work / "phone"
    pair(phone, car)
    status_t, status_rss = runs_of(pb(phone, "status"), n)
    print(f"  status: {_r(status_t)} s, {median(status_rss):.1f} MB")

    first_t, first_rss = [], []
    for i in range(n):
        fresh = work / f"first{i}"
        pair(fresh, car)
        wall, rss, r = sync_json(fresh, car.endpoint, book)
        assert r["added"] == 10_000, r
        first_t.append(wall)
        first_rss.append(rss)
    print(f"  sync 10k first: {_r(first_t)} s, {median(first_rss):.1f} MB")

    state = work / "first0"
    same_t, same_rss = [], []
    for _ in range(n):
        wall, rss, r = sync_json(state, car.endpoint, book)
        assert r["unchanged"] == 10_000 and r["added"] == 0, r
        same_t.append(wall)
        same_rss.append(rss)
    print(f"  sync 10k unchanged: {_r(same_t)} s, {median(same_rss):.1f} MB")
    by_name = [sync_json(state, CAR_NAME, book)[0] for _ in range(n)]
    print(f"  sync 10k unchanged, by name: {_r(by_name)} s")

    small = work / "book500.vcf"
    small.write_bytes(generate_vcards(500))
    idle, peak = idle_run_rss(phone, car, small)
    print(f"  run idle, 500 contacts: VmRSS {idle:.1f} MB (peak {peak:.1f} MB)")
    idle_10k, peak_10k = idle_run_rss(state, car, book)
    print(f"  run idle, 10k contacts: VmRSS {idle_10k:.1f} MB (peak {peak_10k:.1f} MB)")
    sync_first, sync_same = asyncio.run(in_process_syncs(car, work, data, n))
    if profile:
        importtime_top(pb(phone, "status"))
        importtime_top(pb(state, "sync", car.endpoint, "--contacts", str(book), "--json"))

    def fig(name: str, value: float, baseline: float, unit: str, limit: float | None) -> Figure:
        target = "" if limit is None else f"<= {limit:g} {unit}"
        return Figure(name, value, baseline, unit, target,
                      None if limit is None else value <= limit)  # fmt: skip

    return [
        fig("help_s", median(help_t), base_t, "s", None),
        fig("help_rss", median(help_rss), base_rss, "MB", None),
        fig("status_s", median(status_t), base_t, "s", 0.15),
        fig("status_rss", median(status_rss), base_rss, "MB", 30),
        fig("sync_10k_first_s", median(first_t), sync_first, "s", 0.6),
        fig("sync_10k_unchanged_s", median(same_t), sync_same, "s", 0.3),
        fig("sync_10k_unchanged_by_name_s", median(by_name), sync_same, "s", 0.3),
        fig("sync_10k_rss", median(first_rss), base_rss, "MB", None),
        fig("run_idle_rss", idle, base_rss, "MB", 30),
        fig("run_idle_rss_10k", idle_10k, base_rss, "MB", None),
    ]


if __name__ == "__main__":
    main()
