"""The phone's state directory: its key, the cars it paired with, and sync snapshots.

Layout (``--state-dir``, default ``~/.local/state/carhub-phone``)::

    phone.key                 X25519 private key, mode 0600
    cars.json                 paired cars: id -> name, pinned public key, endpoints
    snapshots/<car id>.mpk    the protocol.sync.SyncSnapshot of the last sync with that car

Every file is replaced atomically (write to a temporary file, fsync, rename), so a crash
or a full disk leaves the previous version intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec

from carhub.keys import load_or_create_identity
from protocol.identity import Identity, fingerprint
from protocol.sync import SyncSnapshot

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
    def snapshot(self, car_id: str) -> SyncSnapshot | None:
        """Return the last sync snapshot with a car, or None (the car then sends a manifest)."""
        path = self.root / "snapshots" / f"{car_id}.mpk"
        if not path.exists():
            return None
        try:
            return msgspec.msgpack.decode(path.read_bytes(), type=SyncSnapshot)
        except msgspec.DecodeError:
            return None  # a damaged snapshot only costs a manifest round trip

    def forget_snapshot(self, car_id: str) -> None:
        """Drop a snapshot (after a fresh pairing the car's mirror starts empty)."""
        (self.root / "snapshots" / f"{car_id}.mpk").unlink(missing_ok=True)

    def save_snapshot(self, car_id: str, snap: SyncSnapshot) -> None:
        """Persist a snapshot (after every acknowledged batch)."""
        self._atomic_write(self.root / "snapshots" / f"{car_id}.mpk", msgspec.msgpack.encode(snap))

    def _atomic_write(self, path: Path, data: bytes) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StateError(f"cannot write {path}: {exc.strerror}") from exc
