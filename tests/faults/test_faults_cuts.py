"""Connection cuts at random byte offsets of a LAN sync, through a ``CutProxy``, N = 100.

The proxy forwards exactly the chosen number of bytes (both directions together, seeded)
and then resets both sockets, anywhere from the WebSocket upgrade and the Noise handshake
to the last ack. Each round (``tests.faults.loops``): the phone exits 1 with one line, the
car's database is intact and holds only whole batches of the new version and everything
acked, and one more sync leaves the car holding exactly the phone's 2,000 contacts (4
batches), with no duplicates. The book is 2,000 contacts so that 100 rounds fit the
stage's time; the offsets cover the whole sync either way.

The rounds run in two lanes, each its own car, phone and proxy
(``tests.faults.loops.run_lanes``; ``FAULTS_LANES`` changes it).
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.loops import run_lanes, versions
from tests.faults.mirror import seeded
from tests.faults.rig import env_seed

N = 100
CONTACTS = 2_000


def test_cut_mid_sync_resumes_to_the_same_book(tmp_path: Path) -> None:
    _, seed = seeded("cut", env_seed())
    books = versions(tmp_path, CONTACTS)
    result = run_lanes(tmp_path, books, "cut", N, seed)
    print(result.line(), f"full {result.full_s:.2f} s")
    assert result.runs == N and not result.failures
