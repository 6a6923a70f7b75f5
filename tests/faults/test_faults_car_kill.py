"""kill -9 of ``carhub run`` at random points of a 20,000-contact LAN sync, N = 20.

Each round syncs a new version of the book (every card's family name changed, so all
20,000 contacts are rewritten, 40 batches of 500) with ``phone-bridge sync`` through a
``CutProxy``; at a random byte offset of that sync (seeded: the seed is printed and in
every failure, ``FAULTS_SEED=...`` repeats it) the proxy SIGKILLs the car from the very
pump that crossed the offset, so the car dies with data in flight, mid-commit as likely
as between batches. Then, as a user would check (``tests.faults.loops``):

- the phone exits 1 with one line, "connection to the car lost", and no traceback;
- ``PRAGMA integrity_check`` of the car's SQLite file is ``ok``;
- the car holds the new version of exactly a whole number of batches from the start of
  the book and the previous version of every other contact: no torn batch, no duplicate;
- nothing the phone journalled as acked is missing on the car;
- after a restart, one ``phone-bridge sync`` sends only what the car lacks (its
  ``changed`` count) and the car then holds exactly the phone's book, in SQLite and in
  ``GET /api/phones/{id}/contacts``.

The rounds run in two lanes, each its own car, phone and proxy
(``tests.faults.loops.run_lanes``; ``FAULTS_LANES`` changes it).
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.loops import run_lanes, versions
from tests.faults.mirror import seeded
from tests.faults.rig import env_seed

N = 20
CONTACTS = 20_000


def test_car_killed_mid_sync_keeps_whole_batches_and_resumes(tmp_path: Path) -> None:
    _, seed = seeded("car_kill", env_seed())
    books = versions(tmp_path, CONTACTS)
    assert len(books[1].boundaries) == CONTACTS // 500  # many batches to die between
    result = run_lanes(tmp_path, books, "car_kill", N, seed)
    print(result.line(), f"full {result.full_s:.2f} s, resumes {result.resume_s}")
    assert result.runs == N and not result.failures
