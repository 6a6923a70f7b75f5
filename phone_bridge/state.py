"""The phone's state directory: its key, the cars it paired with, and sync snapshots.

Layout (``--state-dir``, default ``~/.local/state/carhub-phone``)::

    phone.key                 X25519 private key, mode 0600
    phone.json                this phone's name as cars show it, once a --name gave one
    cars.json                 paired cars: id -> name, pinned public key, endpoints (an
                              endpoint belongs to the last car met there)
    snapshots/<car id>.mpk    "CHB1" + generation (8 bytes) + base protocol.sync.SyncSnapshot
    snapshots/<car id>.log    "CHJ1" + generation (8 bytes) + journal of sync edits since
                              that base (batches sent, acked)

Whole files are replaced atomically (write to a temporary file, fsync, rename), so a crash
or a full disk leaves the previous version intact. The journal is appended to, one
length-prefixed record per edit, so persisting a sync step costs O(batch), not
O(contacts); a torn last record (crash mid-append) is ignored on load.

A journal is replayed only over the base whose random generation its header repeats. A new
base gets a new generation, so a crash between renaming the new base into place and
dropping the old journal leaves a stale journal that is ignored, never replayed over the
new base (which already includes it). No base means generation zero.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import msgspec

from phone_bridge.errors import StateError
from protocol.identity import Identity, fingerprint
from protocol.sync import JournalBase, SnapshotEdit, SyncSnapshot, apply_edits, replay_journal
from shell.keys import load_or_create_identity

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
            root.mkdir(parents=True, exist_ok=True)
            (root / "snapshots").mkdir(exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state dir {root}: {exc.strerror}") from exc
        self._identity: Identity | None = None
        # car id -> (the files' stamp, the snapshot they rebuild): a sync in a long-lived
        # process neither re-reads its snapshot nor rewrites it (O(contacts) each).
        self._snaps: dict[str, tuple[_Stamp, SyncSnapshot]] = {}

    @property
    def identity(self) -> Identity:
        """The phone's key pair (created on first use)."""
        if self._identity is None:
            self._identity = load_or_create_identity(self.root / "phone.key")
        return self._identity

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
            return {cid: _parse_car(cid, c) for cid, c in raw.items()}
        except ValueError as exc:
            raise StateError(f"{path} is corrupt: {exc}") from exc

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

    # -- snapshots ---------------------------------------------------------------------
    def _paths(self, car_id: str) -> tuple[Path, Path]:
        d = self.root / "snapshots"
        return d / f"{car_id}.mpk", d / f"{car_id}.log"

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

    def forget_snapshot(self, car_id: str) -> None:
        """Drop a snapshot (after a fresh pairing the car's mirror starts empty)."""
        self._snaps.pop(car_id, None)
        for path in self._paths(car_id):
            path.unlink(missing_ok=True)

    def record_sync(self, car_id: str, edits: list[SnapshotEdit]) -> None:
        """Persist a sync step's edits (``ContactsSender.journal()``) before replying.

        A journal grown past its base's size (and 64 KiB) is folded into a new base.

        Raises:
            StateError: the disk refused the write (full, read-only).
        """
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
        base_path, log_path = paths
        body = _BASE_MAGIC + _new_generation() + msgspec.msgpack.encode(snap)
        # No fsync: a snapshot lost to a power cut only costs a manifest round trip. The
        # unlink is tidiness: the old journal names the old generation, never replayed.
        self._atomic_write(base_path, body, durable=False)
        _unlink(log_path)

    def _write_edits(self, paths: tuple[Path, Path], edits: list[SnapshotEdit]) -> None:
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
            with log_path.open("ab") as f:
                # A journal for another base (left by a crash) or with a torn header is
                # stale: start a fresh one rather than append to it.
                if f.tell() == 0 or _read_head(log_path, len(header)) != header:
                    f.truncate(0)
                    records = header + records
                f.write(records)
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
    return SyncSnapshot(snap.anchor, dict(snap.digests), set(snap.photos), list(snap.inflight))


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


def _record(edit: SnapshotEdit) -> bytes:
    body = msgspec.msgpack.encode(edit)
    return len(body).to_bytes(4, "big") + body


def _read_journal(path: Path, generation: bytes) -> Iterator[SnapshotEdit]:
    """Yield the journal's edits; stop at a torn or damaged last record.

    A journal whose header names another base generation (stale after a crash) is empty.
    """
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
            yield _edit_decoder.decode(body)
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
