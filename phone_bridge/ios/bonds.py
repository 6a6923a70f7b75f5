"""The emulated iPhone's bonds and identity, in one JSON file of the state dir (mode 0600).

An iPhone keeps one identity across its life: an identity address and an IRK from which
each resolvable private address it connects from is made. The emulated one keeps both
in ``ios-bonds.json`` beside the keys of the cars it bonded with (Bumble ``PairingKeys``:
LTK, the car's IRK and identity address), so a restarted emulator reconnects to a car
it bonded with before, encrypted, with no new code. The identity address is a random
static one: an emulated controller gets a new public address every time it joins the
radio, so the public address could not be an identity.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from bumble import hci
from bumble.keys import KeyStore, PairingKeys

from phone_bridge.errors import StateError

__all__ = ["BOND_FILE", "BondStore"]

log = logging.getLogger(__name__)

BOND_FILE = "ios-bonds.json"


class BondStore(KeyStore):
    """A Bumble key store backed by ``DIR/ios-bonds.json`` (0600), with this phone's identity.

    Args:
        state_dir: the directory (created 0700 if missing).
        filename: the file in it (the emulated Android phone keeps its own).

    Raises:
        StateError: the directory or file cannot be read or written, or is malformed.
    """

    def __init__(self, state_dir: Path, filename: str = BOND_FILE) -> None:
        self.path = Path(state_dir) / filename
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(f"cannot create {self.path.parent}: {exc.strerror}") from None
        self._db = self._load()
        identity = self._db.setdefault("identity", {})
        if "irk" not in identity or "address" not in identity:
            identity["irk"] = secrets.token_bytes(16).hex()
            identity["address"] = str(hci.Address.generate_static_address()).split("/")[0]
            self._save()

    @property
    def irk(self) -> bytes:
        """This phone's Identity Resolving Key (16 bytes)."""
        return bytes.fromhex(self._db["identity"]["irk"])

    @property
    def identity_address(self) -> hci.Address:
        """This phone's identity address (random static)."""
        return hci.Address(self._db["identity"]["address"], hci.Address.RANDOM_DEVICE_ADDRESS)

    def _load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"bonds": {}}
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            db = json.loads(raw)
            if not isinstance(db, dict) or not isinstance(db.setdefault("bonds", {}), dict):
                raise ValueError("not an object")
            bytes.fromhex(db.get("identity", {}).get("irk", ""))
        except (ValueError, AttributeError) as exc:
            raise StateError(f"{self.path} is malformed ({exc}); delete it to start over") from None
        return db

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._db, out, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to an existing tmp file
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StateError(f"cannot write {self.path}: {exc.strerror}") from None

    # -- Bumble's KeyStore ------------------------------------------------------------
    async def delete(self, name: str) -> None:
        """Forget the bond with ``name`` (an address string)."""
        if self._db["bonds"].pop(name, None) is not None:
            self._save()

    async def update(self, name: str, keys: PairingKeys) -> None:
        """Store (merge) the keys of a bond."""
        self._db["bonds"].setdefault(name, {}).update(keys.to_dict())
        self._save()
        log.info("bond with %s stored in %s", name, self.path)

    async def get(self, name: str) -> PairingKeys | None:
        """The keys of the bond with ``name``, or None."""
        raw = self._db["bonds"].get(name)
        return None if raw is None else PairingKeys.from_dict(raw)

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        """Every bond, as ``(name, keys)``."""
        return [(n, PairingKeys.from_dict(k)) for n, k in self._db["bonds"].items()]

    async def delete_all(self) -> None:
        """Forget every bond (the identity stays)."""
        self._db["bonds"] = {}
        self._save()
