"""The shared virtual "air": Bumble controllers on one link, each with its own address.

Theory of operation: Bumble's ``LocalLink`` delivers advertising PDUs and ACL data between
the ``Controller`` objects attached to it. ``LocalRadio`` owns one link and hands out
fresh controllers, each with a unique public address and Data Length Extension sized
ACL buffers (251 bytes; Bumble's default of 27 makes emulated GATT ~5x slower).

Bumble 0.0.236's virtual controller answers every active scan with the *advertising*
data as the scan response, so a name placed in the scan response (as real cars do, since
31 bytes of advertising data are full with the 128-bit service data) would never be
seen. ``AirController`` fixes that one thing: it reports the advertiser's real scan
response data, looked up on the link.

``LocalLink`` also labels LE data with the sender's *random* address, so a peripheral
that advertises with its public address (as a car with a real adapter does) would have
every ATT response dropped. ``AirLink`` labels it with the address the sender's
connection actually uses.

``LocalLink`` hands every advertisement to every other controller, although one does
something with it only while it scans, connects or syncs (Bumble's ``on_advertising_pdu``):
a lab of 50 cars advertising every 20-30 ms beside 50 connected, idle phones cost the radio
~250,000 callbacks a second for nothing. ``AirLink`` delivers advertisements to those
controllers only; a connection request (``CONNECT_IND``) still reaches everyone.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from bumble import hci, ll
from bumble.controller import Controller
from bumble.core import PhysicalTransport
from bumble.link import LocalLink

from radio.bdaddr import AddressWriter
from radio.classic import end_classic_links
from radio.linkkey import LinkKeyController

__all__ = [
    "BR_EDR_ACL_LENGTH",
    "DLE_ACL_LENGTH",
    "AirController",
    "AirLink",
    "LocalRadio",
    "address_for",
]

log = logging.getLogger(__name__)

DLE_ACL_LENGTH = 251
# BR/EDR ACL buffers sized for a 3-DH5 packet, as real dual-mode controllers report (Bumble's
# default of 27 made an emulated PBAP pull of 5,000 contacts several times slower).
BR_EDR_ACL_LENGTH = 1021
# 00:CA:48 looks like an OUI but its two top bits are 00, so nobody mistakes these
# public addresses for random static ones (top bits 11).
_ADDRESS_PREFIX = (0x00, 0xCA, 0x48)

_ExtReport = hci.HCI_LE_Extended_Advertising_Report_Event
_LegacyReport = hci.HCI_LE_Advertising_Report_Event


def address_for(index: int) -> str:
    """Return the public BD address of the ``index``-th controller (1..2**24-1)."""
    tail = index.to_bytes(3, "big")
    return ":".join(f"{b:02X}" for b in (*_ADDRESS_PREFIX, *tail))


class AirController(LinkKeyController, AddressWriter):
    """A Bumble virtual controller whose scan responses carry the real scan response.

    Its Classic side survives departed peers (``radio.classic``) and authenticates with
    the hosts' stored link keys before SSP (``radio.linkkey``).
    """

    def on_advertising_pdu(self, pdu: Any) -> None:
        """Handle an advertising PDU from the link; report adv data and scan response."""
        scanning = self.le_scan_enable
        # Let Bumble do syncs and pending connections, but report ourselves.
        self.le_scan_enable = False
        try:
            super().on_advertising_pdu(pdu)
        finally:
            self.le_scan_enable = scanning
        if scanning:
            self._report(pdu.advertiser_address, bytes(pdu.data), self._scan_response(pdu))

    def on_hci_le_create_connection_cancel_command(self, command: Any) -> Any:
        """Cancel a pending connection and report it, as a real controller does.

        Bumble's virtual controller only acknowledges the cancel, so a host whose connect
        timed out waits forever for the connection-complete event that ends it.
        """
        result = super().on_hci_le_create_connection_cancel_command(command)
        if self.pending_le_connection is not None:
            self.pending_le_connection = None
            event = hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=0,
                peer_address=hci.Address.ANY,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
            # After the Command Complete that the caller is about to send.
            asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
        return result

    def _scan_response(self, pdu: Any) -> bytes:
        """Find the scan response data of the controller that sent ``pdu``."""
        address = pdu.advertiser_address
        for other in self.link.controllers:
            legacy = other.le_legacy_advertiser
            if legacy.enabled and legacy.address == address:
                return bytes(legacy.scan_response_data)
            for adv_set in other.advertising_sets.values():
                if adv_set.enabled and adv_set.address == address:
                    return bytes(adv_set.scan_response_data)
        return b""

    def _report(self, address: hci.Address, data: bytes, scan_rsp: bytes) -> None:
        """Send the advertising report and, if scannable, the scan response report."""
        if self.le_features & hci.LeFeatureMask.LE_EXTENDED_ADVERTISING:
            kind = _ExtReport.EventType
            adv_type = kind.CONNECTABLE_ADVERTISING | kind.LEGACY_ADVERTISING_PDU_USED
            if scan_rsp:
                adv_type |= kind.SCANNABLE_ADVERTISING
            self._send_ext(address, adv_type, data)
            if scan_rsp:
                rsp_type = adv_type | kind.SCAN_RESPONSE
                self._send_ext(address, rsp_type, scan_rsp)
            return
        legacy = _LegacyReport.EventType
        self._send_legacy(address, legacy.ADV_IND, data)
        if scan_rsp:
            self._send_legacy(address, legacy.SCAN_RSP, scan_rsp)

    def _send_ext(self, address: hci.Address, event_type: int, data: bytes) -> None:
        """Send one extended advertising report event."""
        report = _ExtReport.Report(
            event_type=event_type,
            address_type=address.address_type,
            address=address,
            primary_phy=hci.Phy.LE_1M,
            secondary_phy=0,
            advertising_sid=0,
            tx_power=0,
            rssi=-50,
            periodic_advertising_interval=0,
            direct_address_type=0,
            direct_address=hci.Address.ANY,
            data=data,
        )
        self.send_hci_packet(_ExtReport([report]))

    def _send_legacy(self, address: hci.Address, event_type: int, data: bytes) -> None:
        """Send one legacy advertising report event."""
        report = _LegacyReport.Report(
            event_type=event_type,
            address_type=address.address_type,
            address=address,
            data=data,
            rssi=-50,
        )
        self.send_hci_packet(_LegacyReport([report]))


class AirLink(LocalLink):
    """A ``LocalLink`` that sources LE data from the connection's own address, and gives
    advertisements only to the controllers that listen."""

    def send_advertising_pdu(self, sender_controller: Controller, packet: Any) -> None:
        """Deliver an advertising PDU to every other controller that can use it."""
        adverts = isinstance(packet, ll.AdvInd | ll.AdvExtInd)
        loop = asyncio.get_running_loop()
        for controller in self.controllers:
            if controller is not sender_controller and (not adverts or _listens(controller)):
                loop.call_soon(controller.on_ll_advertising_pdu, packet)

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: PhysicalTransport,
        data: bytes,
    ) -> None:
        """Deliver ACL data to the controller that owns ``destination_address``."""
        connection = None
        if transport == PhysicalTransport.LE:
            connection = sender_controller.le_connections.get(destination_address)
        receiver = self.find_le_controller(destination_address) if connection else None
        if connection is None or receiver is None:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        source = connection.self_address
        asyncio.get_running_loop().call_soon(
            receiver.on_link_acl_data, source, transport, data
        )


class LocalRadio:
    """One virtual air in this process: a ``LocalLink`` and a controller factory.

    Pass it where a transport string is expected (``BleCarServer(hci=radio)``,
    ``BumbleRadio(radio)``) to run cars and phones in one event loop with no sockets.
    """

    def __init__(self) -> None:
        # LocalLink.__init__ has no annotations in Bumble, so mypy cannot see it is typed.
        self.link = AirLink()  # type: ignore[no-untyped-call]
        self._counter = itertools.count(1)

    def controller(self, name: str = "") -> AirController:
        """Attach and return a fresh controller with a unique public address.

        Must be called with a running event loop (Bumble creates a future).
        """
        index = next(self._counter)
        address = hci.Address(address_for(index), hci.Address.PUBLIC_DEVICE_ADDRESS)
        controller = AirController(name or f"C{index}", link=self.link, public_address=address)
        controller.le_acl_data_packet_length = DLE_ACL_LENGTH
        controller.acl_data_packet_length = BR_EDR_ACL_LENGTH
        return controller

    def remove(self, controller: AirController) -> None:
        """Detach ``controller``: end its LE and BR/EDR connections (peers see 0x13), stop
        advertising."""
        reason = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
        end_classic_links(self.link, controller, reason)
        for connection in list(controller.le_connections.values()):
            peer = self.link.find_le_controller(connection.peer_address)
            if peer is not None:
                for peer_conn in list(peer.le_connections.values()):
                    if peer_conn.peer_address == connection.self_address:
                        peer.on_le_disconnected(peer_conn, reason)
        controller.le_connections.clear()
        controller.le_legacy_advertiser.stop()
        for adv_set in controller.advertising_sets.values():
            adv_set.stop()
        controller.le_scan_enable = False
        controller.host = None
        if controller in self.link.controllers:
            self.link.remove_controller(controller)


def _listens(controller: Controller) -> bool:
    """Whether an advertisement can matter to ``controller`` now: it scans, is connecting
    (its pending connection completes on the peer's advertisement) or syncs with one."""
    return bool(
        controller.le_scan_enable
        or controller.pending_le_connection is not None
        or controller.pending_periodic_advertising_syncs
        or controller.established_periodic_advertising_syncs
    )
