"""Find cars over BLE with bleak: the CarHub service data says who and whether pairing is open.

The car's advertising data holds its name (shortened past 8 bytes) beside an ANCS
solicitation, and its scan response the CarHub service data under the 32-bit UUID
0x8d3e0001 (PROTOCOL.md §1.2): the scan is active, and bleak (like the Bumble backend)
merges the two PDUs into one ``AdvertisementData``.
"""

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
from protocol.gatt import decode_service_data
from radio.hci import HciSpec

__all__ = ["BleCar", "scan_cars"]

log = logging.getLogger(__name__)

# bleak keys service data by the 128-bit form of its UUID: 0x8d3e0001 on the Bluetooth base.
SERVICE_DATA_KEY = "8d3e0001-0000-1000-8000-00805f9b34fb"
# The most name bytes that fit in the car's advertising data (§1.2).
MAX_NAME_BYTES = 8


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
        name_complete: False when the car sent a Shortened Local Name (``name`` is then
            a prefix of its name).
    """

    id_prefix: str
    name: str
    address: str
    version: int
    pairing_open: bool
    rssi: int
    name_complete: bool = True


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
    # The scan must be active: the service data is in the scan response.
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
    raw = adv.service_data.get(SERVICE_DATA_KEY)
    if raw is None:
        return None
    try:
        data = decode_service_data(raw)
    except MessageError as exc:
        log.warning("ignoring %s: %s", device.address, exc)
        return None
    name = adv.local_name or device.name or (previous.name if previous else "")
    name = name if name != device.address.replace(":", "-") else ""
    return BleCar(
        id_prefix=data.short_id,
        name=name,
        address=device.address,
        version=data.version,
        pairing_open=data.pairing_open,
        rssi=adv.rssi,
        name_complete=not _shortened(adv, name),
    )


def _shortened(adv: AdvertisementData, name: str) -> bool:
    """Whether ``name`` came as a Shortened Local Name (0x08).

    bleak does not say which kind it read; the Bumble backend keeps its advertisement in
    ``platform_data``, and on other platforms a name of exactly the 8 bytes left beside
    the ANCS solicitation is taken as shortened (a prefix match is then allowed).
    """
    for item in adv.platform_data:
        data = getattr(item, "data", None)
        get = getattr(data, "get", None)
        if get is not None:
            return get(0x09) is None and get(0x08) is not None
    return len(name.encode()) == MAX_NAME_BYTES
