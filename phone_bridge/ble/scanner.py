"""Find cars over BLE with bleak: the CarHub service data says who and whether pairing is open."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from phone_bridge.ble.backend import BumbleRadio, bleak_backends
from protocol.errors import MessageError
from protocol.gatt import SERVICE_UUID, decode_service_data
from radio.hci import HciSpec

__all__ = ["BleCar", "scan_cars"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BleCar:
    """A car heard over BLE.

    Attributes:
        id_prefix: the first 8 hex digits of the car's device id.
        name: the advertised name ("" if no scan response was heard).
        address: the BD address to connect to (a UUID on macOS).
        version: the protocol version it advertises.
        pairing_open: whether its pairing window is open.
        rssi: signal strength of the last advertisement, dBm.
    """

    id_prefix: str
    name: str
    address: str
    version: int
    pairing_open: bool
    rssi: int


async def scan_cars(
    timeout: float,
    radio: HciSpec | BumbleRadio | None = None,
    stop_when: Callable[[BleCar], bool] | None = None,
) -> list[BleCar]:
    """Scan for ``timeout`` seconds and return the cars heard, strongest first.

    Args:
        timeout: how long to listen, in seconds.
        radio: ``None`` for the platform's Bluetooth (bleak), or a Bumble transport
            string / ``LocalRadio`` / ``BumbleRadio`` for an emulated radio.
        stop_when: stop early once a car for which this returns True is heard.

    Returns:
        One ``BleCar`` per address. Advertisements with malformed CarHub service data
        are logged and skipped.

    Raises:
        radio.RadioUnavailableError: an emulated radio could not be reached.
    """
    owned = None if radio is None or isinstance(radio, BumbleRadio) else BumbleRadio(radio)
    scanner_cls, _ = bleak_backends(owned or radio)
    found: dict[str, BleCar] = {}
    enough = asyncio.Event()

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        car = _car_from(device, adv, found.get(device.address))
        if car is not None:
            found[device.address] = car
            if stop_when is not None and stop_when(car):
                enough.set()

    # No service_uuids filter for bleak: CoreBluetooth only matches UUIDs listed in
    # the advertisement, and ours is in the service data (31 bytes leave no room for both).
    try:
        async with BleakScanner(on_advertisement, backend=scanner_cls):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(enough.wait(), timeout)
    finally:
        if owned is not None:
            await owned.close()
    return sorted(found.values(), key=lambda car: -car.rssi)


def _car_from(device: BLEDevice, adv: AdvertisementData, previous: BleCar | None) -> BleCar | None:
    """Build a ``BleCar`` from an advertisement, keeping a name heard earlier."""
    raw = adv.service_data.get(SERVICE_UUID)
    if raw is None:
        return None
    try:
        data = decode_service_data(raw)
    except MessageError as exc:
        log.warning("ignoring %s: %s", device.address, exc)
        return None
    name = adv.local_name or device.name or (previous.name if previous else "")
    return BleCar(
        id_prefix=data.short_id,
        name=name if name != device.address.replace(":", "-") else "",
        address=device.address,
        version=data.version,
        pairing_open=data.pairing_open,
        rssi=adv.rssi,
    )
