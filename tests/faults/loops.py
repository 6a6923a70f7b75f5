"""The fault loops, shared by the CI tests and ``bench/bench_faults.py``.

One round: a sync of a new version of the book (every contact changed, so every batch has
work) through the ``CutProxy``, a fault at a random byte offset of it (seeded), the checks
a user would make on the wreck, the recovery (a restart where something died, then a plain
``phone-bridge sync``), and the checks of the end state. A round that fails is recorded
with its seed, index and offset; the tests stop at the first, the bench counts them.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.helpers import poll
from tests.faults.mirror import Book, Mirror, integrity
from tests.faults.rig import SYNC_TIMEOUT, Rig, lan_rig

__all__ = ["FAULTS", "LANES", "Fault", "LoopResult", "fault_loop", "run_lanes", "versions"]

# Car-and-phone pairs run side by side (FAULTS_LANES; CI has 2 cores).
LANES = int(os.environ.get("FAULTS_LANES", "2"))

# The phone's one error line when the car or the link goes away mid-session (exit 1).
LOST = "connection to the car lost"
# A cut inside the WebSocket upgrade (its request and response are ~400 bytes) is, as the
# README says of exit 3, a car that could not be reached: one line, "cannot reach the car".
UPGRADE_BYTES = 1024
UNREACHABLE = "cannot reach the car"


@dataclass
class LoopResult:
    name: str
    seed: int
    runs: int = 0
    failures: list[str] = field(default_factory=list)
    full_s: float = 0.0  # a full sync of every contact, no fault (the phone's "seconds")
    resume_s: list[float] = field(default_factory=list)  # each recovery sync's "seconds"

    def line(self) -> str:
        return f"{self.name}: {self.runs} runs, {len(self.failures)} failures"


def versions(tmp_path: Path, count: int) -> list[Book]:
    """Three versions of a ``count``-card book: the first, then two that alternate."""
    path = tmp_path / "book.vcf"
    books = [Book.write(path, count, v) for v in (0, 1, 2)]
    return [b.install() for b in books[:1]] + books[1:]


@dataclass(frozen=True)
class Fault:
    """What happens at the offset, the phone exit codes a user may see, who restarts."""

    action: Callable[[Rig, subprocess.Popen[str]], Callable[[], None]]
    codes: frozenset[int]
    kills_car: bool = False  # the car is dead: restart it before the recovery sync
    kills_radio: bool = False  # the radio is dead: restart it, wait for the car's HCI
    # Offsets only after the bytes a sync with nothing to send takes (over BLE: HCI reset,
    # scan, connect, GATT discovery, handshake), so the fault hits the sync itself.
    after_setup: bool = False


def _kill_car(rig: Rig, proc: subprocess.Popen[str]) -> Callable[[], None]:
    car = rig.car.proc
    assert car is not None
    return car.kill


def _kill_radio(rig: Rig, proc: subprocess.Popen[str]) -> Callable[[], None]:
    assert rig.radio is not None
    return rig.radio.kill


FAULTS: dict[str, Fault] = {
    "car_kill": Fault(_kill_car, frozenset({1}), kills_car=True),
    "phone_kill": Fault(lambda rig, proc: proc.kill, frozenset({-9})),
    "cut": Fault(lambda rig, proc: rig.proxy.cut, frozenset({1})),
    # Over BLE the proxy sits between the phone and the radio: a cut is the phone's
    # controller leaving the air, which the car sees as a dropped link (0x13).
    "ble_drop": Fault(lambda rig, proc: rig.proxy.cut, frozenset({1}), after_setup=True),
    "radio_kill": Fault(_kill_radio, frozenset({1}), kills_radio=True, after_setup=True),
}


def run_lanes(
    tmp_path: Path,
    books: list[Book],
    fault: str,
    n: int,
    seed: int,
    *,
    make_rig: Callable[[Path], AbstractContextManager[Rig]] = lan_rig,
    stop: bool = True,
) -> LoopResult:
    """Run ``n`` rounds of ``fault`` split over ``LANES`` car-and-phone pairs at once.

    Each lane has its own car, phone, proxy and book file, and its own RNG drawn from
    ``seed`` and its index, so ``FAULTS_SEED`` repeats every lane. The processes are
    single-threaded and mostly busy starting up, so two lanes use the two cores of CI.
    """
    abort = threading.Event()
    results: list[LoopResult] = []
    errors: list[BaseException] = []

    def lane(j: int, rounds: int) -> None:
        d = tmp_path / f"lane{j}"
        d.mkdir()
        mine = [dataclasses.replace(b, path=d / "book.vcf") for b in books]
        try:
            with make_rig(d) as r:
                results.append(fault_loop(r, mine, fault, rounds, seed, j, abort=abort, stop=stop))
        except BaseException as exc:  # re-raised in the test's thread below
            abort.set()
            errors.append(exc)

    counts = [n // LANES + (1 if j < n % LANES else 0) for j in range(LANES)]
    threads = [threading.Thread(target=lane, args=(j, c)) for j, c in enumerate(counts) if c]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    merged = LoopResult(fault, seed)
    for r in results:
        merged.runs += r.runs
        merged.failures += r.failures
        merged.resume_s += r.resume_s
        merged.full_s = max(merged.full_s, r.full_s)
    return merged


def fault_loop(
    rig: Rig,
    books: list[Book],
    fault: str,
    n: int,
    seed: int,
    lane: int = 0,
    *,
    abort: threading.Event | None = None,
    stop: bool = True,
) -> LoopResult:
    """Run ``n`` rounds of ``fault``; raise at the first failure if ``stop``."""
    rng = random.Random(f"{seed}/{lane}")
    res = LoopResult(fault, seed)
    rig.proxy.reset_count()
    first = rig.synced(books[0].install().path)
    assert first["added"] == len(books[0].contacts), first
    full_bytes = rig.proxy.total  # this run's full sync: the range of fault offsets
    full = rig.synced(books[1].install().path)  # every contact changed: the full baseline
    res.full_s = float(full["seconds"])  # type: ignore[arg-type]
    low = 1
    if FAULTS[fault].after_setup:
        rig.proxy.reset_count()
        rig.synced(books[1].path)  # nothing to send: setup and the closing exchange only
        low = rig.proxy.total
    old = books[1]
    for i in range(n):
        if abort is not None and abort.is_set():
            break
        new = books[1 + (i + 1) % 2]
        offset = rng.randrange(low, full_bytes)
        res.runs += 1
        try:
            res.resume_s.append(_round(rig, fault, old, new, offset))
        except AssertionError as exc:
            msg = (
                f"{fault} seed {seed} (FAULTS_SEED={seed}), lane {lane}, round {i}, "
                f"offset {offset} of {full_bytes}: {exc}"
            )
            res.failures.append(msg)
            if stop:
                raise AssertionError(msg) from exc
            _recover(rig, new)
        old = new
    return res


def _round(rig: Rig, fault: str, old: Book, new: Book, offset: int) -> float:
    """One fault and its recovery; returns the recovery sync's own time."""
    f = FAULTS[fault]
    new.install()
    proc = rig.start_sync(new.path)
    rig.proxy.arm(offset, f.action(rig, proc))
    try:
        _, err = proc.communicate(timeout=SYNC_TIMEOUT)
    finally:
        rig.proxy.disarm()
    # The pump thread that crossed the offset runs the action (which may end the process we
    # just waited for), then cuts and sets ``fired``: give it a moment to get there.
    assert rig.proxy.fired.wait(5), f"the sync ended (exit {proc.returncode}) before the offset"
    code = proc.returncode
    if code == 3 and fault == "cut" and offset < UPGRADE_BYTES:
        code, lost = 1, UNREACHABLE  # cut before the car answered: it was never reached
    else:
        lost = LOST
    assert code in f.codes, f"phone exit {proc.returncode}: {err[-400:]}"
    if code == 1:
        lines = [ln for ln in err.splitlines() if ln.startswith("phone-bridge: error:")]
        assert len(lines) == 1 and lost in lines[0], err[-400:]
    assert "Traceback" not in err, err[-800:]
    car = rig.car
    if f.kills_car:
        assert car.proc is not None
        car.proc.wait(5)
    else:  # the car may still be committing what reached it: read once it saw the end
        poll(lambda: not _connected(rig), timeout=10, what="the car to see the phone gone")
    assert integrity(car) == "ok"
    wreck = Mirror.load(car, rig.phone_id)
    held = wreck.assert_whole_batches(new, old)
    wreck.assert_holds_acked(rig.phone.state_dir, car.id)
    if f.kills_car:
        car.start()
    if f.kills_radio:
        _restart_radio(rig)
    summary = rig.synced(new.path)
    # A resume sends only what the car lacks: the contacts of the new version not on it.
    assert summary["changed"] == len(new.contacts) - held, (summary, held)
    Mirror.load(car, rig.phone_id).assert_is(new)
    assert car.contacts(rig.phone_id, limit=0)["total"] == len(new.contacts)
    return float(summary["seconds"])  # type: ignore[arg-type]


def _restart_radio(rig: Rig) -> None:
    """Start the radio again on its port; wait until the car has its HCI back."""
    assert rig.radio is not None
    before = rig.car.log().count("transport reopened")
    rig.radio.start()
    poll(
        lambda: rig.car.log().count("transport reopened") > before,
        timeout=30, what="the car to reopen its HCI transport",
    )  # fmt: skip


def _connected(rig: Rig) -> bool:
    return any(p["id"] == rig.phone_id and p["connected"] for p in rig.car.phones())


def _recover(rig: Rig, book: Book) -> None:
    """After a failed round (bench only): get back to a running car that holds ``book``."""
    car = rig.car
    if car.proc is None or car.proc.poll() is not None:
        car.start()
    if rig.radio is not None and (rig.radio.proc is None or rig.radio.proc.poll() is not None):
        _restart_radio(rig)
    r = rig.sync(book.path)
    if r.code != 0:
        time.sleep(1)
        rig.sync(book.path)
