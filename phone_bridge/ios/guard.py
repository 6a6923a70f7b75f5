"""Which links may touch AMS and ANCS: encrypted with an authenticated (MITM) key only.

An iPhone answers every ATT access to AMS and ANCS (reads, writes and CCCD
subscriptions) with Insufficient Authentication (0x05) until the link is encrypted with
a key from LE Secure Connections numeric comparison; that error is the accessory's cue to
send a Security Request. Bumble's GATT server does enforce ``READ/WRITE_REQUIRES_
AUTHENTICATION`` on a characteristic, but (0.0.236) it treats *any* LE encryption as
authenticated, Just Works included, and the CCCD it adds by itself carries no permission
at all. So the guard tracks MITM-authenticated links itself and wraps both the values and
each CCCD.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bumble import att, gatt
from bumble.gatt_server import Server

__all__ = ["LinkGuard"]

Read = Callable[[Any], bytes | Awaitable[bytes]]
Write = Callable[[Any, bytes], Awaitable[None] | None]
_PERMS = (
    gatt.Characteristic.READABLE
    | gatt.Characteristic.WRITEABLE
    | gatt.Characteristic.READ_REQUIRES_AUTHENTICATION
    | gatt.Characteristic.WRITE_REQUIRES_AUTHENTICATION
)


def _connection_of(bearer: Any) -> Any:
    return bearer.connection if att.is_enhanced_bearer(bearer) else bearer


class LinkGuard:
    """The set of links encrypted with an authenticated key, and ATT values that check it."""

    PERMISSIONS = _PERMS

    def __init__(self) -> None:
        self._secure: set[int] = set()

    def secure(self, connection: Any) -> None:
        """Mark ``connection`` as encrypted with a MITM-authenticated key."""
        self._secure.add(connection.handle)

    def forget(self, connection: Any) -> None:
        """Forget ``connection`` (it disconnected; its handle may be reused)."""
        self._secure.discard(connection.handle)

    def is_secure(self, connection: Any) -> bool:
        """Whether ``connection`` may use AMS and ANCS now."""
        return bool(connection.encryption) and connection.handle in self._secure

    def check(self, connection: Any) -> None:
        """Raise the ATT error an iPhone answers with on a link that is not secure yet.

        Raises:
            bumble.att.ATT_Error: Insufficient Authentication (0x05).
        """
        if not self.is_secure(connection):
            raise att.ATT_Error(att.ATT_INSUFFICIENT_AUTHENTICATION_ERROR)

    def value(self, read: Read | None = None, write: Write | None = None) -> Any:
        """A ``CharacteristicValue`` that refuses insecure links, then calls ``read``/``write``."""

        def guarded_read(connection: Any) -> Any:
            self.check(connection)
            return read(connection) if read is not None else b""

        def guarded_write(connection: Any, value: bytes) -> Any:
            self.check(connection)
            return write(connection, value) if write is not None else None

        return gatt.CharacteristicValue(read=guarded_read, write=guarded_write)

    def cccd(self, characteristic: gatt.Characteristic[Any]) -> None:
        """Give ``characteristic`` a CCCD that refuses insecure links (before ``add_service``).

        The server then keeps it instead of adding its own unguarded one. It stores the
        state in the GATT server of the link's device, whichever that is now: the same
        characteristic serves a fresh ``Device`` after the radio restarts.
        """

        def server_of(bearer: Any) -> Server:
            return _connection_of(bearer).device.gatt_server  # type: ignore[no-any-return]

        def read(bearer: Any) -> Any:
            self.check(_connection_of(bearer))
            return server_of(bearer).read_cccd(bearer, characteristic)

        def write(bearer: Any, value: bytes) -> Any:
            self.check(_connection_of(bearer))
            return server_of(bearer).write_cccd(bearer, characteristic, value)

        characteristic.descriptors = [
            *characteristic.descriptors,
            gatt.Descriptor(
                gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                _PERMS,
                att.AttributeValueV2(read, write=write),
            ),
        ]
