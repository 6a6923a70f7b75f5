"""What the car asks a PBAP phone for: names, types and Application Parameters bytes.

These build the PBAP layer of each request only; the OBEX layer (opcodes, Connection Id,
Name/Type/Application Parameters headers, SETPATH flags on the wire) belongs to
``protocol.obex``. PROTOCOL.md section 12.2 says which parameters are sent and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from protocol.errors import LocalProtocolError, Reason
from protocol.pbap.params import AppParams, Feature, Format, Property, encode_app_params

__all__ = [
    "CALL_SELECTOR",
    "CAR_FEATURES",
    "MAX_LIST_COUNT",
    "NO_PHOTO",
    "PBAP_TARGET",
    "PHOTO_ONLY",
    "PHOTO_SELECTOR",
    "TYPE_PHONEBOOK",
    "TYPE_VCARD",
    "TYPE_VCARD_LISTING",
    "PbapGet",
    "SetPathStep",
    "car_features",
    "connect_app_params",
    "probe",
    "pull_phone_book",
    "pull_vcard_entry",
    "pull_vcard_listing",
    "set_phone_book",
]

# The OBEX Target of a PBAP CONNECT (PBAP 1.2 section 6.4).
PBAP_TARGET: Final = bytes.fromhex("796135f0f0c511d809660800200c9a66")
TYPE_PHONEBOOK: Final = "x-bt/phonebook"
TYPE_VCARD_LISTING: Final = "x-bt/vcard-listing"
TYPE_VCARD: Final = "x-bt/vcard"
# MaxListCount's "no limit" (PBAP 1.2 section 5.1.4.4).
MAX_LIST_COUNT: Final = 0xFFFF

# What a call entry needs: the name, the number and the call's type and time.
CALL_SELECTOR: Final = (
    Property.VERSION | Property.FN | Property.N | Property.TEL | Property.X_IRMC_CALL_DATETIME
)
# Everything protocol.vcard keeps from a card except PHOTO (VERSION is mandatory in the
# selector's sense: a PSE always sends it, and asking for it costs nothing).
NO_PHOTO: Final = (
    Property.VERSION | Property.FN | Property.N | Property.NICKNAME | Property.ORG
    | Property.TITLE | Property.TEL | Property.EMAIL | Property.ADR | Property.BDAY
    | Property.NOTE | Property.UID | Property.X_BT_UID
)  # fmt: skip
# The photo pass: PHOTO plus exactly what protocol.vcard derives a contact's identity from
# (UID, X-BT-UID, else the name from FN, N, NICKNAME, ORG), so each photo card imports to
# the same uid as in the first pass and is matched to its contact. A card named only by a
# number or an e-mail gets no name here and its photo is not matched (rare; accepted).
PHOTO_ONLY: Final = (
    Property.VERSION | Property.FN | Property.N | Property.NICKNAME | Property.ORG
    | Property.UID | Property.X_BT_UID | Property.PHOTO
)  # fmt: skip
# What the car's PCE supports: download (pull_phone_book) and browsing (listing, entry,
# SETPATH); the database identifier and the folder version counters, without which a
# PBAP 1.2 phone sends neither (so no change detection); X-BT-UID, which protocol.vcard
# reads as a stable identity. vCard selecting is added by ``car_features`` only for a
# phone whose SDP record has it (the photo pass then asks for the cards with a photo).
# Never claimed: enhanced missed calls, X-BT-UCI, contact referencing, default contact
# image format (the car takes any photo type).
CAR_FEATURES: Final = (
    Feature.DOWNLOAD | Feature.BROWSING | Feature.DATABASE_IDENTIFIER
    | Feature.FOLDER_VERSION_COUNTERS | Feature.X_BT_UID
)  # fmt: skip
# The vCardSelector of the photo pass: only the cards that have a PHOTO property.
PHOTO_SELECTOR: Final = int(Property.PHOTO)
# vCardSelectorOperator (PBAP 1.2 section 5.1.4.8): 0 = OR (any selected property), 1 = AND.
SELECTOR_OR: Final = 0

_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HANDLE = re.compile(r"[0-9A-Fa-f]{1,16}\.vcf")


@dataclass(frozen=True)
class PbapGet:
    """The PBAP layer of one OBEX GET: Name, Type and Application Parameters bytes."""

    name: str
    type: str
    app_params: bytes


@dataclass(frozen=True)
class SetPathStep:
    """One OBEX SETPATH of a SetPhoneBook.

    ``root``: flags 0x02 and an empty Name; ``child``: flags 0x02 and Name ``name``;
    ``parent``: flags 0x03 and no Name (PBAP 1.2 section 5.2).
    """

    kind: Literal["root", "child", "parent"]
    name: str = ""

    @property
    def flags(self) -> int:
        """The SETPATH flags byte: bit 1 "do not create" always, bit 0 "back up" for parent."""
        return 0x03 if self.kind == "parent" else 0x02


def _path(path: str, suffix: str) -> str:
    parts = path.split("/")
    plain = all(_SEGMENT.fullmatch(p) and p not in (".", "..") for p in parts)
    if not plain or not path.endswith(suffix):
        raise LocalProtocolError(Reason.MALFORMED, f"not a PBAP path: {path!r}")
    return path


def _check_window(max_count: int, offset: int) -> None:
    if not (0 <= max_count <= MAX_LIST_COUNT and 0 <= offset <= MAX_LIST_COUNT):
        raise LocalProtocolError(Reason.MALFORMED, f"bad window {offset}+{max_count}")


def car_features(pse_features: int) -> int:
    """The PbapSupportedFeatures the car claims to a phone with ``pse_features``.

    Args:
        pse_features: the phone's SDP PbapSupportedFeatures.

    Returns:
        ``CAR_FEATURES``, plus vCard selecting (bit 4) when the phone has it.
    """
    return int(CAR_FEATURES) | (int(pse_features) & int(Feature.VCARD_SELECTING))


def connect_app_params(features: int = CAR_FEATURES) -> bytes:
    """The Application Parameters of the car's OBEX CONNECT: PbapSupportedFeatures.

    Args:
        features: the PCE's feature bits (``CAR_FEATURES`` by default).

    Returns:
        The header value, ``10 04`` and the four bytes of ``features``.
    """
    return encode_app_params(AppParams(supported_features=int(features)))


def pull_phone_book(
    path: str = "telecom/pb.vcf",
    *,
    max_count: int = MAX_LIST_COUNT,
    offset: int = 0,
    fmt: Format = Format.VCARD_30,
    selector: int | None = NO_PHOTO,
    vcard_selector: int | None = None,
) -> PbapGet:
    """PullPhoneBook: one page of a phone book object.

    Args:
        path: the object, from the root (``telecom/pb.vcf``, ``telecom/cch.vcf``...).
        max_count: MaxListCount, the page size (0 asks only for the size: see ``probe``).
        offset: ListStartOffset, the index of the page's first card.
        fmt: vCard 3.0 unless the phone offers only 2.1.
        selector: the PropertySelector, or ``None`` to send none (all properties).
        vcard_selector: a vCardSelector (only cards with any of these properties; sent
            with vCardSelectorOperator OR), or ``None`` for every card.

    Returns:
        The GET's name, type and parameters. MaxListCount is always sent, ListStartOffset
        only when not 0 (its default).

    Raises:
        LocalProtocolError: a bad path or window.
    """
    _check_window(max_count, offset)
    params = AppParams(
        max_list_count=max_count,
        list_start_offset=offset or None,
        format=int(fmt),
        property_selector=None if selector is None else int(selector),
        vcard_selector=vcard_selector,
        vcard_selector_operator=None if vcard_selector is None else SELECTOR_OR,
    )
    return PbapGet(_path(path, ".vcf"), TYPE_PHONEBOOK, encode_app_params(params))


def probe(path: str = "telecom/pb.vcf", *, vcard_selector: int | None = None) -> PbapGet:
    """The change-detection probe: a PullPhoneBook with MaxListCount = 0 and nothing else.

    The phone answers with no cards and the parameters PhonebookSize and, when the car's
    CONNECT claimed the features, the version counters and DatabaseIdentifier.

    Args:
        path: the phone book object to probe.
        vcard_selector: a vCardSelector (operator OR): PhonebookSize then counts only
            the cards that have one of its properties (the photo pass's probe).

    Returns:
        The GET's name, type and parameters (``04 02 00 00`` without a selector).
    """
    operator = None if vcard_selector is None else SELECTOR_OR
    params = encode_app_params(
        AppParams(max_list_count=0, vcard_selector=vcard_selector, vcard_selector_operator=operator)
    )
    return PbapGet(_path(path, ".vcf"), TYPE_PHONEBOOK, params)


def pull_vcard_listing(
    folder: str = "telecom/pb",
    *,
    max_count: int = MAX_LIST_COUNT,
    offset: int = 0,
    order: int | None = None,
    search_value: bytes | None = None,
    search_property: int | None = None,
) -> PbapGet:
    """PullvCardListing of a folder, relative to the current folder (use ``""`` for it).

    Args:
        folder: the folder's name, or ``""`` for the current folder after SETPATH.
        max_count: MaxListCount.
        offset: ListStartOffset (sent only when not 0).
        order: Order (0 indexed, 1 alphabetical, 2 phonetical) or ``None``.
        search_value: SearchValue bytes (at most 255) or ``None``.
        search_property: SearchProperty (0 name, 1 number, 2 sound) or ``None``.

    Returns:
        The GET's name, type and parameters.

    Raises:
        LocalProtocolError: a bad folder, window or parameter.
    """
    _check_window(max_count, offset)
    name = folder if folder == "" else _path(folder, "")
    params = AppParams(
        order=order,
        search_value=search_value,
        search_property=search_property,
        max_list_count=max_count,
        list_start_offset=offset or None,
    )
    return PbapGet(name, TYPE_VCARD_LISTING, encode_app_params(params))


def pull_vcard_entry(
    handle: str, *, fmt: Format = Format.VCARD_30, selector: int | None = NO_PHOTO
) -> PbapGet:
    """PullvCardEntry: one card by its handle in the current folder.

    Args:
        handle: a listing handle such as ``"5.vcf"`` (hex number and ``.vcf``).
        fmt: the vCard version.
        selector: the PropertySelector or ``None``.

    Returns:
        The GET's name, type and parameters.

    Raises:
        LocalProtocolError: ``handle`` is not a handle (it would name another object).
    """
    if not _HANDLE.fullmatch(handle):
        raise LocalProtocolError(Reason.MALFORMED, f"not a vCard handle: {handle!r}")
    params = AppParams(
        format=int(fmt), property_selector=None if selector is None else int(selector)
    )
    return PbapGet(handle, TYPE_VCARD, encode_app_params(params))


def set_phone_book(path: str) -> tuple[SetPathStep, ...]:
    """SetPhoneBook to ``path`` from the root: root first, so it is right from any folder.

    Args:
        path: folders from the root (``"telecom/pb"``, ``"SIM1/telecom/ich"``); ``""`` is
            the root itself; a ``..`` segment becomes a parent step.

    Returns:
        The SETPATH steps in order.

    Raises:
        LocalProtocolError: a segment that is not a plain folder name.
    """
    steps = [SetPathStep("root")]
    for part in path.strip("/").split("/") if path.strip("/") else []:
        if part == "..":
            steps.append(SetPathStep("parent"))
        elif _SEGMENT.fullmatch(part) and part != ".":
            steps.append(SetPathStep("child", part))
        else:
            raise LocalProtocolError(Reason.MALFORMED, f"not a folder: {part!r}")
    return tuple(steps)
