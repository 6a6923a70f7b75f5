"""The DNS-SD schema of a car on the LAN: service type, instance name and TXT record.

Theory of operation: a car registers one service of type ``_carhub._tcp.local.`` whose
instance is ``carhub-<id>`` and whose SRV port is the phone-facing WebSocket port. Its TXT
record carries what a phone needs before it connects (PROTOCOL.md §1.1), as six
``key=value`` strings in this order:

    key    value
    v      highest protocol version the car speaks, decimal
    id     the car's device id, 16 lower-case hex digits
    name   the car's display name
    model  the car's model string
    pair   ``1`` while the pairing window is open, else ``0``
    ble    the car's BLE address, empty without BLE

Any host on the LAN can announce a service, so a phone reads a record strictly where it
matters and leniently elsewhere: the ``id`` must be exactly 16 lower-case hex digits,
because ids are matched by prefix and a short one would capture every query; ``v``, when
present, must be decimal digits (absent or empty reads as 0); every key and value must be
UTF-8; missing ``name``, ``model`` and ``ble`` read as a default and unknown keys are
ignored. This module is pure, like ``protocol.gatt`` for BLE: it turns a ``TxtRecord`` into
the properties zeroconf sends and back, and refuses a bad record with ``MessageError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.errors import LocalProtocolError, MessageError, Reason
from protocol.messages import PROTOCOL_VERSION

__all__ = [
    "INSTANCE_PREFIX",
    "MAX_TXT_STRING",
    "SERVICE_TYPE",
    "TXT_KEYS",
    "TxtRecord",
    "decode_txt",
    "encode_txt",
    "instance_name",
]

SERVICE_TYPE = "_carhub._tcp.local."
INSTANCE_PREFIX = "carhub-"
TXT_KEYS = ("v", "id", "name", "model", "pair", "ble")
# A TXT record is a sequence of DNS character-strings, each with a one-byte length
# (RFC 6763 §6.1), so "key=value" can be at most 255 bytes.
MAX_TXT_STRING = 255
# Exactly 16: ids are matched by prefix, so a shorter one would capture other queries.
_ID_RE = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class TxtRecord:
    """The decoded TXT record of one car."""

    id: str  # 16 lower-case hex digits
    name: str
    model: str = ""
    pairing_open: bool = False
    ble_address: str = ""  # empty without BLE
    version: int = PROTOCOL_VERSION


def instance_name(device_id: str) -> str:
    """Return the full service instance name of the car with ``device_id``.

    The device id makes the name unique on the network, as mDNS requires.
    """
    return f"{INSTANCE_PREFIX}{device_id}.{SERVICE_TYPE}"


def encode_txt(record: TxtRecord) -> dict[bytes, bytes]:
    """Build the TXT properties of ``record``, in the order of ``TXT_KEYS``.

    Args:
        record: the car's record.

    Returns:
        UTF-8 keys and values, as zeroconf's ``ServiceInfo(properties=...)`` takes them.

    Raises:
        LocalProtocolError: the id is not 16 lower-case hex digits, the version is
            negative, or a ``key=value`` string is over 255 bytes.
    """
    if not _ID_RE.fullmatch(record.id):
        raise LocalProtocolError(Reason.STATE, "device id must be 16 lower-case hex digits")
    if record.version < 0:
        raise LocalProtocolError(Reason.STATE, "version must be non-negative")
    values = (
        str(record.version),
        record.id,
        record.name,
        record.model,
        "1" if record.pairing_open else "0",
        record.ble_address,
    )
    props = {key.encode(): value.encode() for key, value in zip(TXT_KEYS, values, strict=True)}
    for key, value in props.items():
        if len(key) + 1 + len(value) > MAX_TXT_STRING:
            raise LocalProtocolError(
                Reason.STATE, f"TXT {key.decode()}= is over {MAX_TXT_STRING} bytes"
            )
    return props


def decode_txt(properties: Mapping[bytes, bytes | None], *, default_name: str = "") -> TxtRecord:
    """Parse the TXT properties of a resolved service.

    Args:
        properties: keys and values as zeroconf gives them (``None``: a key without ``=``,
            read as empty).
        default_name: the name when the record has no ``name`` key (a phone passes the
            instance's first label).

    Returns:
        The record.

    Raises:
        MessageError: a key or value is not UTF-8, the id is not 16 lower-case hex digits,
            or the version is not decimal digits.
    """
    try:
        props = {k.decode(): (v.decode() if v is not None else "") for k, v in properties.items()}
    except UnicodeDecodeError as exc:
        raise MessageError(Reason.MALFORMED, "TXT record is not UTF-8") from exc
    car_id = props.get("id", "")
    if not _ID_RE.fullmatch(car_id):
        raise MessageError(Reason.MALFORMED, f"id {car_id!r} is not 16 lower-case hex digits")
    v = props.get("v", "") or "0"
    # isdigit() alone accepts other scripts' digits (and int() would read them).
    if not (v.isascii() and v.isdigit()):
        raise MessageError(Reason.MALFORMED, f"version {v!r} is not a number")
    return TxtRecord(
        id=car_id,
        name=props.get("name", default_name),
        model=props.get("model", ""),
        pairing_open=props.get("pair") == "1",
        ble_address=props.get("ble", ""),
        version=int(v),
    )
