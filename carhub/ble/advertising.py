"""What the car puts on the air before a phone connects: advertising bytes and its address.

The advertising payload carries the flags and the CarHub service data (version, flags,
short id; ``protocol.gatt``); the scan response carries the car's name, shortened if it
does not fit. The address is a static random one derived from the device id.
"""

from __future__ import annotations

import hashlib

from bumble import hci
from bumble.core import UUID, AdvertisingData

from protocol.gatt import FLAG_PAIRING_OPEN, SERVICE_UUID, encode_service_data

__all__ = [
    "ADV_INTERVAL_MAX_MS",
    "ADV_INTERVAL_MIN_MS",
    "advertising_data",
    "plain_address",
    "scan_response_data",
    "static_address",
]

# 20-30 ms: fast discovery (Bumble's default of 1 s makes every scan slow); real head
# units use this "fast advertising" range while a pairing window is open.
ADV_INTERVAL_MIN_MS = 20
ADV_INTERVAL_MAX_MS = 30
_AD_FLAGS = bytes([0x06])  # LE General Discoverable, BR/EDR not supported
_MAX_AD = 31  # legacy advertising / scan response payload


def advertising_data(version: int, device_id: str, *, pairing_open: bool) -> bytes:
    """Return the advertising payload: flags and the CarHub service data.

    Args:
        version: the protocol version the car speaks.
        device_id: the 16-hex-digit device id; its first 8 digits are the short id.
        pairing_open: whether the pairing window is open (a flag in the service data).
    """
    flags = FLAG_PAIRING_OPEN if pairing_open else 0
    service_data = encode_service_data(version, flags, device_id)
    return bytes(
        AdvertisingData(
            [
                (AdvertisingData.FLAGS, _AD_FLAGS),
                (
                    AdvertisingData.SERVICE_DATA_128_BIT_UUID,
                    UUID(SERVICE_UUID).to_bytes() + service_data,
                ),
            ]
        )
    )


def scan_response_data(name: str) -> bytes:
    """Return the scan response: ``name``, shortened if it does not fit."""
    raw = name.encode()
    kind = AdvertisingData.COMPLETE_LOCAL_NAME
    if len(raw) > _MAX_AD - 2:
        raw = raw[: _MAX_AD - 2].decode(errors="ignore").encode()
        kind = AdvertisingData.SHORTENED_LOCAL_NAME
    return bytes(AdvertisingData([(kind, raw)]))


def static_address(device_id: str) -> hci.Address:
    """Return a static random address (top two bits 11) derived from ``device_id``."""
    raw = bytearray(hashlib.sha256(device_id.encode()).digest()[:6])
    raw[0] |= 0xC0
    text = ":".join(f"{b:02X}" for b in raw)
    return hci.Address(text, hci.Address.RANDOM_DEVICE_ADDRESS)


def plain_address(address: hci.Address) -> str:
    """Return ``AA:BB:CC:DD:EE:FF`` without Bumble's ``/P`` type suffix."""
    return str(address).split("/")[0]
