"""Disk full on the car mid-sync: one clear error line, the database intact, nothing
acked that was not stored, and the sync completes once space is freed.

The car's state directory is a small tmpfs the test mounts (CI runs as root; if the mount
is impossible the test fails with the reason, it is never skipped). A ballast file leaves
room for the car's keys and a few batches of a 20,000-contact sync, so SQLite runs out of
space partway through. Then, as a user would check:

- the phone exits non-zero with one line naming the car's storage, and no traceback;
- the car is still running, and its log has exactly one ERROR line (the batch it could
  not store) and no traceback;
- ``PRAGMA integrity_check`` is ``ok``, the car holds only whole batches of the book, and
  everything the phone journalled as acked is stored;
- with the ballast deleted, the next sync sends only what is missing and the car holds
  exactly the phone's book.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.faults.mirror import Book, Mirror, integrity
from tests.faults.rig import lan_rig

CONTACTS = 20_000
FS_BYTES = 16 * 1024 * 1024
ROOM = 1024 * 1024  # free space left for the sync: a 20k mirror needs several MB


@contextmanager
def small_fs(mountpoint: Path) -> Iterator[Path]:
    """Mount a ``FS_BYTES`` tmpfs at ``mountpoint``; always unmounted afterwards."""
    mountpoint.mkdir()
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0700", "tmpfs", str(mountpoint)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the car (needs root): {r.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_disk_full_mid_sync_is_one_line_and_resumes_once_freed(tmp_path: Path) -> None:
    book = Book.write(tmp_path / "book.vcf", CONTACTS)
    # The tmpfs is the car's state directory; the car's log and the phone are outside it.
    with small_fs(tmp_path / "fs") as fs, lan_rig(tmp_path, car_dir=fs) as rig:
        ballast = fs / "ballast"
        st = os.statvfs(fs)
        ballast.write_bytes(bytes(max(0, st.f_bavail * st.f_frsize - ROOM)))
        r = rig.sync(book.path)
        assert r.code != 0, f"the sync fit in {ROOM} bytes: {r.out}"
        errors = [ln for ln in r.err.splitlines() if ln.startswith("phone-bridge: error:")]
        assert len(errors) == 1 and "storage" in errors[0], r.err[-600:]
        assert "Traceback" not in r.err, r.err[-600:]

        car = rig.car
        assert car.proc is not None and car.proc.poll() is None, "the car died"
        log = car.log()
        assert "Traceback" not in log, log[-2000:]
        lines = [ln for ln in log.splitlines() if " ERROR " in ln]
        assert len(lines) == 1 and "full" in lines[0], lines
        print(f"car: {lines[0]}\nphone: {errors[0]}")
        assert integrity(car) == "ok"
        wreck = Mirror.load(car, rig.phone_id)
        held = wreck.assert_whole_batches(book)
        assert 0 < held < CONTACTS, f"the disk filled at {held} of {CONTACTS}: tune ROOM"
        wreck.assert_holds_acked(rig.phone.state_dir, car.id)

        ballast.unlink()
        summary = rig.synced(book.path)
        assert summary["added"] == CONTACTS - held, (summary, held)
        Mirror.load(car, rig.phone_id).assert_is(book)
        assert car.contacts(rig.phone_id, limit=0)["total"] == CONTACTS
