"""Private state files: replaced atomically, readable by their owner only.

One writer for every state file the car and the phone keep (keys, snapshots, caches): a
reader never sees a half-written file, and the file is never readable by others, not
even briefly (``mkstemp`` creates it 0600).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically: a 0600 temporary file beside it, renamed.

    Args:
        path: the file to replace; its directory must exist.
        data: the file's new bytes.
        durable: fsync the data before the rename, for a file whose loss costs more than
            doing its work again.

    Raises:
        OSError: the disk refused; the temporary file is removed.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
