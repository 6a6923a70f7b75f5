"""One vCard property onto the contact being built: the per-property half of the importer.

``protocol.vcard`` reads a card's properties in order and, for each name in ``APPLY``,
decodes the value and calls the handler, which folds it into a ``CardFields``. Handlers
take the decoded text, the parsed parameters and the (type, label) pair already worked
out (``type_and_label``), so the per-property work is only what the value itself needs.
The rules (types, labels, escapes, structured values, birthdays, photos) are the ones
``protocol.vcard``'s docstring lists.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from protocol.contacts import Address, Email, Phone, Photo, photo_hash
from protocol.vcard_lex import Params, Prop, decode_binary

__all__ = [
    "APPLY",
    "IM_NAMES",
    "CardFields",
    "Handler",
    "name_from_n",
    "photo",
    "split_structured",
    "structured",
    "type_and_label",
    "unescape",
]

_TYPE_WORDS = {
    "CELL": "cell", "MOBILE": "cell", "IPHONE": "cell", "HOME": "home", "WORK": "work",
    "FAX": "fax", "HOMEFAX": "fax", "WORKFAX": "fax", "OTHERFAX": "fax", "PAGER": "pager",
    "MAIN": "main", "COMPANY_MAIN": "main", "OTHER": "other",
}  # fmt: skip
_TYPE_RANK = {"fax": 0, "pager": 1, "cell": 2, "main": 3, "home": 4, "work": 5, "other": 6}
# Standard words that say nothing a car shows: not a type, not a label.
_NOISE = frozenset(
    {"VOICE", "PREF", "INTERNET", "X400", "MSG", "TEXT", "DOM", "INTL", "POSTAL", "PARCEL"}
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPED = {"n": "\n", "N": "\n", ",": ",", ";": ";", "\\": "\\", ":": ":"}
_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})(?:T.*)?")
_NOYEAR = re.compile(r"--(\d{2})-?(\d{2})")
_MIME_BY_WORD = {"JPEG": "image/jpeg", "JPG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}
# Instant-messaging properties: IMPP (RFC 4770, vCard 4.0) and the X- names exporters used before.
IM_NAMES = frozenset(
    {"IMPP", "X-AIM", "X-ICQ", "X-JABBER", "X-MSN", "X-YAHOO", "X-SKYPE", "X-SKYPE-USERNAME",
     "X-GTALK", "X-GOOGLE-TALK", "X-QQ", "X-TWITTER"}
)  # fmt: skip
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?://)?")


class CardFields:
    """Accumulates one card's fields while its properties are read."""

    # Class-level defaults: most cards set only a few of these.
    fn = org = title = bday = note = uid = bt_uid = nickname = im = ""
    n: tuple[str, ...] = ()
    photo: Photo | None = None

    def __init__(self, line: int) -> None:
        self.line = line
        self.phones: list[Phone] = []
        self.emails: list[Email] = []
        self.addresses: list[Address] = []


# A handler: (card, decoded text, parameters, (type, label)).
Handler = Callable[[CardFields, str, Params, tuple[str, str]], None]


def type_and_label(words: list[str], label: str) -> tuple[str, str]:
    """Normalise TYPE words and a group label into (type, label).

    Args:
        words: the TYPE values and bare 2.1 words, as written.
        label: the group's ``X-ABLabel`` text, or "".

    Returns:
        The type (``cell home work fax pager main other`` or "") and the label.
    """
    best = ""
    for word in [*words, label]:
        upper = word.upper()
        kind = _TYPE_WORDS.get(upper) or _TYPE_WORDS.get(upper.removeprefix("X-"))
        if kind is not None:
            if not best or _TYPE_RANK[kind] < _TYPE_RANK[best]:
                best = kind
        elif word and not label and upper not in _NOISE:
            label = word[2:] if upper.startswith("X-") else word
    return best, label


def _tel(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    number = text.strip()
    if number[:4].lower() == "tel:":
        number = number[4:].strip()
    if number:
        card.phones.append(Phone(number, *kind))


def _email(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    if address := unescape(text).strip():
        card.emails.append(Email(address, *kind))


def _adr(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    parts = _components(text, 7)
    if any(parts):
        box, extended, street, locality, region, code, country = parts
        address = Address(box, extended, street, locality, region, code, country, *kind)
        card.addresses.append(address)


def _n(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    parts = _components(text, 5)
    card.n = parts if any(parts) else ()


def _org(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    card.org = ", ".join([p for p in map(str.strip, split_structured(text)) if p])


def _bday(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    card.bday = _birthday(text.strip(), params)


def _nickname(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    # A comma-separated list in 3.0 and 4.0: the first one.
    card.nickname = card.nickname or _first_of_list(text)


def _im(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    card.im = card.im or _URI_SCHEME.sub("", unescape(text).strip(), count=1).strip()


def _fn(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    card.fn = unescape(text).strip()


def _title(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    card.title = unescape(text).strip()


def _note(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    card.note = unescape(text).strip()


def _uid(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    card.uid = unescape(text).strip()


def _bt_uid(card: CardFields, text: str, params: Params, kind: tuple[str, str]) -> None:
    card.bt_uid = unescape(text).strip()


# Every property the importer reads but PHOTO (which is not text: see ``photo``).
APPLY: dict[str, Handler] = {
    "TEL": _tel, "FN": _fn, "N": _n, "EMAIL": _email, "ORG": _org, "TITLE": _title,
    "UID": _uid, "ADR": _adr, "BDAY": _bday, "NOTE": _note, "X-BT-UID": _bt_uid,
    "NICKNAME": _nickname, **dict.fromkeys(IM_NAMES, _im),
}  # fmt: skip


def photo(prop: Prop, params: Params) -> Photo | None:
    """Decode an inline photo; a URL photo is ignored (import never fetches)."""
    is_data_uri = prop.raw[:5].lower() == b"data:"
    if not (is_data_uri or params.encoding in ("B", "BASE64")):
        return None
    data = decode_binary(prop)
    if not data:
        return None
    return Photo(photo_hash(data), _mime(data, prop, params), data)


def _mime(data: bytes, prop: Prop, params: Params) -> str:
    """Pick the MIME type: magic bytes first, then what the card says."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"GIF8":
        return "image/gif"
    if prop.raw[:5].lower() == b"data:":
        declared = prop.raw[5:].split(b",", 1)[0].split(b";", 1)[0]
        return declared.decode("ascii", "replace").lower() or "application/octet-stream"
    for word in params.types:
        if "/" in word:
            return word.lower()
        if word.upper() in _MIME_BY_WORD:
            return _MIME_BY_WORD[word.upper()]
    return params.mediatype or "application/octet-stream"


def _birthday(text: str, params: Params) -> str:
    """Return an ISO date, ``--MM-DD`` without a year, or "" when unreadable."""
    if match := _DATE.fullmatch(text):
        year, month, day = match.groups()
        no_year = year == "0000" or params.other.get("X-APPLE-OMIT-YEAR") == year
        return _checked(None if no_year else year, month, day)
    if match := _NOYEAR.fullmatch(text):
        return _checked(None, *match.groups())
    return ""


def _checked(year: str | None, month: str, day: str) -> str:
    """Format a date after checking it exists (2000 stands in for an unknown year)."""
    try:
        datetime.date(int(year or "2000"), int(month), int(day))
    except ValueError:
        return ""
    return f"{year}-{month}-{day}" if year else f"--{month}-{day}"


def name_from_n(n: tuple[str, ...]) -> str:
    """Build a display name from N: prefix, given, additional, family, suffix."""
    if not n:
        return ""
    family, given, additional, prefix, suffix = n
    return " ".join(p for p in (prefix, given, additional, family, suffix) if p)


def unescape(text: str) -> str:
    """Undo vCard text escapes; an unknown escape keeps its backslash."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), text)


def split_structured(text: str) -> list[str]:
    """Split a structured value on unescaped ``;`` and unescape each component."""
    if "\\" not in text:
        return text.split(";")
    parts, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == ";":
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [unescape(p) for p in parts]


def _first_of_list(text: str) -> str:
    """Return the first non-empty item of a text list (split on unescaped ``,``)."""
    for item in re.split(r"(?<!\\),", text):
        if item := unescape(item).strip():
            return item
    return ""


def structured(text: str, size: int) -> list[str]:
    """Split a structured value into exactly ``size`` components (extras are dropped)."""
    parts = split_structured(text)[:size]
    return parts + [""] * (size - len(parts))


def _components(text: str, size: int) -> tuple[str, ...]:
    """Return ``structured(text, size)`` with each component stripped."""
    parts = split_structured(text)
    if len(parts) != size:
        parts = (parts + [""] * size)[:size]
    return tuple(map(str.strip, parts))
