"""Find a phone's PBAP server (PSE) through SDP: its RFCOMM channel and its features.

The record (PBAP 1.2 section 7.1.2): service class 0x112F, a protocol descriptor list
``[[L2CAP], [RFCOMM, channel], [OBEX]]``, the profile descriptor ``[0x1130, version]`` and,
from 1.2 on, PbapSupportedFeatures (0x0317, u32). The record comes from the peer, so every
shape is checked: a value of the wrong type is ignored, not trusted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

from bumble import sdp
from bumble.core import BT_RFCOMM_PROTOCOL_ID, UUID
from bumble.device import Connection

from carhub.classic import ClassicLinkError

__all__ = ["PBAP_PSE", "SDP_TIMEOUT_S", "PseRecord", "find_pse"]

PBAP_PSE: Final = UUID.from_16_bits(0x112F, "Phonebook Access PSE")
_PBAP_PROFILE: Final = UUID.from_16_bits(0x1130, "Phonebook Access")
_SUPPORTED_FEATURES: Final = 0x0317
# A PBAP 1.1 PSE has no features attribute: it can download and browse (PBAP 1.2 5.1).
_V11_FEATURES: Final = 0x0003
# SDP answers within a second on a real link; the search is a few PDUs.
SDP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PseRecord:
    """The phone's PBAP server: its RFCOMM channel, its profile version and features.

    ``features_known`` is False for a record with no PbapSupportedFeatures (PBAP 1.1).
    """

    channel: int
    version: int
    features: int
    features_known: bool


async def find_pse(connection: Connection, *, timeout: float = SDP_TIMEOUT_S) -> PseRecord:
    """Search the phone's SDP records for a PBAP PSE.

    Raises:
        ClassicLinkError: no answer in time, the search failed, or no usable record.
    """
    ids = [
        sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID,
        sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID,
        _SUPPORTED_FEATURES,
    ]
    try:
        async with asyncio.timeout(timeout):
            async with sdp.Client(connection) as client:
                records = await client.search_attributes([PBAP_PSE], ids)
    except TimeoutError:
        raise ClassicLinkError(f"no SDP answer within {timeout:g} s") from None
    except Exception as exc:  # Bumble raises many types for a failed search or a lost link
        raise ClassicLinkError(f"SDP search failed: {type(exc).__name__} {exc}") from None
    for attributes in records:
        record = _record(attributes)
        if record is not None:
            return record
    raise ClassicLinkError("the phone offers no PBAP server (SDP 0x112F)")


def _record(attributes: list[sdp.ServiceAttribute]) -> PseRecord | None:
    """A PSE record from one service's attributes, or None without an RFCOMM channel."""
    channel = version = None
    features: int | None = None
    for attribute in attributes:
        if attribute.id == sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID:
            channel = _channel(attribute.value)
        elif attribute.id == sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID:
            version = _version(attribute.value)
        elif attribute.id == _SUPPORTED_FEATURES:
            value = attribute.value.value
            features = value if isinstance(value, int) and 0 <= value < 1 << 32 else None
    if channel is None:
        return None
    return PseRecord(
        channel=channel,
        version=version or 0x0101,
        features=_V11_FEATURES if features is None else features,
        features_known=features is not None,
    )


def _items(element: Any) -> list[Any]:
    """The elements of a sequence DataElement ([] for anything else)."""
    value = getattr(element, "value", None)
    return list(value) if isinstance(value, list) else []


def _channel(element: Any) -> int | None:
    """The RFCOMM channel of ``[[L2CAP], [RFCOMM, channel], ...]`` (1..30)."""
    for layer in _items(element):
        parts = _items(layer)
        if len(parts) >= 2 and getattr(parts[0], "value", None) == BT_RFCOMM_PROTOCOL_ID:
            channel = getattr(parts[1], "value", None)
            if isinstance(channel, int) and 1 <= channel <= 30:
                return channel
    return None


def _version(element: Any) -> int | None:
    """The PBAP version of ``[[0x1130, version]]`` (0x0102 for 1.2)."""
    for profile in _items(element):
        parts = _items(profile)
        if len(parts) >= 2 and getattr(parts[0], "value", None) == _PBAP_PROFILE:
            version = getattr(parts[1], "value", None)
            if isinstance(version, int):
                return version
    return None
