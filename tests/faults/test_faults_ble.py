"""Over BLE: the link dropped at random points of a sync (N = 30), and the radio process
killed and restarted mid-session (N = 6).

The phone's connection to ``carhub-radio`` runs through a ``CutProxy``. Resetting it at a
random byte offset of the phone's HCI stream takes the phone's controller off the air, as
a phone walking out of range does: the car sees the link end (0x13) mid-sync. Killing the
radio (SIGKILL) at such an offset takes the air away from both; the test restarts it on
its port and waits for the car to reopen its HCI transport. Each round then checks what
the LAN loops check (``tests.faults.loops``): the phone's one error line, the car's
database intact with whole batches only and everything acked, and a new sync over BLE
that sends only what is missing and leaves the car holding exactly the phone's book.

The offsets fall after the bytes of a sync with nothing to send (HCI reset, scan,
connect, GATT discovery, handshake): a cut inside that setup still makes Bumble's host
log its own traceback on the phone's stderr (left alone here: it is Bumble's logger),
although the phone now ends there with one line too. The book is 2,000 contacts (4
batches). The rounds run in two lanes (``tests.faults.loops.run_lanes``).
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.loops import run_lanes, versions
from tests.faults.mirror import seeded
from tests.faults.rig import ble_rig, env_seed

N_DROPS = 30
N_RADIO_KILLS = 6
CONTACTS = 2_000


def test_ble_link_dropped_mid_sync_resumes_to_the_same_book(tmp_path: Path) -> None:
    _, seed = seeded("ble_drop", env_seed())
    books = versions(tmp_path, CONTACTS)
    result = run_lanes(tmp_path, books, "ble_drop", N_DROPS, seed, make_rig=ble_rig)
    print(result.line(), f"full {result.full_s:.2f} s")
    assert result.runs == N_DROPS and not result.failures


def test_radio_killed_and_restarted_mid_sync_both_sides_recover(tmp_path: Path) -> None:
    _, seed = seeded("radio_kill", env_seed())
    books = versions(tmp_path, CONTACTS)
    result = run_lanes(tmp_path, books, "radio_kill", N_RADIO_KILLS, seed, make_rig=ble_rig)
    print(result.line(), f"full {result.full_s:.2f} s")
    assert result.runs == N_RADIO_KILLS and not result.failures
