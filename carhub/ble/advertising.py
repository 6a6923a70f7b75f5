"""What the car puts on the air before a phone connects: advertising bytes and its address.

Two 128-bit Service Solicitation UUIDs (ANCS and AMS, 18 bytes each) never fit one legacy
31-byte PDU, and a real controller refuses longer data (Bumble's virtual one does not), so
the car splits them (PROTOCOL.md §1.2):

    advertising data   Flags | ANCS solicitation (0x15) | name (0x09 complete, or 0x08
                       shortened at a UTF-8 boundary to the 8 bytes left)
    scan response      AMS solicitation (0x15) | CarHub Service Data, 32-bit UUID
                       0x8d3e0001 (0x20): version, flags, short id (``protocol.gatt``)

The ANCS solicitation is what makes an iPhone list the car in Settings › Bluetooth; a
CarHub phone scans actively and reads the service data from the scan response. The
address is a static random one derived from the device id.
"""

from __future__ import annotations

import hashlib
import struct

from bumble import hci
from bumble.core import UUID, AdvertisingData

from protocol.gatt import FLAG_PAIRING_OPEN, encode_service_data

__all__ = [
    "ADV_INTERVAL_MAX_MS",
    "ADV_INTERVAL_MIN_MS",
    "AMS_SOLICITATION_UUID",
    "ANCS_SOLICITATION_UUID",
    "MAX_AD",
    "SERVICE_DATA_UUID32",
    "advertising_data",
    "plain_address",
    "scan_response_data",
    "static_address",
]

# 20-30 ms: fast discovery (Bumble's default of 1 s makes every scan slow); real head
# units use this "fast advertising" range while a pairing window is open.
ADV_INTERVAL_MIN_MS = 20
ADV_INTERVAL_MAX_MS = 30
MAX_AD = 31  # legacy advertising data / scan response payload, Core Vol 6 Part B 2.3.1.1
# The first 32 bits of the CarHub service UUID: the short UUID of the service data.
SERVICE_DATA_UUID32 = 0x8D3E0001
ANCS_SOLICITATION_UUID = "7905f431-b5ce-4e99-a40f-4b1e122d00d0"
AMS_SOLICITATION_UUID = "89d3502b-0f36-433a-8ef4-c502ad55f8dc"
_AD_FLAGS = bytes([0x06])  # LE General Discoverable, BR/EDR not supported
_SOLICITATION_128 = 0x15  # List of 128-bit Service Solicitation UUIDs
_SERVICE_DATA_32 = 0x20  # Service Data - 32-bit UUID


def advertising_data(name: str) -> bytes:
    """Return the advertising payload: flags, the ANCS solicitation and the name.

    Args:
        name: the car's name; shortened (0x08) at a UTF-8 boundary if it does not fit.

    Returns:
        At most 31 bytes.
    """
    head = bytes(
        AdvertisingData(
            [
                (AdvertisingData.FLAGS, _AD_FLAGS),
                (_SOLICITATION_128, UUID(ANCS_SOLICITATION_UUID).to_bytes()),
            ]
        )
    )
    return head + _name_ad(name, MAX_AD - len(head))


def scan_response_data(version: int, device_id: str, *, pairing_open: bool) -> bytes:
    """Return the scan response: the AMS solicitation and the CarHub service data.

    Args:
        version: the protocol version the car speaks.
        device_id: the 16-hex-digit device id; its first 8 digits are the short id.
        pairing_open: whether the pairing window is open (a flag in the service data).

    Returns:
        30 bytes.
    """
    flags = FLAG_PAIRING_OPEN if pairing_open else 0
    service_data = encode_service_data(version, flags, device_id)
    return bytes(
        AdvertisingData(
            [
                (_SOLICITATION_128, UUID(AMS_SOLICITATION_UUID).to_bytes()),
                (_SERVICE_DATA_32, struct.pack("<I", SERVICE_DATA_UUID32) + service_data),
            ]
        )
    )


def _name_ad(name: str, room: int) -> bytes:
    """Return the name AD structure in at most ``room`` bytes (b"" if none fits)."""
    raw = name.encode()
    kind = AdvertisingData.COMPLETE_LOCAL_NAME
    if len(raw) > room - 2:
        raw = raw[: max(room - 2, 0)].decode(errors="ignore").encode()
        kind = AdvertisingData.SHORTENED_LOCAL_NAME
    if not raw:
        return b""
    return bytes([len(raw) + 1, kind]) + raw


def static_address(device_id: str) -> hci.Address:
    """Return a static random address (top two bits 11) derived from ``device_id``."""
    raw = bytearray(hashlib.sha256(device_id.encode()).digest()[:6])
    raw[0] |= 0xC0
    text = ":".join(f"{b:02X}" for b in raw)
    return hci.Address(text, hci.Address.RANDOM_DEVICE_ADDRESS)


def plain_address(address: hci.Address) -> str:
    """Return ``AA:BB:CC:DD:EE:FF`` without Bumble's ``/P`` type suffix."""
    return str(address).split("/")[0]
