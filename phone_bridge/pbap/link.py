"""The emulated phones' Classic link to a car: find its BR/EDR address, connect, and
authenticate as a phone does (the phone starts SSP numeric comparison when the user
taps the car in Settings). Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bumble import hci
from bumble.core import PhysicalTransport
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.pairing import PairingConfig

from phone_bridge.ios.pairing import NumericComparison
from phone_bridge.ios.scan import short_id
from protocol.errors import MessageError
from protocol.gatt import INFO_UUID, SERVICE_UUID, decode_info

__all__ = [
    "classic_after_le",
    "classic_pairing_config",
    "connect_classic",
    "find_car_classic",
]

log = logging.getLogger("phone_bridge.pbap")

CONNECT_TIMEOUT_S = 10.0
PAIRING_TIMEOUT_S = 120.0  # a human compares the code
SCAN_TIMEOUT_S = 30.0
GATT_TIMEOUT_S = 10.0


def classic_pairing_config(delegate: NumericComparison) -> PairingConfig:
    """SSP with MITM and bonding; the delegate is DISPLAY_YES_NO (numeric comparison)."""
    return PairingConfig(sc=True, mitm=True, bonding=True, delegate=delegate)


async def connect_classic(device: Device, address: str) -> Connection:
    """Connect BR/EDR to ``address`` and authenticate (SSP numeric comparison).

    Raises:
        TimeoutError: no connection or no authentication in time.
        hci.HCI_Error: refused, or the pairing failed.
    """
    return await authenticate(await open_acl(device, address), address)


async def open_acl(device: Device, address: str) -> Connection:
    """Open a BR/EDR ACL to ``address``.

    Raises:
        TimeoutError: the car did not answer the page in time.
        hci.HCI_Error: the page failed (page timeout, refused).
    """
    peer = hci.Address(address, hci.Address.PUBLIC_DEVICE_ADDRESS)
    connection = await device.connect(
        peer, transport=PhysicalTransport.BR_EDR, timeout=CONNECT_TIMEOUT_S)
    log.info("Classic ACL to %s up: authenticating (the phone starts SSP)", address)
    return connection


async def authenticate(connection: Connection, address: str) -> Connection:
    """Authenticate an open ACL (SSP, or the stored link key); disconnect it on failure.

    Raises:
        TimeoutError: no authentication in time.
        hci.HCI_Error: the pairing failed or was refused.
    """
    try:
        await asyncio.wait_for(connection.authenticate(), PAIRING_TIMEOUT_S)
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.disconnect(), 2.0)
        raise
    log.info("Classic link to %s authenticated; encryption: %s", address,
             "on" if connection.encryption else "off (the virtual controller cannot encrypt)")
    return connection


def _classic_field(raw: bytes) -> str | None:
    """The car's Classic address from its GATT info; None when it has none or is malformed."""
    try:
        return decode_info(raw).classic
    except MessageError as exc:
        log.info("the car's GATT info is malformed: %s", exc)
        return None


async def find_car_classic(device: Device) -> str:
    """Scan LE for a CarHub car, read its GATT info's "classic" address, disconnect.

    Raises:
        TimeoutError: no car, or no answer, in time.
        LookupError: the car's info has no (valid) "classic" field.
    """
    found: asyncio.Future[hci.Address] = asyncio.get_running_loop().create_future()

    def on_advertisement(adv: Advertisement) -> None:
        if not found.done() and adv.is_connectable and short_id(adv.data):
            found.set_result(adv.address)

    device.on(Device.EVENT_ADVERTISEMENT, on_advertisement)
    try:
        await device.start_scanning()
        address = await asyncio.wait_for(found, SCAN_TIMEOUT_S)
    finally:
        device.remove_listener(Device.EVENT_ADVERTISEMENT, on_advertisement)
        with contextlib.suppress(Exception):
            await device.stop_scanning()
    log.info("car found over LE at %s: reading its Classic address", address)
    connection = await device.connect(address, timeout=CONNECT_TIMEOUT_S)
    try:
        raw = await asyncio.wait_for(_read_info(connection), GATT_TIMEOUT_S)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.disconnect(), 2.0)
    classic = _classic_field(raw)
    if classic is None:
        raise LookupError(f"the car at {address} gives no Classic address in its GATT info")
    return classic


async def _read_info(connection: Connection) -> bytes:
    peer = Peer(connection)
    services = await peer.discover_service(SERVICE_UUID)
    for service in services:
        for characteristic in await peer.discover_characteristics([INFO_UUID], service):
            return bytes(await characteristic.read_value())
    raise LookupError("the car has no CarHub info characteristic")


async def classic_after_le(device: Device, le_connection: Connection) -> str | None:
    """After an LE bond: read the car's "classic" address over the LE link, connect and
    authenticate over BR/EDR, as an iPhone pairs the car's Classic side too.

    Returns:
        The car's Classic address once authenticated, or None (logged: no field, timeout,
        refused). Never raises but for cancellation.
    """
    try:
        car = _classic_field(await asyncio.wait_for(_read_info(le_connection), GATT_TIMEOUT_S))
        if car is None:
            log.info("the car's GATT info gives no Classic address: PBAP waits for the car")
            return None
        await connect_classic(device, car)
    except (hci.HCI_Error, TimeoutError, LookupError, ConnectionError, AttributeError) as exc:
        log.info("no Classic link to the car (%s): PBAP waits for the car", exc)
        return None
    return car
