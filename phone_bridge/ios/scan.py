"""Which advertisements the emulated iPhone connects to: accessories soliciting ANCS.

iOS lists an accessory in Settings › Bluetooth when its advertising carries a 128-bit
Service Solicitation (AD type 0x15) of ANCS (or AMS). ``--car`` narrows it down to a
car by name (complete or shortened local name, case-insensitive) or by the prefix of its
CarHub id (the short id in the CarHub service data, 32-bit UUID 0x8d3e0001 in the scan
response, or the older 128-bit form).
"""

from __future__ import annotations

from typing import Any

from bumble.core import UUID, AdvertisingData

from protocol.apple import AMS_SERVICE_UUID, ANCS_SERVICE_UUID
from protocol.gatt import SERVICE_UUID

__all__ = ["advertised_name", "matches", "short_id", "solicits_apple"]

_APPLE = frozenset({UUID(ANCS_SERVICE_UUID), UUID(AMS_SERVICE_UUID)})
_CARHUB_128 = UUID(SERVICE_UUID)
_CARHUB_32 = UUID.from_32_bits(int(SERVICE_UUID[:8], 16))


def solicits_apple(data: Any) -> bool:
    """Whether the (merged) advertising data solicits ANCS or AMS."""
    uuids = data.get(AdvertisingData.LIST_OF_128_BIT_SERVICE_SOLICITATION_UUIDS) or []
    return any(u in _APPLE for u in uuids)


def advertised_name(data: Any) -> str:
    """The complete, else the shortened, local name ("" if none)."""
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
        AdvertisingData.SHORTENED_LOCAL_NAME
    )
    return str(name or "")


def short_id(data: Any) -> str:
    """The CarHub short id (8 hex digits) from the service data, or ""."""
    for kind in (AdvertisingData.SERVICE_DATA_32_BIT_UUID,
                 AdvertisingData.SERVICE_DATA_128_BIT_UUID):
        for entry in data.get_all(kind) or []:
            uuid, payload = entry
            if uuid in (_CARHUB_32, _CARHUB_128) and len(payload) >= 6:
                return bytes(payload[2:6]).hex()
    return ""


def matches(data: Any, car: str | None) -> bool:
    """Whether an advertisement is a car to connect to.

    Args:
        data: the Bumble ``AdvertisingData`` (advertising data and scan response merged).
        car: a name or an id prefix, or None for any car that solicits ANCS/AMS.
    """
    if not solicits_apple(data):
        return False
    if not car:
        return True
    wanted = car.strip().lower()
    name = advertised_name(data).lower()
    sid = short_id(data)
    by_id = bool(sid) and (sid.startswith(wanted) or wanted.startswith(sid))
    # A shortened name is a prefix of the real one.
    shortened = data.get(AdvertisingData.SHORTENED_LOCAL_NAME) is not None
    by_name = name == wanted or (shortened and bool(name) and wanted.startswith(name))
    return by_id or by_name
