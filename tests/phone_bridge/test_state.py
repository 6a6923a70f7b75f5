"""The phone's state directory: key file mode, paired cars, and the sync journal."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from phone_bridge.state import PairedCar, PhoneState, StateError
from protocol.sync import InFlight, JournalAcked, JournalBase, JournalSent, SyncSnapshot


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = PhoneState(tmp_path).identity
    mode = stat.S_IMODE((tmp_path / "phone.key").stat().st_mode)
    assert mode == 0o600
    assert PhoneState(tmp_path).identity.public_key == first.public_key


def test_cars_round_trip_and_forget(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    st.save_car(PairedCar(id="ab" * 8, name="Car", public_key="11" * 32, endpoint="h:1"))
    assert st.cars()["ab" * 8].endpoint == "h:1"
    assert st.forget_car("ab" * 8) and not st.cars()
    assert not st.forget_car("ab" * 8)


def test_corrupt_cars_file_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "cars.json").write_text("{not json")
    with pytest.raises(StateError):
        PhoneState(tmp_path).cars()


def _item(anchor: int, uid: str) -> InFlight:
    return InFlight(bytes([anchor]) * 16, [(uid, b"d" * 16)], [], [])


def test_journal_rebuilds_acked_state_and_inflight(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    base = SyncSnapshot(bytes(16), {"old": b"o" * 16}, set())
    st.record_sync("car", [JournalBase(base), JournalSent(_item(1, "a"))])
    st.record_sync("car", [JournalSent(_item(2, "b")), JournalAcked(bytes([1]) * 16)])
    snap = st.snapshot("car")
    assert snap is not None
    assert snap.anchor == bytes([1]) * 16
    assert set(snap.digests) == {"old", "a"}
    assert [i.anchor for i in snap.inflight] == [bytes([2]) * 16]


def test_torn_last_journal_record_is_ignored(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    st.record_sync("car", [JournalBase(SyncSnapshot(bytes(16), {}, set()))])
    st.record_sync("car", [JournalSent(_item(1, "a")), JournalAcked(bytes([1]) * 16)])
    log = tmp_path / "snapshots" / "car.log"
    log.write_bytes(log.read_bytes()[:-3])  # crash in the middle of the last append
    snap = st.snapshot("car")
    assert snap is not None and snap.anchor == bytes(16)  # the ack was torn off
    assert [i.anchor for i in snap.inflight] == [bytes([1]) * 16]


def test_new_base_truncates_the_journal(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    st.record_sync("car", [JournalSent(_item(1, "a"))])
    st.record_sync("car", [JournalBase(SyncSnapshot(bytes([9]) * 16, {"z": b"z" * 16}, set()))])
    snap = st.snapshot("car")
    assert snap is not None and snap.anchor == bytes([9]) * 16 and not snap.inflight
    assert not (tmp_path / "snapshots" / "car.log").exists()


def test_garbage_snapshot_means_no_snapshot(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    (tmp_path / "snapshots" / "car.mpk").write_bytes(b"\xc1garbage")
    assert st.snapshot("car") is None


def test_crash_between_new_base_and_journal_removal_never_replays_the_old_journal(
    tmp_path: Path,
) -> None:
    st = PhoneState(tmp_path)
    st.record_sync("car", [JournalBase(SyncSnapshot(bytes(16), {"old": b"o" * 16}, set()))])
    st.record_sync("car", [JournalSent(_item(1, "a")), JournalAcked(bytes([1]) * 16)])
    log = tmp_path / "snapshots" / "car.log"
    old_log = log.read_bytes()
    new_base = SyncSnapshot(bytes([9]) * 16, {"z": b"z" * 16}, set())
    st.record_sync("car", [JournalBase(new_base)])
    log.write_bytes(old_log)  # as if the process died before the old journal was dropped
    snap = PhoneState(tmp_path).snapshot("car")
    assert snap is not None
    assert (snap.anchor, set(snap.digests), snap.inflight) == (new_base.anchor, {"z"}, [])
    # Appending after such a crash starts a fresh journal for the new base.
    st.record_sync("car", [JournalSent(_item(2, "b"))])
    snap = PhoneState(tmp_path).snapshot("car")
    assert snap is not None and snap.anchor == new_base.anchor and set(snap.digests) == {"z"}
    assert [i.anchor for i in snap.inflight] == [bytes([2]) * 16]


def test_crash_while_forgetting_a_snapshot_leaves_no_orphan_journal(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    st.record_sync("car", [JournalBase(SyncSnapshot(bytes(16), {}, set()))])
    st.record_sync("car", [JournalSent(_item(1, "a"))])
    (tmp_path / "snapshots" / "car.mpk").unlink()  # forget_snapshot died after the base
    assert st.snapshot("car") is None
