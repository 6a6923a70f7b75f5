"""BR/EDR (Classic) fixes for Bumble's virtual controller: departures and stored link keys.

Theory of operation, departures: Bumble 0.0.236 keeps a controller's Classic ACLs in
``classic_connections`` (keyed by the peer's public address; handle 0 while the page is
still being answered) and its SCO links in ``sco_links``. Nothing ends them when a
controller leaves the link, so a killed phone left a stale ACL on the car forever.
``end_classic_links`` gives each peer's host what a real controller reports when the
remote goes silent: Disconnection Complete for a live link, Connection Complete with an
error for one still being set up. ``ClassicController.send_lmp_packet`` answers LMP sent
to an address that is not on the air (a peer that just left, a phone that is off) the
way a real page does, with a timeout status, instead of Bumble's exception (which the
radio server would take for bad HCI and so drop the *sender*).

Link keys are in ``radio.linkkey``.
"""

from __future__ import annotations

import asyncio
import logging

from bumble import hci, lmp
from bumble.controller import Controller
from bumble.link import LocalLink

__all__ = ["ClassicController", "end_classic_links"]

log = logging.getLogger(__name__)

_Err = hci.HCI_ErrorCode


def end_classic_links(link: LocalLink, departing: Controller, reason: int) -> None:
    """End every BR/EDR link between ``departing`` and the other controllers on ``link``.

    Args:
        link: the air both are on (``departing`` may still be attached).
        departing: the controller leaving the air.
        reason: the disconnection reason the peers' hosts see (0x13 for a departed client).
    """
    gone = departing.public_address
    for other in list(link.controllers):
        if other is departing:
            continue
        # Futures of LMP requests to the departed would never resolve; their callbacks
        # would send more LMP to it. The events below replace them.
        other.classic_pending_commands.pop(gone, None)
        connection = other.classic_connections.get(gone)
        if connection is not None and connection.handle == 0:
            # Still paging or waiting for the host's accept: the setup fails.
            del other.classic_connections[gone]
            outgoing = connection.role == hci.Role.CENTRAL
            status = _Err.PAGE_TIMEOUT_ERROR if outgoing else _Err.CONNECTION_TIMEOUT_ERROR
            other.send_hci_packet(_connection_failed(gone, status))
        elif connection is not None:
            other.on_classic_disconnected(gone, reason)
        if gone in other.sco_links:
            other.on_classic_sco_disconnected(gone, reason)
    departing.classic_connections.clear()
    departing.sco_links.clear()
    departing.classic_pending_commands.clear()


def _connection_failed(address: hci.Address, status: int) -> hci.HCI_Connection_Complete_Event:
    """A Connection Complete event that reports a failed ACL setup."""
    return hci.HCI_Connection_Complete_Event(
        status=status,
        connection_handle=0,
        bd_addr=address,
        encryption_enabled=False,
        link_type=hci.HCI_Connection_Complete_Event.LinkType.ACL,
    )


class ClassicController(Controller):
    """A Bumble controller whose Classic side survives peers that leave the air."""

    def send_lmp_packet(
        self, receiver_address: hci.Address, packet: lmp.Packet
    ) -> asyncio.Future[int]:
        """Send an LMP PDU; to an absent receiver, resolve it as a timeout instead.

        Args:
            receiver_address: the peer's public address.
            packet: the LMP PDU.

        Returns:
            The future of the peer's LMP_accepted / LMP_not_accepted status.
        """
        if self.link is None or self.link.find_classic_controller(receiver_address) is not None:
            return super().send_lmp_packet(receiver_address, packet)
        log.info("LMP %s to %s: nobody there", type(packet).__name__, receiver_address)
        connecting = isinstance(packet, lmp.LmpHostConnectionReq)
        status = _Err.PAGE_TIMEOUT_ERROR if connecting else _Err.LMP_OR_LL_RESPONSE_TIMEOUT_ERROR
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(status)
        return future

    def on_classic_connection_complete(self, peer_address: hci.Address, status: int) -> None:
        """Report the end of an ACL setup; a failed one leaves no connection behind.

        Bumble keeps the half-made ``Connection`` (handle 0) after a failed page, so the
        next page to the same phone would find a ghost.
        """
        super().on_classic_connection_complete(peer_address, status)
        if status != _Err.SUCCESS:
            connection = self.classic_connections.get(peer_address)
            if connection is not None and connection.handle == 0:
                del self.classic_connections[peer_address]
