"""kill -9 of ``phone-bridge sync`` at random points of a LAN sync, N = 20.

The same rounds as ``test_faults_car_kill`` (see ``tests.faults.loops``), with the phone
killed instead at a random byte offset of a sync of a 5,000-contact book (10 batches; the
issue fixes no size here, and 5,000 keeps the stage within its time): the car's database
intact, only whole batches of the new version on it, everything the phone's journal
counts as acked stored, and the next sync, from the phone's journal as the kill left it,
sends only what is missing and ends with the car holding exactly the phone's book once.

The rounds run in two lanes, each its own car, phone and proxy
(``tests.faults.loops.run_lanes``; ``FAULTS_LANES`` changes it).
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.loops import run_lanes, versions
from tests.faults.mirror import seeded
from tests.faults.rig import env_seed

N = 20
CONTACTS = 5_000


def test_phone_killed_mid_sync_resumes_to_the_same_book(tmp_path: Path) -> None:
    _, seed = seeded("phone_kill", env_seed())
    books = versions(tmp_path, CONTACTS)
    result = run_lanes(tmp_path, books, "phone_kill", N, seed)
    print(result.line(), f"full {result.full_s:.2f} s")
    assert result.runs == N and not result.failures
