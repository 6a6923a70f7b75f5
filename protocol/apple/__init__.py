"""Apple's accessory profiles, as codecs: AMS (media) and ANCS (notifications).

An iPhone offers both as GATT services to a bonded accessory; the car is their GATT client
and the emulated iPhone their server. Both sides use these sans-I/O codecs: ``ams`` and
``ancs`` turn characteristic values into values and back, with every length bounded.
Every decoder raises only ``AppleDataError`` on bad bytes (PROTOCOL.md section 11).
"""

from __future__ import annotations

from protocol.errors import MessageError, Reason

__all__ = [
    "AMS_ENTITY_ATTRIBUTE_UUID",
    "AMS_ENTITY_UPDATE_UUID",
    "AMS_REMOTE_COMMAND_UUID",
    "AMS_SERVICE_UUID",
    "ANCS_CONTROL_POINT_UUID",
    "ANCS_DATA_SOURCE_UUID",
    "ANCS_NOTIFICATION_SOURCE_UUID",
    "ANCS_SERVICE_UUID",
    "MAX_ATTRIBUTE_VALUE",
    "AppleDataError",
]

ANCS_SERVICE_UUID = "7905f431-b5ce-4e99-a40f-4b1e122d00d0"
ANCS_NOTIFICATION_SOURCE_UUID = "9fbf120d-6301-42d9-8c58-25e699a21dbd"
ANCS_CONTROL_POINT_UUID = "69d1d8f3-45e1-49a8-9821-9bbdfdaad9d9"
ANCS_DATA_SOURCE_UUID = "22eac6e9-24d6-4bb5-be44-b36ace7c7bfb"
AMS_SERVICE_UUID = "89d3502b-0f36-433a-8ef4-c502ad55f8dc"
AMS_REMOTE_COMMAND_UUID = "9b3c81d8-57b1-4a8a-b8df-0e56f7ca51c2"
AMS_ENTITY_UPDATE_UUID = "2f7cabce-808d-411f-9a0c-bb92ba96c102"
AMS_ENTITY_ATTRIBUTE_UUID = "c6b2f38c-23ab-46d8-a6ab-a3a870bbd5d7"

# A GATT attribute value is at most 512 bytes (Core spec, ATT), so no single characteristic
# value or notification an iPhone sends can be longer: anything longer is refused.
MAX_ATTRIBUTE_VALUE = 512


class AppleDataError(MessageError):
    """Bytes from an AMS or ANCS peer that we refuse (short, oversized, unknown ids...).

    Constructed like ``MessageError``: ``AppleDataError(Reason.MALFORMED, "detail")``;
    the reason defaults to ``Reason.MALFORMED``.
    """

    def __init__(self, reason: Reason = Reason.MALFORMED, detail: str = "") -> None:
        super().__init__(reason, detail)


def bad(detail: str) -> AppleDataError:
    """A MALFORMED ``AppleDataError`` with ``detail`` (for the codecs' ``raise bad(...)``)."""
    return AppleDataError(Reason.MALFORMED, detail)


def cut_utf8(raw: bytes, limit: int) -> bytes:
    """Cut UTF-8 bytes to at most ``limit`` bytes without splitting a character.

    Args:
        raw: valid UTF-8.
        limit: the byte budget (>= 0).

    Returns:
        The longest prefix of ``raw`` within ``limit`` that ends on a character boundary.
    """
    if len(raw) <= limit:
        return raw
    n = max(0, limit)
    while n > 0 and (raw[n] & 0xC0) == 0x80:  # raw[n] is a continuation byte: back off
        n -= 1
    return raw[:n]


def utf8(text: str) -> bytes:
    """Encode ``text`` as UTF-8; lone surrogates (never valid on the air) become ``?``."""
    return text.encode("utf-8", errors="replace")
