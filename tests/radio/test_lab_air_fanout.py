"""The air gives an advertisement only to controllers that can use it (issue 13: a lab of
50 advertising cars and 50 idle phones on one radio).

A controller does something with ``ADV_IND`` / ``ADV_EXT_IND`` only while it scans, is
connecting, or syncs; ``CONNECT_IND`` is for whoever advertises, so it still reaches all.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bumble import hci, ll

from radio.air import AirController, LocalRadio


class HostSink:
    """What a host would read from its controller: every HCI packet, in order."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def on_packet(self, packet: bytes) -> None:
        self.packets.append(bytes(packet))


async def settle() -> None:
    """Let the link's and the controllers' ``call_soon`` deliveries run."""
    for _ in range(3):
        await asyncio.sleep(0)


def counting(controller: AirController) -> list[Any]:
    """Record the advertising PDUs the link hands ``controller`` (then let it handle them)."""
    seen: list[Any] = []
    handle = controller.on_ll_advertising_pdu

    def on_pdu(packet: Any) -> None:
        seen.append(packet)
        handle(packet)

    controller.on_ll_advertising_pdu = on_pdu  # type: ignore[method-assign]
    return seen


async def test_adverts_reach_scanners_and_connectors_only() -> None:
    radio = LocalRadio()
    car, scanner, idle, connector = (radio.controller(n) for n in ("car", "s", "i", "c"))
    seen = {c: counting(c) for c in (scanner, idle, connector)}
    host = HostSink()
    scanner.host = host
    scanner.le_scan_enable = True
    # Connecting to someone else: it still has to hear every advertiser to find its peer.
    connector.pending_le_connection = SimpleNamespace(peer_address=hci.Address("00:CA:48:FF:FF:FF"))
    advert = ll.AdvInd(advertiser_address=car.public_address, data=b"\x02\x01\x06")
    for _ in range(5):
        radio.link.send_advertising_pdu(car, advert)
    await settle()
    assert len(seen[scanner]) == 5 and len(seen[connector]) == 5
    assert seen[idle] == []  # an idle, connected phone pays nothing for them
    # The scanning host got its advertising reports (event code 0x3E: LE meta event).
    assert len(host.packets) == 5 and all(p[:2] == b"\x04\x3e" for p in host.packets)

    connector.pending_le_connection = None
    scanner.le_scan_enable = False
    idle.le_scan_enable = True  # starts scanning: from now on it hears the car
    radio.link.send_advertising_pdu(car, advert)
    await settle()
    assert (len(seen[scanner]), len(seen[idle]), len(seen[connector])) == (5, 1, 5)


async def test_a_connection_request_still_reaches_every_controller() -> None:
    radio = LocalRadio()
    phone, car, other = (radio.controller(n) for n in ("p", "car", "o"))
    seen = {c: counting(c) for c in (car, other)}
    request = ll.ConnectInd(
        initiator_address=phone.public_address,
        advertiser_address=car.public_address,
        interval=24,
        latency=0,
        timeout=72,
    )
    radio.link.send_advertising_pdu(phone, request)
    await settle()
    assert seen[car] == [request] and seen[other] == [request]
