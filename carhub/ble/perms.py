"""The ATT errors the car's GATT values send for a disallowed read or write.

Bumble's GATT server does not enforce attribute permissions, so every value has both
callbacks and the disallowed one raises what a real stack would send.
"""

from __future__ import annotations

from bumble.att import ATT_Error, ErrorCode
from bumble.device import Connection

__all__ = ["deny_read", "deny_write"]


def deny_read(_connection: Connection) -> bytes:
    """Refuse a read the characteristic does not allow."""
    raise ATT_Error(ErrorCode.READ_NOT_PERMITTED)


def deny_write(_connection: Connection, _value: bytes) -> None:
    """Refuse a write the characteristic does not allow."""
    raise ATT_Error(ErrorCode.WRITE_NOT_PERMITTED)
