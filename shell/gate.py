"""Carry out ``protocol.intake``: count each new link, close the ones it displaces.

Every transport's server (the WebSocket endpoint, the BLE GATT server) calls ``enter`` the
moment a peer connects, before it reads a byte, with a way to close that connection; and
it calls the returned ``leave`` once the secure session is up or the connection ended,
whichever comes first. The intake decides which older connections go; the gate closes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocol.intake import ConnectionIntake

__all__ = ["IntakeGate", "Leave", "stay"]

log = logging.getLogger("shell.gate")

Leave = Callable[[], None]
"""Stop counting a connection (idempotent)."""


class IntakeGate:
    """The car's one gate for unauthenticated connections, shared by every transport.

    Args:
        intake: the policy; a default ``ConnectionIntake`` if None.
    """

    def __init__(self, intake: ConnectionIntake | None = None) -> None:
        self.intake = intake or ConnectionIntake()
        self._closers: dict[int, Callable[[], None]] = {}

    def enter(self, peer: str, close: Callable[[], None]) -> Leave:
        """Count a new connection from ``peer``, closing what it displaces.

        Args:
            peer: the peer's address (a LAN host without its port, a BLE address).
            close: closes this connection now, without waiting (it may be displaced later).

        Returns:
            ``leave``: call it once the session is up or the connection ended.
        """
        admitted = self.intake.admit(peer)
        for ticket in admitted.evict:
            closer = self._closers.pop(ticket, None)
            if closer is not None:
                log.debug("closing an older unauthenticated connection to admit one from %s", peer)
                closer()
        ticket = admitted.ticket
        self._closers[ticket] = close

        def leave() -> None:
            self._closers.pop(ticket, None)
            self.intake.release(ticket)

        return leave


def stay() -> None:
    """The ``leave`` of a connection that no gate counts."""
