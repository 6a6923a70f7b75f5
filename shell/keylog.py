"""``--keylog``: append every secure session's keys to a file, for decoding captures.

Emulation and debugging only (PROTOCOL.md §6.3). Like ``SSLKEYLOGFILE`` it is process-wide:
a command line calls ``enable`` once at start-up, and the connection driver
(``shell.driver``) calls ``record`` with the keys of each session that comes up, on
either side and any transport. Anyone who reads the file reads those sessions, so:

- every use warns (one line on stderr, through the logger ``shell.keylog``);
- the file is opened ``O_APPEND | O_CREAT`` with mode 0600, and an existing file that
  group or others may read or write is refused, as is one another user owns, a symlink
  (``O_NOFOLLOW``) and anything not a regular file (``O_NONBLOCK``: a FIFO never blocks);
- a real radio needs ``--keylog-real-radio`` too (``check_radio``), since its captures
  are of real air.

Each line is one ``os.write`` of a line under 300 bytes to an ``O_APPEND`` file, so the
car and a phone may share one file without tearing lines.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from protocol.capture.keylog import format_line
from protocol.session import SessionSecrets
from shell.errors import KeyLogError
from shell.radio import is_emulated

__all__ = ["KEYLOG_ENV", "KeyLogFile", "check_radio", "disable", "enable", "record"]

log = logging.getLogger("shell.keylog")
# The environment variable a command line takes --keylog from (typer's envvar).
KEYLOG_ENV = "CARHUB_KEYLOG"
_MODE = 0o600


class KeyLogFile:
    """An open key log: one line per session, appended.

    Args:
        path: the file; created 0600 if missing.

    Raises:
        KeyLogError: it cannot be opened, is not a regular file, is a symlink, or others
            may read or write it (its mode is wider than 0600).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of blocking the
        # start-up forever; on a regular file it changes nothing.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        flags |= os.O_NONBLOCK
        try:
            self._fd = os.open(path, flags, _MODE)
        except OSError as exc:
            raise KeyLogError(f"cannot open the key log {path}: {exc.strerror}") from exc
        info = os.fstat(self._fd)
        what = ""
        if not stat.S_ISREG(info.st_mode):
            what = "not a regular file"
        elif info.st_uid != os.geteuid():  # its owner could read the keys, whatever its mode
            what = f"owned by uid {info.st_uid}, not by us"
        elif info.st_mode & 0o077:
            what = (f"mode {stat.S_IMODE(info.st_mode):04o}; others could read the keys "
                    f"(chmod 600 it)")  # fmt: skip
        if what:
            os.close(self._fd)
            raise KeyLogError(f"refusing the key log {path}: {what}")

    def write(self, secrets: SessionSecrets) -> None:
        """Append the session's line; a failed write is logged, never raised."""
        try:
            os.write(self._fd, format_line(secrets).encode("ascii"))
        except OSError as exc:
            log.error("cannot write the key log %s: %s", self.path, exc.strerror)

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


_active: KeyLogFile | None = None


def check_radio(radio: str | None, allow_real_radio: bool) -> None:
    """Refuse a key log on a real radio unless the user said ``--keylog-real-radio``.

    Args:
        radio: the Bumble transport (``--hci``, ``--radio``), or None when there is none.
        allow_real_radio: ``--keylog-real-radio`` was given.

    Raises:
        KeyLogError: a radio that is not the emulated one, without the consent.
    """
    if radio is not None and not is_emulated(radio) and not allow_real_radio:
        raise KeyLogError(
            f"--keylog is for emulation: refused with the real radio {radio} "
            "(add --keylog-real-radio to log the keys of real air)"
        )


def enable(path: Path) -> KeyLogFile:
    """Open ``path`` and log every session's keys to it from now on, warning once.

    Raises:
        KeyLogError: see ``KeyLogFile``.
    """
    global _active
    opened = KeyLogFile(path)
    if _active is not None:
        _active.close()
    _active = opened
    log.warning("KEY LOG IS ON: session keys are written to %s (debugging only)", path)
    return opened


def disable() -> None:
    """Stop logging keys and close the file (tests)."""
    global _active
    if _active is not None:
        _active.close()
    _active = None


def record(secrets: SessionSecrets | None) -> None:
    """Append one session's keys, if a key log is on (the driver calls it)."""
    if _active is not None and secrets is not None:
        _active.write(secrets)
