"""The phone's state directory: its key, the cars it paired with, and sync snapshots.

Layout (``--state-dir``, default ``~/.local/state/carhub-phone``)::

    phone.key                 X25519 private key, mode 0600
    cars.json                 paired cars: id -> name, pinned public key, endpoints
    snapshots/<car id>.mpk    base protocol.sync.SyncSnapshot of the car's mirror
    snapshots/<car id>.log    journal of sync edits since the base (batches sent, acked)

Whole files are replaced atomically (write to a temporary file, fsync, rename), so a crash
or a full disk leaves the previous version intact. The journal is appended to, one
length-prefixed record per edit, so persisting a sync step costs O(batch), not
O(contacts); a torn last record (crash mid-append) is ignored on load.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec

from carhub.keys import load_or_create_identity
from protocol.identity import Identity, fingerprint
from protocol.sync import JournalBase, SnapshotEdit, SyncSnapshot, replay_journal

__all__ = ["PairedCar", "PhoneState", "StateError", "default_state_dir"]


class StateError(Exception):
    """The state directory cannot be read or written."""


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/carhub-phone`` or ``~/.local/state/carhub-phone``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "carhub-phone"


@dataclass
class PairedCar:
    id: str
    name: str
    public_key: str  # hex
    endpoint: str = ""  # host:port of the WebSocket session endpoint, last known
    ble_address: str = ""
    paired_at: float = field(default_factory=time.time)
    last_sync: float | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(bytes.fromhex(self.public_key))


class PhoneState:
    """Reads and writes the phone's state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / "snapshots").mkdir(exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state dir {root}: {exc.strerror}") from exc
        self._identity: Identity | None = None

    @property
    def identity(self) -> Identity:
        """The phone's key pair (created on first use)."""
        if self._identity is None:
            self._identity = load_or_create_identity(self.root / "phone.key")
        return self._identity

    # -- cars --------------------------------------------------------------------------
    def cars(self) -> dict[str, PairedCar]:
        """Return the paired cars by id."""
        path = self.root / "cars.json"
        if not path.exists():
            return {}
        try:
            raw = json.loads(path.read_text())
            return {cid: PairedCar(**c) for cid, c in raw.items()}
        except (ValueError, TypeError) as exc:
            raise StateError(f"{path} is corrupt: {exc}") from exc

    def save_car(self, car: PairedCar) -> None:
        """Add or update a paired car."""
        cars = self.cars()
        cars[car.id] = car
        self._write_json(cars)

    def forget_car(self, car_id: str) -> bool:
        """Forget a car and its snapshot. Returns False if it was not paired."""
        cars = self.cars()
        if cars.pop(car_id, None) is None:
            return False
        self._write_json(cars)
        self.forget_snapshot(car_id)
        return True

    def _write_json(self, cars: dict[str, PairedCar]) -> None:
        data = json.dumps({cid: asdict(c) for cid, c in cars.items()}, indent=2).encode()
        self._atomic_write(self.root / "cars.json", data)

    # -- snapshots ---------------------------------------------------------------------
    def _paths(self, car_id: str) -> tuple[Path, Path]:
        d = self.root / "snapshots"
        return d / f"{car_id}.mpk", d / f"{car_id}.log"

    def snapshot(self, car_id: str) -> SyncSnapshot | None:
        """Return what this phone knows of a car's mirror, or None.

        None makes the car send its manifest, which also costs only the differences.
        """
        base_path, log_path = self._paths(car_id)
        try:
            base = (
                msgspec.msgpack.decode(base_path.read_bytes(), type=SyncSnapshot)
                if base_path.exists()
                else None
            )
            edits = list(_read_journal(log_path))
        except (OSError, msgspec.MsgspecError, UnicodeDecodeError):
            return None  # a damaged snapshot only costs a manifest round trip
        if base is None and not edits:
            return None
        return replay_journal(base, edits)

    def forget_snapshot(self, car_id: str) -> None:
        """Drop a snapshot (after a fresh pairing the car's mirror starts empty)."""
        for path in self._paths(car_id):
            path.unlink(missing_ok=True)

    def record_sync(self, car_id: str, edits: list[SnapshotEdit]) -> None:
        """Persist a sync step's edits (``ContactsSender.journal()``) before replying.

        Raises:
            StateError: the disk refused the write (full, read-only).
        """
        base_path, log_path = self._paths(car_id)
        tail: list[SnapshotEdit] = []
        for edit in edits:
            if isinstance(edit, JournalBase):
                # No fsync: losing a snapshot to a power cut only costs a manifest round
                # trip (the car's anchor is then unknown), never correctness.
                self._atomic_write(base_path, msgspec.msgpack.encode(edit.snapshot), durable=False)
                log_path.unlink(missing_ok=True)
                tail = []
            else:
                tail.append(edit)
        if not tail:
            return
        try:
            with log_path.open("ab") as f:
                f.write(b"".join(_record(e) for e in tail))
        except OSError as exc:
            raise StateError(f"cannot write {log_path}: {exc.strerror}") from exc

    def _atomic_write(self, path: Path, data: bytes, *, durable: bool = True) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    if durable:
                        os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StateError(f"cannot write {path}: {exc.strerror}") from exc


_edit_decoder = msgspec.msgpack.Decoder(SnapshotEdit)


def _record(edit: SnapshotEdit) -> bytes:
    body = msgspec.msgpack.encode(edit)
    return len(body).to_bytes(4, "big") + body


def _read_journal(path: Path) -> Iterator[SnapshotEdit]:
    """Yield the journal's edits; stop at a torn or damaged last record."""
    if not path.exists():
        return
    data = path.read_bytes()
    pos = 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        body = data[pos + 4 : pos + 4 + size]
        if len(body) < size:
            return
        try:
            yield _edit_decoder.decode(body)
        except (msgspec.MsgspecError, UnicodeDecodeError):
            return
        pos += 4 + size
