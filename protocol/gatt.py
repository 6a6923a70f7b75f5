"""BLE constants and the bytes CarHub puts in advertisements and the GATT info value.

Theory of operation: a car advertises *service data* under the 32-bit UUID 0x8d3e0001
(the first 32 bits of the CarHub service UUID) in its scan response, so a phone can list
cars (and tell whether pairing is open) without connecting (PROTOCOL.md §1.2):

    offset  size  field
    0       1     version     protocol version the car speaks (highest)
    1       1     flags       bit0 = pairing window open; other bits reserved, sent as 0
    2       4     short_id    the first 4 bytes of the car's 16-hex-digit device id

The car's name travels in the advertising data (shortened past 8 bytes). After connecting, the
``info`` characteristic returns a UTF-8 JSON object ``{id, name, model, version, lan}``
where ``lan`` lists ``host:port`` endpoints for a hand-over to the LAN; a car with
Bluetooth Classic on adds ``classic``, its BD_ADDR (``AA:BB:CC:DD:EE:FF``). The two channel
characteristics carry the framed byte stream (see ``protocol.framing``). This module is
pure: it only turns values into bytes and back, and refuses bad bytes with
``MessageError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.errors import LocalProtocolError, MessageError, Reason

__all__ = [
    "BD_ADDR",
    "CHANNEL_IN_UUID",
    "CHANNEL_OUT_UUID",
    "FLAG_PAIRING_OPEN",
    "INFO_UUID",
    "MAX_INFO_SIZE",
    "SERVICE_DATA_SIZE",
    "SERVICE_UUID",
    "CarInfo",
    "ServiceData",
    "decode_info",
    "decode_service_data",
    "encode_info",
    "encode_service_data",
]

# Random 128-bit UUIDs (version 4), lower case as bleak normalises them.
SERVICE_UUID = "8d3e0001-6a2c-4b5f-9c71-3f0e2a5bca11"
INFO_UUID = "8d3e0002-6a2c-4b5f-9c71-3f0e2a5bca11"
CHANNEL_IN_UUID = "8d3e0003-6a2c-4b5f-9c71-3f0e2a5bca11"
CHANNEL_OUT_UUID = "8d3e0004-6a2c-4b5f-9c71-3f0e2a5bca11"

FLAG_PAIRING_OPEN = 0x01
SERVICE_DATA_SIZE = 6
SHORT_ID_SIZE = 4
# The largest attribute value GATT allows (Core Vol 3 Part F 3.2.9); a longer info
# value could not be read in full by any client.
MAX_INFO_SIZE = 512
_INFO_KEYS = ("id", "name", "model", "version", "lan")
# A Bluetooth device address as written: six colon-separated hex pairs (either case).
BD_ADDR = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


@dataclass(frozen=True, slots=True)
class ServiceData:
    """The decoded CarHub service data of one advertisement."""

    version: int
    flags: int
    short_id: str  # 8 lower-case hex digits

    @property
    def pairing_open(self) -> bool:
        """Whether the car's pairing window is open."""
        return bool(self.flags & FLAG_PAIRING_OPEN)


@dataclass(frozen=True, slots=True)
class CarInfo:
    """The decoded value of the ``info`` characteristic."""

    id: str
    name: str
    model: str
    version: int
    lan: tuple[str, ...]
    classic: str | None = None  # the car's BD_ADDR, upper case, when Classic is on


def encode_service_data(version: int, flags: int, short_id: bytes | str) -> bytes:
    """Build the 6-byte service data.

    Args:
        version: protocol version, 0..255.
        flags: flag bits, 0..255 (``FLAG_PAIRING_OPEN``).
        short_id: 4 bytes, or a hex device id whose first 8 digits are used.

    Returns:
        The service data bytes.

    Raises:
        LocalProtocolError: a value is out of range or the id is not hex.
    """
    if not (0 <= version <= 0xFF and 0 <= flags <= 0xFF):
        raise LocalProtocolError(Reason.STATE, "version and flags must fit in one byte")
    if isinstance(short_id, str):
        try:
            short_id = bytes.fromhex(short_id[: SHORT_ID_SIZE * 2])
        except ValueError as exc:
            raise LocalProtocolError(Reason.STATE, "device id is not hex") from exc
    if len(short_id) != SHORT_ID_SIZE:
        raise LocalProtocolError(Reason.STATE, "short id must be 4 bytes")
    return bytes((version, flags)) + short_id


def decode_service_data(data: bytes) -> ServiceData:
    """Parse service data.

    Later versions may append fields, so bytes after the first 6 are ignored.

    Raises:
        MessageError: fewer than 6 bytes.
    """
    if len(data) < SERVICE_DATA_SIZE:
        raise MessageError(Reason.MALFORMED, f"service data is {len(data)} bytes, need 6")
    return ServiceData(version=data[0], flags=data[1], short_id=data[2:6].hex())


def encode_info(info: Mapping[str, object]) -> bytes:
    """Encode the info characteristic value as compact UTF-8 JSON.

    Args:
        info: at least the keys id, name, model, version, lan (extra keys are kept).

    Returns:
        The JSON bytes, at most ``MAX_INFO_SIZE``.

    Raises:
        LocalProtocolError: a key is missing, of the wrong type, or the value is too long.
    """
    try:
        _to_car_info(info)
    except MessageError as exc:
        raise LocalProtocolError(Reason.STATE, exc.detail) from exc
    data = json.dumps(dict(info), separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > MAX_INFO_SIZE:
        raise LocalProtocolError(Reason.STATE, f"info is {len(data)} bytes > {MAX_INFO_SIZE}")
    return data


def decode_info(data: bytes) -> CarInfo:
    """Parse an info value read from a car.

    Raises:
        MessageError: not UTF-8 JSON, not an object, or a field is missing or mistyped
            (``classic``, optional, must be a BD_ADDR).
    """
    if len(data) > MAX_INFO_SIZE:
        raise MessageError(Reason.MALFORMED, "info value too long")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError(Reason.MALFORMED, "info is not UTF-8 JSON") from exc
    if not isinstance(obj, dict):
        raise MessageError(Reason.MALFORMED, "info is not a JSON object")
    return _to_car_info(obj)


def _to_car_info(obj: Mapping[str, object]) -> CarInfo:
    """Check the fields of an info object and build a ``CarInfo``."""
    missing = [key for key in _INFO_KEYS if key not in obj]
    if missing:
        raise MessageError(Reason.MALFORMED, f"info lacks {', '.join(missing)}")
    ident, name, model, version, lan = (obj[key] for key in _INFO_KEYS)
    if not all(isinstance(v, str) for v in (ident, name, model)):
        raise MessageError(Reason.MALFORMED, "info id, name and model must be strings")
    # bool is an int subclass; a version of `true` is a bug, not version 1.
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise MessageError(Reason.MALFORMED, "info version must be a non-negative integer")
    if not isinstance(lan, list) or not all(isinstance(e, str) for e in lan):
        raise MessageError(Reason.MALFORMED, "info lan must be a list of strings")
    classic = obj.get("classic")  # absent when Classic is off; null is no address either
    if "classic" in obj and not (isinstance(classic, str) and BD_ADDR.fullmatch(classic)):
        raise MessageError(Reason.MALFORMED, "info classic must be a BD_ADDR (AA:BB:CC:DD:EE:FF)")
    assert isinstance(ident, str) and isinstance(name, str) and isinstance(model, str)
    return CarInfo(
        id=ident,
        name=name,
        model=model,
        version=version,
        lan=tuple(lan),
        classic=classic.upper() if isinstance(classic, str) else None,
    )
