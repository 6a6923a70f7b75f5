"""The phone's state is the user's alone: the directory 0700, every file in it 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from phone_bridge.state import PhoneState
from protocol.sync import InFlight, JournalBase, JournalSent, SyncSnapshot

CAR = "ab" * 8


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_snapshot_journal_and_the_state_dir_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual login umask: files 0644, directories 0755 by default
    try:
        st = PhoneState(tmp_path / "phone")
        base = SyncSnapshot(bytes(16), {"u1": b"d" * 16}, set())
        item = InFlight(b"\x01" * 16, [("alice-uid", b"\x02" * 16)], [], [])
        st.record_sync(CAR, [JournalBase(base), JournalSent(item)])
    finally:
        os.umask(old)
    journal = tmp_path / "phone" / "snapshots" / f"{CAR}.log"
    assert journal.exists()
    assert _mode(journal) == 0o600
    assert _mode(tmp_path / "phone") == 0o700
    assert _mode(tmp_path / "phone" / "snapshots") == 0o700
