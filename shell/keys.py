"""Key files: the device's static private key, stored raw with mode 0600.

Beside it, ``<key>.pub`` caches the public key (mode 0600 too), in a record only that
private key vouches for (``protocol.identity.public_key_record``). Deriving the public key
needs X25519 (cryptography, ~7 MB and ~10 ms of start-up); a command that only shows the
device's id and fingerprint (``phone-bridge status``) reads the record instead, trusted
only while the key file's current bytes made it.
"""

from __future__ import annotations

import os
from pathlib import Path

from protocol.identity import Identity, cached_public_key, public_key_record
from shell.errors import KeyFileError
from shell.files import write_private

__all__ = ["KeyFileError", "load_or_create_identity", "load_public_key"]



def load_or_create_identity(path: Path) -> Identity:
    """Load the identity at ``path``, creating it (mode 0600) on first run.

    Raises:
        KeyFileError: the file is unreadable, the wrong size, or readable by others.
    """
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyFileError(f"{path} is mode {mode:o}; it must be 0600 (chmod 600 {path})")
        raw = path.read_bytes()
        try:
            return Identity.from_private_bytes(raw)
        except Exception as exc:
            raise KeyFileError(f"{path} is not a 32-byte X25519 private key") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    identity = Identity.generate()
    # O_EXCL + 0600 at creation: the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(identity.private_bytes())
    return identity


def load_public_key(path: Path) -> bytes:
    """The public key of the identity at ``path`` (created, as by ``load_or_create_identity``,
    on first run), from the ``.pub`` record beside it when this key made that record.

    Returns:
        The raw 32-byte public key.

    Raises:
        KeyFileError: as ``load_or_create_identity``.
    """
    record_path = path.with_name(path.name + ".pub")
    try:
        private_ok = path.stat().st_mode & 0o077 == 0
        raw = path.read_bytes() if private_ok else b""
        record = record_path.read_bytes()
    except OSError:
        raw = record = b""
    cached = cached_public_key(raw, record)
    if cached is not None:
        return cached
    identity = load_or_create_identity(path)  # the checks, and their messages, are its own
    public = identity.public_key
    try:
        write_private(record_path, public_key_record(identity.private_bytes(), public))
    except OSError:
        pass  # a read-only state dir: the key is derived again next time
    return public
