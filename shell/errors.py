"""The shared shell's error tree.

    ShellError              a failure of the shared I/O layer
    ├── TransportError      the peer cannot be reached, or the link to it was lost
    │                       (also a ``ConnectionError``, as asyncio code expects)
    ├── KeyFileError        a device key file exists but cannot be used
    └── KeyLogError         ``--keylog`` refused: an unsafe file, or a real radio

``protocol.errors.ProtocolError`` is the other tree a shell meets: what the peer or our own
use of the protocol got wrong. Each shell maps both onto its own root error and exit code.
"""

from __future__ import annotations

__all__ = ["KeyFileError", "KeyLogError", "ShellError", "TransportError"]


class ShellError(Exception):
    """Root of the errors the shared shell raises."""


class TransportError(ShellError, ConnectionError):
    """The peer cannot be reached, or the link to it was lost."""


class KeyFileError(ShellError):
    """A key file exists but cannot be used (wrong size, wrong mode, unreadable)."""


class KeyLogError(ShellError):
    """A key log cannot be used: unsafe mode, not a file, or a real radio without consent."""
