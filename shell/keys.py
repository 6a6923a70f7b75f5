"""Key files: the device's static private key, stored raw with mode 0600."""

from __future__ import annotations

import os
from pathlib import Path

from protocol.identity import Identity
from shell.errors import KeyFileError

__all__ = ["KeyFileError", "load_or_create_identity"]



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
