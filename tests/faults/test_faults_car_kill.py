"""kill -9 of ``carhub run`` at random points of a 20,000-contact LAN sync, N = 20.

Each round syncs a new version of the book (every card's name changed, so all 20,000
contacts are rewritten) with ``phone-bridge sync`` through a ``CutProxy``; at a random byte
offset of that sync (seeded; the seed is printed and in every failure, ``FAULTS_SEED``
repeats it) the proxy kills the car with SIGKILL from the very pump that crossed the
offset, so the car dies with data in flight, mid-commit as likely as between batches.
Then, as a user would check:

- the phone exits 1 ("connection to the car lost"), no traceback;
- ``PRAGMA integrity_check`` of the car's SQLite file is ``ok``;
- the car holds the new version of exactly a whole number of batches from the start of
  the book and the previous version of every other contact: no torn batch, no duplicate;
- nothing the phone journalled as acked is missing on the car;
- after a restart, a new sync sends only what the car lacks (``changed`` counts it) and
  the car then holds exactly the phone's book.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.faults.mirror import Book, Mirror, integrity, seeded
from tests.faults.rig import SYNC_TIMEOUT, Rig, env_seed, lan_rig

N = 20
CONTACTS = 20_000


def test_car_killed_mid_sync_keeps_whole_batches_and_resumes(tmp_path: Path) -> None:
    rng, seed = seeded("car kill", env_seed())
    with lan_rig(tmp_path) as rig:
        book = Book.write(tmp_path / "book.vcf", CONTACTS)
        rig.proxy.reset_count()
        assert rig.synced(book.path)["added"] == CONTACTS
        full_bytes = rig.proxy.total  # this run's full sync, the range of kill offsets
        for round_ in range(N):
            offset = rng.randrange(full_bytes)
            try:
                book = _one_round(rig, tmp_path, book, round_ + 1, offset)
            except AssertionError as exc:
                raise AssertionError(
                    f"seed {seed} (FAULTS_SEED={seed}), round {round_}, offset {offset} "
                    f"of {full_bytes}: {exc}"
                ) from exc


def _one_round(rig: Rig, tmp_path: Path, old: Book, version: int, offset: int) -> Book:
    new = Book.write(tmp_path / "book.vcf", CONTACTS, version)
    car = rig.car
    assert car.proc is not None
    rig.proxy.arm(offset, car.proc.kill)
    proc = rig.start_sync(new.path)
    _, err = proc.communicate(timeout=SYNC_TIMEOUT)
    assert rig.proxy.fired.wait(5), "the sync ended before the kill offset"
    car.proc.wait(5)
    assert proc.returncode == 1, f"phone exit {proc.returncode}: {err[-500:]}"
    assert "connection to the car lost" in err and "Traceback" not in err, err[-500:]
    assert integrity(car) == "ok"
    mirror = Mirror.load(car, rig.phone_id)
    held = mirror.assert_whole_batches(new, old)
    mirror.assert_holds_acked(rig.phone.state_dir, car.id)
    car.start()
    t = time.perf_counter()
    summary = rig.synced(new.path)
    assert summary["changed"] == CONTACTS - held, (summary, held)
    print(f"resumed {CONTACTS - held} in {time.perf_counter() - t:.2f} s")
    Mirror.load(car, rig.phone_id).assert_is(new)
    assert car.contacts(rig.phone_id, limit=0)["total"] == CONTACTS
    return new
