"""The one transport seam, like httpx's ``BaseTransport`` and bleak's backends.

A transport moves stream bytes (length-prefixed frames, ``protocol.framing``) to and from
one peer and nothing else. Every link, whichever side opened it and whatever carries it
(a WebSocket on the LAN, a BLE GATT channel), is a ``BaseTransport``; the protocol runs over
it unchanged, so every flow works over either.
"""

from __future__ import annotations

import abc

from shell.errors import TransportError

__all__ = ["BaseTransport", "TransportError"]


class BaseTransport(abc.ABC):
    """One open link to one peer.

    Attributes:
        name: what carries it, as the API and logs show it: ``"lan"`` or ``"ble"``.
        peer: where the other end is: ``host:port`` on the LAN, a BLE address.
    """

    name: str = ""
    peer: str = "?"

    @abc.abstractmethod
    async def send(self, data: bytes) -> None:
        """Send stream bytes.

        Raises:
            TransportError: the link is gone.
        """

    @abc.abstractmethod
    async def recv(self) -> bytes:
        """Return the next chunk of stream bytes.

        Raises:
            TransportError: the link ended (closed by either side, or lost).
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the link (idempotent)."""

    def session_established(self) -> None:  # noqa: B027 (a hook: most links have no limits)
        """Lift the pre-session limits (PROTOCOL.md §3.2): the peer is authenticated now.

        The driver calls it when the connection reports ``SessionEstablished``, before it
        writes what followed, so the peer cannot send a large message any earlier.
        """
