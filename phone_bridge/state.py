"""The phone's state directory: its key, the cars it paired with, and sync snapshots.

Layout (``--state-dir``, default ``~/.local/state/carhub-phone``)::

    phone.key                 X25519 private key, mode 0600
    phone.key.pub             its public key, cached (``shell.keys.load_public_key``)
    phone.json                this phone's name as cars show it, once a --name gave one
    cars.json                 paired cars: id -> name, pinned public key, endpoints (an
                              endpoint belongs to the last car met there)
    books/<path key>.mpk      parsed vCard files, by content hash (``phone_bridge.book_cache``)
    snapshots/<car id>.*      the sync snapshot of each car: a base, a journal of edits since
                              (batches sent, acked) and the last sync's time
                              (``phone_bridge.snapshots``)

Whole files are replaced atomically (write to a temporary file, fsync, rename), so a crash
or a full disk leaves the previous version intact. A car's ``last_sync`` is the later of
its ``cars.json`` field and its ``snapshots/<car id>.synced`` file, which each sync
rewrites without an fsync (``cars.json`` holds the pinned keys: rewriting it durably cost
a delta sync of one contact more than its whole protocol work).

msgspec and ``protocol.sync`` are imported by the snapshot code only: ``status`` and
``--help`` read no snapshot, and those imports are a third of their start-up.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phone_bridge.errors import StateError
from phone_bridge.snapshots import Snapshots, atomic_write
from protocol.identity import Identity, fingerprint
from shell.keys import load_or_create_identity, load_public_key

if TYPE_CHECKING:
    from protocol.sync import SnapshotEdit, SyncSnapshot

__all__ = ["PairedCar", "PhoneState", "StateError", "default_phone_name", "default_state_dir"]


log = logging.getLogger("phone_bridge")

_BASE_MAGIC = b"CHB1"
_LOG_MAGIC = b"CHJ1"
_GEN_SIZE = 8
_NO_BASE = bytes(_GEN_SIZE)  # the generation a journal has when there is no base file
_CAR_ID_RE = re.compile(r"[0-9a-f]{16}")


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/carhub-phone`` or ``~/.local/state/carhub-phone``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "carhub-phone"


def default_phone_name() -> str:
    """The phone's name when no ``--name`` was ever given: from the hostname."""
    return f"phone-bridge on {socket.gethostname()}"


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
            # 0700: keys, what each car holds, the parsed address book; the user's alone.
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            (root / "snapshots").mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state dir {root}: {exc.strerror}") from exc
        self._identity: Identity | None = None
        self.snapshots = Snapshots(root / "snapshots")

    @property
    def identity(self) -> Identity:
        """The phone's key pair (created on first use)."""
        if self._identity is None:
            self._identity = load_or_create_identity(self.root / "phone.key")
        return self._identity

    @property
    def public_key(self) -> bytes:
        """The phone's public key, without loading X25519 when ``phone.key.pub`` has it."""
        if self._identity is not None:
            return self._identity.public_key
        return load_public_key(self.root / "phone.key")

    # -- this phone --------------------------------------------------------------------
    def phone_name(self, given: str | None = None) -> str:
        """This phone's name as the car shows it (every ``Hello`` carries it).

        The car renames the phone after each ``Hello``, so a ``--name`` given once (at
        ``pair``) must be sent again by every later command that is given none. A name is
        only cosmetic: a ``phone.json`` that cannot be read or written is logged, not fatal.

        Args:
            given: the ``--name`` of this command, if any; it is remembered.

        Returns:
            ``given``, else the last name given, else ``default_phone_name()``.
        """
        path = self.root / "phone.json"
        try:
            stored = _stored_name(path)
            if given and given != stored:
                self._atomic_write(path, json.dumps({"name": given}).encode())
        except StateError as exc:
            log.warning("phone name: %s", exc)
            stored = ""
        return given or stored or default_phone_name()

    # -- cars --------------------------------------------------------------------------
    def cars(self) -> dict[str, PairedCar]:
        """Return the paired cars by id."""
        path = self.root / "cars.json"
        if not path.exists():
            return {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise StateError(f"cannot read {path}: {exc.strerror}") from exc
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise StateError(f"{path} is corrupt: not UTF-8 JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise StateError(f"{path} is corrupt: expected a JSON object of cars by id")
        try:
            cars = {cid: _parse_car(cid, c) for cid, c in raw.items()}
        except ValueError as exc:
            raise StateError(f"{path} is corrupt: {exc}") from exc
        for car in cars.values():
            synced = self.snapshots.synced_at(car.id)
            if synced is not None and (car.last_sync is None or synced > car.last_sync):
                car.last_sync = synced
        return cars

    def save_car(self, car: PairedCar) -> None:
        """Add or update a paired car.

        Its endpoint is taken from any other car that had it: one address holds one car,
        and the one just met there is the one it holds now.
        """
        cars = self.cars()
        for other in cars.values():
            if car.endpoint and other.id != car.id and other.endpoint == car.endpoint:
                other.endpoint = ""
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

    # -- snapshots (phone_bridge.snapshots) ----------------------------------------------
    def snapshot(self, car_id: str) -> SyncSnapshot | None:
        """Return what this phone knows of a car's mirror, or None (see ``Snapshots``)."""
        return self.snapshots.snapshot(car_id)

    def forget_snapshot(self, car_id: str) -> None:
        """Drop a snapshot (after a fresh pairing the car's mirror starts empty)."""
        self.snapshots.forget(car_id)

    def record_sync(self, car_id: str, edits: list[SnapshotEdit]) -> None:
        """Persist a sync step's edits (``ContactsSender.journal()``) before replying.

        Raises:
            StateError: the disk refused the write (full, read-only).
        """
        self.snapshots.record(car_id, edits)

    def _atomic_write(self, path: Path, data: bytes, *, durable: bool = True) -> None:
        atomic_write(path, data, durable=durable)


def _stored_name(path: Path) -> str:
    """The name in ``phone.json`` ("" if none).

    Raises:
        StateError: unreadable or malformed.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise StateError(f"{path} is corrupt: not UTF-8 JSON ({exc})") from exc
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str):
        raise StateError(f'{path} is corrupt: expected {{"name": "..."}}')
    return name


_CAR_FIELDS = {f.name for f in fields(PairedCar)}
_REQUIRED = ("id", "name", "public_key")


def _parse_car(key: object, raw: object) -> PairedCar:
    """Check one entry of cars.json and build a ``PairedCar``.

    Raises:
        ValueError: a one-line description of what is wrong.
    """
    where = f"car {key!r}"
    if not isinstance(key, str) or not _CAR_ID_RE.fullmatch(key):
        raise ValueError(f"{where}: id is not 16 lower-case hex digits")
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(raw) - _CAR_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field {', '.join(map(str, unknown))}")
    car: dict[str, Any] = dict(raw)
    for name in ("id", "name", "public_key", "endpoint", "ble_address"):
        if name in car and not isinstance(car[name], str):
            raise ValueError(f"{where}: {name} must be a string")
    if car["id"] != key:
        raise ValueError(f"{where}: its id field says {car['id']!r}")
    try:
        key_bytes = bytes.fromhex(car["public_key"])
    except ValueError:
        key_bytes = b""
    if len(key_bytes) != 32:
        raise ValueError(f"{where}: public_key is not 64 hex digits")
    for name, optional in (("paired_at", False), ("last_sync", True)):
        value = car.get(name, 0.0)
        if value is None and optional:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"{where}: {name} must be a number")
    return PairedCar(**car)
