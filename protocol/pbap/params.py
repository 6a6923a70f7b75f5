"""PBAP 1.2 Application Parameters (section 6.2.1): a tag-length-value codec.

Each parameter is ``tag (u8) | length (u8) | value``, integers big-endian. Every tag this
module knows has an exact length (SearchValue is the only variable one); a decoder that
meets a wrong length, a value cut short, a duplicated tag or a reserved Format refuses the
whole header with ``PbapError``. Unknown tags are skipped when their length fits, so a
newer phone's extra parameters do not stop the car.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Final

from protocol.errors import LocalProtocolError, MessageError, Reason

__all__ = [
    "MAX_APP_PARAMS",
    "AppParams",
    "Feature",
    "Format",
    "PbapError",
    "Property",
    "Tag",
    "decode_app_params",
    "encode_app_params",
]

# An OBEX header's length is a u16 that counts its 3-byte prefix.
MAX_APP_PARAMS: Final = 0xFFFF - 3


class PbapError(MessageError):
    """PBAP bytes from the peer that we refuse (application parameters, vCard listing).

    The one error every PBAP decoder raises; ``reason`` is ``Reason.MALFORMED`` unless
    stated, ``detail`` says what was wrong in one line.
    """

    def __init__(self, reason: Reason = Reason.MALFORMED, detail: str = "") -> None:
        super().__init__(reason, detail)


def bad(detail: str) -> PbapError:
    """A MALFORMED ``PbapError`` (for ``raise bad(...)``)."""
    return PbapError(Reason.MALFORMED, detail)


class Tag(enum.IntEnum):
    """Application Parameter tags (PBAP 1.2 table 6.1)."""

    ORDER = 0x01
    SEARCH_VALUE = 0x02
    SEARCH_PROPERTY = 0x03
    MAX_LIST_COUNT = 0x04
    LIST_START_OFFSET = 0x05
    PROPERTY_SELECTOR = 0x06
    FORMAT = 0x07
    PHONEBOOK_SIZE = 0x08
    NEW_MISSED_CALLS = 0x09
    PRIMARY_VERSION_COUNTER = 0x0A
    SECONDARY_VERSION_COUNTER = 0x0B
    VCARD_SELECTOR = 0x0C
    DATABASE_IDENTIFIER = 0x0D
    VCARD_SELECTOR_OPERATOR = 0x0E
    RESET_NEW_MISSED_CALLS = 0x0F
    SUPPORTED_FEATURES = 0x10


class Format(enum.IntEnum):
    """The Format parameter: which vCard version the phone sends."""

    VCARD_21 = 0x00
    VCARD_30 = 0x01


class Property(enum.IntFlag):
    """PropertySelector / vCardSelector bits (PBAP 1.2 section 5.1.4.1)."""

    VERSION = 1 << 0
    FN = 1 << 1
    N = 1 << 2
    PHOTO = 1 << 3
    BDAY = 1 << 4
    ADR = 1 << 5
    LABEL = 1 << 6
    TEL = 1 << 7
    EMAIL = 1 << 8
    MAILER = 1 << 9
    TZ = 1 << 10
    GEO = 1 << 11
    TITLE = 1 << 12
    ROLE = 1 << 13
    LOGO = 1 << 14
    AGENT = 1 << 15
    ORG = 1 << 16
    NOTE = 1 << 17
    REV = 1 << 18
    SOUND = 1 << 19
    URL = 1 << 20
    UID = 1 << 21
    KEY = 1 << 22
    NICKNAME = 1 << 23
    CATEGORIES = 1 << 24
    PROID = 1 << 25
    CLASS = 1 << 26
    SORT_STRING = 1 << 27
    X_IRMC_CALL_DATETIME = 1 << 28
    X_BT_SPEEDDIALKEY = 1 << 29
    X_BT_UCI = 1 << 30
    X_BT_UID = 1 << 31
    PROPRIETARY_FILTER = 1 << 39


class Feature(enum.IntFlag):
    """PbapSupportedFeatures bits (PBAP 1.2 section 6.2.1; the same bits as the SDP one)."""

    DOWNLOAD = 1 << 0
    BROWSING = 1 << 1
    DATABASE_IDENTIFIER = 1 << 2
    FOLDER_VERSION_COUNTERS = 1 << 3
    VCARD_SELECTING = 1 << 4
    ENHANCED_MISSED_CALLS = 1 << 5
    X_BT_UCI = 1 << 6
    X_BT_UID = 1 << 7
    CONTACT_REFERENCING = 1 << 8
    DEFAULT_CONTACT_IMAGE_FORMAT = 1 << 9


@dataclass(frozen=True)
class AppParams:
    """Decoded Application Parameters; ``None`` means the parameter was absent.

    Integers are the values on the air (``format`` is 0 or 1, see ``Format``); the
    counters and the database identifier are their 16 raw bytes.
    """

    order: int | None = None
    search_value: bytes | None = None
    search_property: int | None = None
    max_list_count: int | None = None
    list_start_offset: int | None = None
    property_selector: int | None = None
    format: int | None = None
    phonebook_size: int | None = None
    new_missed_calls: int | None = None
    primary_version_counter: bytes | None = None
    secondary_version_counter: bytes | None = None
    vcard_selector: int | None = None
    database_identifier: bytes | None = None
    vcard_selector_operator: int | None = None
    reset_new_missed_calls: int | None = None
    supported_features: int | None = None


# tag -> (field, exact length or None for variable, is an integer)
_SPEC: Final[dict[int, tuple[str, int | None, bool]]] = {
    Tag.ORDER: ("order", 1, True),
    Tag.SEARCH_VALUE: ("search_value", None, False),
    Tag.SEARCH_PROPERTY: ("search_property", 1, True),
    Tag.MAX_LIST_COUNT: ("max_list_count", 2, True),
    Tag.LIST_START_OFFSET: ("list_start_offset", 2, True),
    Tag.PROPERTY_SELECTOR: ("property_selector", 8, True),
    Tag.FORMAT: ("format", 1, True),
    Tag.PHONEBOOK_SIZE: ("phonebook_size", 2, True),
    Tag.NEW_MISSED_CALLS: ("new_missed_calls", 1, True),
    Tag.PRIMARY_VERSION_COUNTER: ("primary_version_counter", 16, False),
    Tag.SECONDARY_VERSION_COUNTER: ("secondary_version_counter", 16, False),
    Tag.VCARD_SELECTOR: ("vcard_selector", 8, True),
    Tag.DATABASE_IDENTIFIER: ("database_identifier", 16, False),
    Tag.VCARD_SELECTOR_OPERATOR: ("vcard_selector_operator", 1, True),
    Tag.RESET_NEW_MISSED_CALLS: ("reset_new_missed_calls", 1, True),
    Tag.SUPPORTED_FEATURES: ("supported_features", 4, True),
}
_FORMATS: Final = frozenset(int(f) for f in Format)


def encode_app_params(params: AppParams) -> bytes:
    """Encode the parameters that are set, in ascending tag order (so bytes are stable).

    Args:
        params: the parameters; ``None`` fields are left out.

    Returns:
        The Application Parameters header value (possibly empty).

    Raises:
        LocalProtocolError: a value does not fit its parameter (a bug on our side).
    """
    out = bytearray()
    for tag, (field, size, is_int) in _SPEC.items():
        value = getattr(params, field)
        if value is None:
            continue
        if is_int:
            assert size is not None
            if not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
                raise LocalProtocolError(Reason.MALFORMED, f"{field}={value!r} does not fit")
            if tag == Tag.FORMAT and value not in _FORMATS:
                raise LocalProtocolError(Reason.MALFORMED, f"reserved format {value}")
            raw = int(value).to_bytes(size, "big")
        else:
            raw = bytes(value)
            if (size is not None and len(raw) != size) or len(raw) > 0xFF:
                raise LocalProtocolError(Reason.MALFORMED, f"{field} has {len(raw)} bytes")
        out += bytes((tag, len(raw))) + raw
    if len(out) > MAX_APP_PARAMS:
        raise LocalProtocolError(Reason.MALFORMED, "application parameters too long")
    return bytes(out)


def decode_app_params(data: bytes) -> AppParams:
    """Decode an Application Parameters header value from the peer.

    Args:
        data: the header's value (without the OBEX header id and length).

    Returns:
        The parameters found; unknown tags are skipped.

    Raises:
        PbapError: over ``MAX_APP_PARAMS``, a parameter cut short, a known tag with the
            wrong length, a tag given twice, or a reserved Format value.
    """
    if len(data) > MAX_APP_PARAMS:
        raise bad(f"application parameters of {len(data)} bytes")
    found: dict[str, int | bytes] = {}
    seen: set[int] = set()
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise bad(f"parameter header cut at byte {pos}")
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if pos + length > len(data):
            raise bad(f"parameter 0x{tag:02x} announces {length} bytes, {len(data) - pos} left")
        raw = bytes(data[pos : pos + length])
        pos += length
        if tag in seen:
            raise bad(f"parameter 0x{tag:02x} given twice")
        seen.add(tag)
        spec = _SPEC.get(tag)
        if spec is None:
            continue  # unknown but well-formed: a newer peer's parameter
        field, size, is_int = spec
        if size is not None and length != size:
            raise bad(f"parameter 0x{tag:02x} has {length} bytes, not {size}")
        value: int | bytes = int.from_bytes(raw, "big") if is_int else raw
        if tag == Tag.FORMAT and value not in _FORMATS:
            raise bad(f"reserved format {value!r}")
        found[field] = value
    return dataclasses.replace(AppParams(), **found)  # type: ignore[arg-type]
