"""The phone's BLE side: bleak everywhere, on Bumble when the radio is emulated."""

from phone_bridge.ble.backend import BumbleClient, BumbleRadio, BumbleScanner, bleak_backends
from phone_bridge.ble.scanner import BleCar, scan_cars
from phone_bridge.ble.transport import BleTransport

__all__ = [
    "BleCar",
    "BleTransport",
    "BumbleClient",
    "BumbleRadio",
    "BumbleScanner",
    "bleak_backends",
    "scan_cars",
]
