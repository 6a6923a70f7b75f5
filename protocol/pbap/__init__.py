"""PBAP 1.2, the Phone Book Access Profile, at the PBAP layer only (sans-I/O).

The car is the PCE (client). This package turns requests into the Name, Type and
Application Parameters bytes that ``protocol.obex`` carries, and the phone's answers
(Application Parameters, vCard listings, phone book bodies) into values, and makes the
pure decisions of a pull: skip or pull (version counters), the pages, the owner card.
Every decoder raises only ``PbapError`` (a ``MessageError``) on bad bytes. See
PROTOCOL.md section 12.2.

- ``params``: the Application Parameters TLV codec, ``Property`` and ``Feature`` bits.
- ``requests``: PullPhoneBook, PullvCardListing, PullvCardEntry, SetPhoneBook, CONNECT.
- ``listing``: the guarded ``x-bt/vcard-listing`` parser.
- ``changes``: ``BookState``, ``decide``, ``pages``, ``split_cards``, ``split_owner``.
- ``pull``: ``PageReader``, the pages of a pull read into contacts.
- ``photos``: the photo pass (all cards, or only those with a photo: vCard selecting).
"""

from __future__ import annotations

from protocol.pbap.changes import (
    MAX_CARD_BLOCKS,
    BookState,
    decide,
    pages,
    split_cards,
    split_owner,
)
from protocol.pbap.listing import MAX_LISTING_BYTES, MAX_LISTING_CARDS, parse_vcard_listing
from protocol.pbap.params import (
    MAX_APP_PARAMS,
    AppParams,
    Feature,
    Format,
    PbapError,
    Property,
    Tag,
    decode_app_params,
    encode_app_params,
)
from protocol.pbap.requests import (
    CALL_SELECTOR,
    CAR_FEATURES,
    MAX_LIST_COUNT,
    NO_PHOTO,
    PBAP_TARGET,
    PHOTO_ONLY,
    PHOTO_SELECTOR,
    TYPE_PHONEBOOK,
    TYPE_VCARD,
    TYPE_VCARD_LISTING,
    PbapGet,
    SetPathStep,
    car_features,
    connect_app_params,
    probe,
    pull_phone_book,
    pull_vcard_entry,
    pull_vcard_listing,
    set_phone_book,
)

__all__ = [
    "CALL_SELECTOR",
    "CAR_FEATURES",
    "MAX_APP_PARAMS",
    "MAX_CARD_BLOCKS",
    "MAX_LISTING_BYTES",
    "MAX_LISTING_CARDS",
    "MAX_LIST_COUNT",
    "NO_PHOTO",
    "PBAP_TARGET",
    "PHOTO_ONLY",
    "PHOTO_SELECTOR",
    "TYPE_PHONEBOOK",
    "TYPE_VCARD",
    "TYPE_VCARD_LISTING",
    "AppParams",
    "BookState",
    "Feature",
    "Format",
    "PbapError",
    "PbapGet",
    "Property",
    "SetPathStep",
    "Tag",
    "car_features",
    "connect_app_params",
    "decide",
    "decode_app_params",
    "encode_app_params",
    "pages",
    "parse_vcard_listing",
    "probe",
    "pull_phone_book",
    "pull_vcard_entry",
    "pull_vcard_listing",
    "set_phone_book",
    "split_cards",
    "split_owner",
]
