"""The ``x-bt/vcard-listing`` object (PBAP 1.2 section 5.3.3), parsed with guards.

A phone's listing is XML: ``<vCard-listing version="1.0"><card handle="1.vcf"
name="..."/>...</vCard-listing>``. It comes from the peer, so before ElementTree sees it:
it must be UTF-8 within ``MAX_LISTING_BYTES``; the XML declaration and the external
``<!DOCTYPE vcard-listing SYSTEM "vcard-listing.dtd">`` that real phones send (the spec's
own example has it) are removed; any other markup declaration (a DOCTYPE with an internal
subset, ``<!ENTITY``, ``<![CDATA[``...) is refused. So no entity is ever defined, and an
undefined one is a parse error. At most ``MAX_LISTING_CARDS`` cards; every handle must be
a PBAP handle (hex and ``.vcf``), because the car later sends it back as an OBEX Name.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Final

from protocol.pbap.params import bad

__all__ = ["MAX_LISTING_BYTES", "MAX_LISTING_CARDS", "parse_vcard_listing"]

MAX_LISTING_BYTES: Final = 4 * 1024 * 1024
# MaxListCount is a u16, so no phone lists more cards than this in one answer.
MAX_LISTING_CARDS: Final = 0xFFFF

_DECLARATION = re.compile(r"\A\s*<\?xml[^<>]*\?>")
_EXTERNAL_DOCTYPE = re.compile(
    r"<!DOCTYPE\s+vcard-listing\s+SYSTEM\s+(\"[^\"<>\[\]]*\"|'[^'<>\[\]]*')\s*>", re.IGNORECASE
)
_HANDLE = re.compile(r"[0-9A-Fa-f]{1,16}\.vcf")
_SLICE: Final = 64 * 1024


def _clean(data: bytes) -> str:
    if len(data) > MAX_LISTING_BYTES:
        raise bad(f"vCard listing of {len(data)} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise bad(f"vCard listing is not UTF-8 (byte {e.start})") from None
    text = _DECLARATION.sub("", text, count=1)
    text = _EXTERNAL_DOCTYPE.sub("", text, count=1)
    if "<!" in text or "<?xml" in text.lower():
        raise bad("vCard listing has a markup declaration (DOCTYPE, ENTITY, CDATA, comment)")
    return text


def parse_vcard_listing(data: bytes) -> list[tuple[str, str]]:
    """Parse a vCard listing into its cards, in the phone's order.

    Args:
        data: the body of an ``x-bt/vcard-listing`` GET.

    Returns:
        ``[(handle, name)]``; ``name`` is ``""`` when the card has none. Elements other
        than ``card`` are ignored (a newer phone may add some).

    Raises:
        PbapError: oversized, not UTF-8, a markup declaration, not well-formed XML, a root
            other than ``vCard-listing``, a card without a valid handle, a repeated handle,
            or more than ``MAX_LISTING_CARDS`` cards.
    """
    text = _clean(data)
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start",))
    cards: list[tuple[str, str]] = []
    handles: set[str] = set()
    rooted = False
    try:
        # Fed in slices so the card bound stops a huge listing before it is all parsed.
        for at in range(0, len(text) + 1, _SLICE):
            if at + _SLICE > len(text):
                parser.feed(text[at:])
                parser.close()
            else:
                parser.feed(text[at : at + _SLICE])
            for event in parser.read_events():
                elem = event[-1]
                if not isinstance(elem, ET.Element):
                    continue
                if not rooted:
                    if elem.tag != "vCard-listing":
                        raise bad(f"vCard listing root is <{str(elem.tag)[:40]}>")
                    rooted = True
                elif elem.tag == "card":
                    cards.append(_card(elem, handles))
                    if len(cards) > MAX_LISTING_CARDS:
                        raise bad(f"vCard listing of more than {MAX_LISTING_CARDS} cards")
    except ET.ParseError as e:
        raise bad(f"vCard listing is not XML: {e}") from None
    return cards


def _card(elem: ET.Element, handles: set[str]) -> tuple[str, str]:
    handle = elem.get("handle", "")
    if not _HANDLE.fullmatch(handle):
        raise bad(f"vCard listing handle {handle[:40]!r}")
    if handle.lower() in handles:
        raise bad(f"vCard listing handle {handle!r} repeated")
    handles.add(handle.lower())
    return handle, elem.get("name", "")
