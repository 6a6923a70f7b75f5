"""The car shell's error tree: one root, carrying the exit code ``carhub`` ends with.

    CarhubError             exit 1: a runtime failure; the root of every carhub error
    ├── UsageError          exit 2: bad usage or configuration (an option's value, an
    │                       unusable key file, a name zeroconf or BLE cannot carry)
    ├── StartError          exit 1: a part of the car cannot start (a port is taken, the
    │                       radio cannot be reached)
    ├── StoreError          exit 1: the SQLite store cannot complete an operation
    │                       (defined in ``carhub.store``)
    └── NoPhoneError        exit 1: a media command while no phone is connected
                            (defined in ``carhub.engine``; the REST API answers 409)

Exit 0 is a clean stop (Ctrl-C, SIGTERM). The errors the car meets from elsewhere,
``shell.errors`` (``KeyFileError``, ``TransportError``), ``radio.RadioUnavailableError``,
``OSError`` and ``protocol.errors.ProtocolError``, are translated onto this tree in one
place: the table in ``carhub.cli``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "CarhubError", "StartError", "UsageError"]

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CarhubError(Exception):
    """Root of the car shell's errors; ``exit_code`` is what ``carhub`` exits with."""

    exit_code: ClassVar[int] = EXIT_FAILURE


class UsageError(CarhubError):
    """Bad usage or configuration: nothing the car could do differently at run time."""

    exit_code: ClassVar[int] = EXIT_USAGE


class StartError(CarhubError):
    """A part of the car cannot start (a port is taken, the radio cannot be reached)."""
