"""The phone's sync snapshots: one base and one journal of edits per car, and last syncs.

Files (in ``snapshots/`` of the state directory, see ``phone_bridge.state``)::

    <car id>.mpk     "CHB1" + generation (8 bytes) + base protocol.sync.SyncSnapshot
    <car id>.log     "CHJ1" + generation (8 bytes) + journal of sync edits since that base
    <car id>.synced  when the last sync with that car ended (Unix time, decimal text)

A base is replaced atomically (temporary file, rename); the journal is appended to, one
length-prefixed record per edit, so persisting a sync step costs O(batch), not
O(contacts); a torn last record (crash mid-append) is ignored on load. A journal grown
bigger than its base (and than 64 KiB) is folded into a new base.

A journal is replayed only over the base whose random generation its header repeats. A new
base gets a new generation, so a crash between renaming the new base into place and
dropping the old journal leaves a stale journal that is ignored, never replayed over the
new base (which already includes it). No base means generation zero.

None of these files is fsynced: losing one to a power cut costs a manifest round trip (the
car's anchor is then unknown) or an older "last sync" time, never correctness. The
snapshot this process last read or wrote is kept in memory, checked against the files'
inode, size and mtime before each use, so a sync in a long-lived process neither re-reads
nor rewrites its snapshot (each O(contacts)); another process writing them is noticed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from phone_bridge.errors import StateError
from shell.files import write_private

if TYPE_CHECKING:
    import msgspec

    from protocol.sync import SnapshotEdit, SyncSnapshot

# msgspec and protocol.sync are imported where a snapshot is read or written: `status`
# lists the cars' last sync times (``synced_at``) and must not pay for them.

__all__ = ["Snapshots", "atomic_write"]

_BASE_MAGIC = b"CHB1"
_LOG_MAGIC = b"CHJ1"
_GEN_SIZE = 8
_NO_BASE = bytes(_GEN_SIZE)  # the generation a journal has when there is no base file


class Snapshots:
    """The snapshots of every car this phone synced with.

    Args:
        root: the ``snapshots`` folder (it must exist).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        # car id -> (the files' stamp, the snapshot they rebuild)
        self._snaps: dict[str, tuple[_Stamp, SyncSnapshot]] = {}

    def synced_at(self, car_id: str) -> float | None:
        """When the last sync with ``car_id`` ended, if recorded here."""
        try:
            when = float(self._synced_path(car_id).read_text(encoding="ascii"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return when if math.isfinite(when) else None

    def record_synced(self, car_id: str, when: float) -> None:
        """Remember when a sync with ``car_id`` ended (not fsynced: a cosmetic time).

        Raises:
            StateError: the disk refused the write.
        """
        atomic_write(self._synced_path(car_id), repr(when).encode(), durable=False)

    def _synced_path(self, car_id: str) -> Path:
        return self.root / f"{car_id}.synced"

    def _paths(self, car_id: str) -> tuple[Path, Path]:
        return self.root / f"{car_id}.mpk", self.root / f"{car_id}.log"

    def snapshot(self, car_id: str) -> SyncSnapshot | None:
        """Return what this phone knows of a car's mirror, or None.

        None makes the car send its manifest, which also costs only the differences. The
        result is the caller's to change: the one this process last read or wrote is kept
        (a copy of it is returned) for as long as the files on disk are the ones it saw.
        """
        stamp, kept = _stamp(self._paths(car_id)), self._snaps.pop(car_id, None)
        if kept is None or kept[0] != stamp:
            snap = self._read_snapshot(car_id)
            if snap is None or _stamp(self._paths(car_id)) != stamp:
                return snap  # not kept: the files changed while we read them
            kept = (stamp, snap)
        self._snaps[car_id] = kept
        return _copy(kept[1])

    def _read_snapshot(self, car_id: str) -> SyncSnapshot | None:
        import msgspec

        from protocol.sync import SyncSnapshot, replay_journal

        base_path, log_path = self._paths(car_id)
        base: SyncSnapshot | None = None
        generation = _NO_BASE
        try:
            if base_path.exists():
                data = base_path.read_bytes()
                header = _header(data, _BASE_MAGIC)
                if header is None:
                    return None
                generation = header
                base = msgspec.msgpack.decode(
                    data[len(_BASE_MAGIC) + _GEN_SIZE :], type=SyncSnapshot
                )
            edits = list(_read_journal(log_path, generation))
        except (OSError, msgspec.MsgspecError, UnicodeDecodeError):
            return None  # a damaged snapshot only costs a manifest round trip
        if base is None and not edits:
            return None
        return replay_journal(base, edits)

    def forget(self, car_id: str) -> None:
        """Drop a snapshot (after a fresh pairing the car's mirror starts empty)."""
        self._snaps.pop(car_id, None)
        for path in (*self._paths(car_id), self._synced_path(car_id)):
            path.unlink(missing_ok=True)

    def record(self, car_id: str, edits: list[SnapshotEdit]) -> None:
        """Persist a sync step's edits (``ContactsSender.journal()``) before replying.

        A journal grown past its base's size (and 64 KiB) is folded into a new base.

        Raises:
            StateError: the disk refused the write (full, read-only).
        """
        from protocol.sync import JournalBase, SyncSnapshot, apply_edits

        paths = self._paths(car_id)
        kept = self._snaps.pop(car_id, None)
        current = kept[1] if kept is not None and kept[0] == _stamp(paths) else None
        self._write_edits(paths, edits)
        if current is None and not any(isinstance(e, JournalBase) for e in edits):
            return  # not known here: the next snapshot() reads the files
        snap = apply_edits(current or SyncSnapshot(bytes(16), {}, set()), edits)
        stamp = _stamp(paths)
        base_size, log_size = stamp[0][1], stamp[1][1]
        if log_size > max(_COMPACT_MIN, base_size):
            self._write_base(paths, snap)
            stamp = _stamp(paths)
        self._snaps[car_id] = (stamp, snap)

    def _write_base(self, paths: tuple[Path, Path], snap: SyncSnapshot) -> None:
        import msgspec

        base_path, log_path = paths
        body = _BASE_MAGIC + _new_generation() + msgspec.msgpack.encode(snap)
        # No fsync: a snapshot lost to a power cut only costs a manifest round trip. The
        # unlink is tidiness: the old journal names the old generation, never replayed.
        atomic_write(base_path, body, durable=False)
        _unlink(log_path)

    def _write_edits(self, paths: tuple[Path, Path], edits: list[SnapshotEdit]) -> None:
        from protocol.sync import JournalBase

        base_path, log_path = paths
        generation: bytes | None = None  # of the base on disk, once known
        tail: list[SnapshotEdit] = []
        for edit in edits:
            if isinstance(edit, JournalBase):
                self._write_base(paths, edit.snapshot)
                generation, tail = None, []
            else:
                tail.append(edit)
        if not tail:
            return
        if generation is None:
            generation = _base_generation(base_path)
        header = _LOG_MAGIC + generation
        records = b"".join(_record(e) for e in tail)
        try:
            # 0600 like the rest of the state (open("ab") would make it 0644 under umask 022).
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "ab") as f:
                # A journal for another base (left by a crash) or with a torn header is
                # stale: start a fresh one rather than append to it.
                if f.tell() == 0 or _read_head(log_path, len(header)) != header:
                    f.truncate(0)
                    records = header + records
                f.write(records)
        except OSError as exc:
            raise StateError(f"cannot write {log_path}: {exc.strerror}") from exc


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temporary file, fsync when ``durable``).

    Raises:
        StateError: the disk refused the write.
    """
    try:
        write_private(path, data, durable=durable)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror}") from exc


@cache
def _edit_decoder() -> msgspec.msgpack.Decoder[SnapshotEdit]:
    import msgspec

    from protocol.sync import SnapshotEdit

    return msgspec.msgpack.Decoder(SnapshotEdit)


# A journal is folded into its base once it is bigger than the base and than this.
_COMPACT_MIN = 64 * 1024
# (inode, size, mtime) of the base and of the journal; (0, 0, 0) for a missing file.
_Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]


def _stamp(paths: tuple[Path, Path]) -> _Stamp:
    """Identify the snapshot files' versions (a rename or an append changes the stamp)."""
    return _file_stamp(paths[0]), _file_stamp(paths[1])


def _file_stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _copy(snap: SyncSnapshot) -> SyncSnapshot:
    from protocol.sync import SyncSnapshot

    return SyncSnapshot(snap.anchor, dict(snap.digests), set(snap.photos), list(snap.inflight))


def _record(edit: SnapshotEdit) -> bytes:
    import msgspec

    body = msgspec.msgpack.encode(edit)
    return len(body).to_bytes(4, "big") + body


def _read_journal(path: Path, generation: bytes) -> Iterator[SnapshotEdit]:
    """Yield the journal's edits; stop at a torn or damaged last record.

    A journal whose header names another base generation (stale after a crash) is empty.
    """
    import msgspec

    if not path.exists():
        return
    data = path.read_bytes()
    if _header(data, _LOG_MAGIC) != generation:
        return
    pos = len(_LOG_MAGIC) + _GEN_SIZE
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        body = data[pos + 4 : pos + 4 + size]
        if len(body) < size:
            return
        try:
            yield _edit_decoder().decode(body)
        except (msgspec.MsgspecError, UnicodeDecodeError):
            return
        pos += 4 + size


def _header(data: bytes, magic: bytes) -> bytes | None:
    """Return the generation in a file's header, or None if the header is not ``magic``."""
    if len(data) < len(magic) + _GEN_SIZE or not data.startswith(magic):
        return None
    return data[len(magic) : len(magic) + _GEN_SIZE]


def _read_head(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def _base_generation(base_path: Path) -> bytes:
    """The generation of the base on disk (``_NO_BASE`` if none or unreadable)."""
    try:
        head = _read_head(base_path, len(_BASE_MAGIC) + _GEN_SIZE)
    except FileNotFoundError:
        return _NO_BASE
    except OSError as exc:
        raise StateError(f"cannot read {base_path}: {exc.strerror}") from exc
    # A damaged base makes snapshot() return None whatever the journal says.
    return _header(head, _BASE_MAGIC) or _NO_BASE


def _new_generation() -> bytes:
    while (gen := os.urandom(_GEN_SIZE)) == _NO_BASE:
        pass  # 2**-64: never, but zero is reserved for "no base"
    return gen


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StateError(f"cannot remove {path}: {exc.strerror}") from exc
