"""The phone's snapshot store: kept in memory while the files are its own, folded, timed."""

from __future__ import annotations

from pathlib import Path

from phone_bridge.state import PairedCar, PhoneState
from protocol.sync import InFlight, JournalAcked, JournalBase, JournalSent, SyncSnapshot

CAR = "ab" * 8


def _item(n: int, uid: str) -> InFlight:
    return InFlight(bytes([n]) * 16, [(uid, bytes([n]) * 16)], [], [])


def _base(n: int) -> SyncSnapshot:
    return SyncSnapshot(bytes(16), {f"u{i}": b"d" * 16 for i in range(n)}, set())


def test_a_kept_snapshot_is_the_callers_to_change(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    st.record_sync(CAR, [JournalBase(_base(3)), JournalSent(_item(1, "a"))])
    first = st.snapshot(CAR)
    assert first is not None and len(first.inflight) == 1
    first.digests.clear()
    first.inflight.clear()
    again = st.snapshot(CAR)
    assert again is not None and len(again.digests) == 3 and len(again.inflight) == 1


def test_another_process_writing_is_noticed(tmp_path: Path) -> None:
    mine, other = PhoneState(tmp_path), PhoneState(tmp_path)
    mine.record_sync(CAR, [JournalBase(_base(2))])
    assert mine.snapshot(CAR) is not None
    other.record_sync(CAR, [JournalSent(_item(1, "z")), JournalAcked(bytes([1]) * 16)])
    seen = mine.snapshot(CAR)
    assert seen is not None and seen.anchor == bytes([1]) * 16 and "z" in seen.digests
    # And what this process appends next lands on the other's state, not on a stale copy.
    mine.record_sync(CAR, [JournalSent(_item(2, "y")), JournalAcked(bytes([2]) * 16)])
    fresh = PhoneState(tmp_path).snapshot(CAR)
    assert fresh is not None and {"z", "y"} <= fresh.digests.keys()
    assert fresh == mine.snapshot(CAR)


def test_a_long_journal_is_folded_into_a_new_base(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    st.record_sync(CAR, [JournalBase(_base(1))])
    for n in range(1, 1500):
        item = _item(n % 250 + 1, f"c{n}")
        st.record_sync(CAR, [JournalSent(item), JournalAcked(item.anchor)])
    log = tmp_path / "snapshots" / f"{CAR}.log"
    assert not log.exists() or log.stat().st_size <= 64 * 1024
    fresh = PhoneState(tmp_path).snapshot(CAR)
    assert fresh is not None and len(fresh.digests) == 1500
    assert fresh == st.snapshot(CAR)


def test_last_sync_survives_without_rewriting_cars_json(tmp_path: Path) -> None:
    st = PhoneState(tmp_path)
    st.save_car(PairedCar(id=CAR, name="Car", public_key="11" * 32))
    before = (tmp_path / "cars.json").read_bytes()
    st.snapshots.record_synced(CAR, 1234.5)
    assert (tmp_path / "cars.json").read_bytes() == before
    assert PhoneState(tmp_path).cars()[CAR].last_sync == 1234.5
    st.forget_car(CAR)
    st.save_car(PairedCar(id=CAR, name="Car", public_key="11" * 32))
    assert st.cars()[CAR].last_sync is None  # a fresh pairing has not synced yet
