"""The emulated phones' PBAP server (PSE) on Bumble Classic, around ``protocol.pbap.server``.

- ``book``: the contacts/calls files, DatabaseIdentifier and counters in the state dir.
- ``service``: the SDP record, the RFCOMM server and one PSE per RFCOMM channel.
- ``link``: finding the car's Classic address, connecting, SSP as the phone.
- ``phone``: ``PbapPhone``, the Android phone of ``phone-bridge emulate android``.
"""

from __future__ import annotations

from phone_bridge.pbap.book import BookFile, owner_card
from phone_bridge.pbap.link import connect_classic, find_car_classic
from phone_bridge.pbap.phone import PbapPhone, PbapPhoneOptions, prepare_classic
from phone_bridge.pbap.service import PbapService, pse_sdp_record

__all__ = [
    "BookFile",
    "PbapPhone",
    "PbapPhoneOptions",
    "PbapService",
    "connect_classic",
    "find_car_classic",
    "owner_card",
    "prepare_classic",
    "pse_sdp_record",
]
