"""vCard 2.1 / 3.0 / 4.0 import that survives real exports.

``import_vcards(data)`` turns a file's bytes into ``Contact`` values, deduplicated
``Photo`` values and a list of ``VCardError`` for the cards it could not read. It never
raises for any input and never stops at a bad card. ``protocol.vcard_lex`` is the byte
front end (encodings, line endings, folds, quoted-printable, base64); this module maps
properties onto the contact model.

Decisions worth knowing:

- Types are normalised to ``cell home work fax pager main other`` (first match in that
  order of importance: fax, pager, cell, main, home, work, other). iOS ``X-ABLabel`` on
  the same group (``item1.TEL`` + ``item1.X-ABLabel``) becomes ``label``; Apple's
  ``_$!<Mobile>!$_`` is unwrapped to ``Mobile`` and also sets the type. Unknown types
  (``TYPE=X-Sister``, ``TEL;CAR``) become the label, without an ``X-`` prefix.
- Identity: ``UID``, else ``X-BT-UID``, else 16 hex chars of blake2b over the normalised
  display name (NFC, whitespace collapsed, casefolded). A phone number change therefore
  keeps the UID. The n-th repeat of a UID in one file gets ``-n`` appended, so two
  "John Smith" cards stay two contacts and re-importing the same file gives the same UIDs.
- Display name: ``FN``, else built from ``N``, else ``NICKNAME``, else ``ORG``, else the
  first phone, else the first email, else the first IM address (``IMPP`` or ``X-AIM``,
  ``X-JABBER``, ``X-SKYPE``...; URI scheme removed). So a PBAP call-history stub (``N:``
  and one ``TEL``) is kept, named by its number, and its derived UID follows that number.
  A card with none of these is an error.
- One bad line (no ``:``, bad base64, bad quoted-printable) costs that property only: the
  card is kept without it and the line is a warning (``ImportResult.warnings``, a
  ``VCardError`` with its line). A card is skipped, with an error, only when it has no
  ``END:VCARD`` or nothing identifying is left. Cards nested inside a card are cards too.
- Text values are trimmed; ``\\n``, ``\\,``, ``\\;``, ``\\\\`` are unescaped, and structured
  values (N, ADR, ORG) are split on unescaped ``;`` only. 8-bit text with no ``CHARSET``
  that is not UTF-8 is read as Windows-1252; an unknown charset as UTF-8 with replacement.
- ``BDAY`` becomes ``YYYY-MM-DD``, or ``--MM-DD`` when the year is absent, ``0000`` or
  Apple's ``X-APPLE-OMIT-YEAR``; an unreadable birthday is dropped, not an error.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import unicodedata

import msgspec

from protocol.contacts import Address, Contact, Email, Phone, Photo, photo_hash
from protocol.errors import VCardError
from protocol.vcard_lex import (
    Params,
    Prop,
    RawCard,
    Source,
    decode_binary,
    decode_text,
    front_end,
    iter_cards,
    looks_like_vcard,
    parse_params,
)

__all__ = [
    "ImportResult",
    "import_vcards",
    "looks_like_vcard",
    "name_from_n",
    "structured",
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
_APPLE_LABEL = re.compile(r"_\$!<(.*)>!\$_")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPED = {"n": "\n", "N": "\n", ",": ",", ";": ";", "\\": "\\", ":": ":"}
_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})(?:T.*)?")
_NOYEAR = re.compile(r"--(\d{2})-?(\d{2})")
_MIME_BY_WORD = {"JPEG": "image/jpeg", "JPG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}
# Instant-messaging properties: IMPP (RFC 4770, vCard 4.0) and the X- names exporters used before.
_IM = frozenset(
    {"IMPP", "X-AIM", "X-ICQ", "X-JABBER", "X-MSN", "X-YAHOO", "X-SKYPE", "X-SKYPE-USERNAME",
     "X-GTALK", "X-GOOGLE-TALK", "X-QQ", "X-TWITTER"}
)  # fmt: skip
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?://)?")
_WANTED = frozenset(
    {"FN", "N", "ORG", "TITLE", "TEL", "EMAIL", "ADR", "BDAY", "NOTE", "PHOTO", "UID", "X-BT-UID",
     "NICKNAME", *_IM}
)  # fmt: skip


class ImportResult(msgspec.Struct):
    """What one file gave: contacts in file order, photos by SHA-256, per-card errors, and
    warnings for the lines skipped in cards that were kept."""

    contacts: list[Contact]
    photos: dict[bytes, Photo]
    errors: list[VCardError]
    cards_seen: int
    is_vcard: bool = True  # False: not a vCard file at all (nothing in it may be synced)
    warnings: list[VCardError] = msgspec.field(default_factory=list)  # skipped lines
    truncated: bool = False  # the file ends inside a card: cut short (nothing may be synced)


def import_vcards(data: bytes, *, seen: dict[str, int] | None = None) -> ImportResult:
    """Import every card in a vCard file.

    Args:
        data: the file's bytes, in any of the encodings real exporters write.
        seen: the UID repeat counts of the cards imported before (updated in place), so
            a file read in pieces (PBAP pages) gets the UIDs of one import of the whole.

    Returns:
        The contacts, photos, errors and warnings. A file that is not a vCard file at all gives no
        contacts and a single error on line 1. Never raises.
    """
    if not looks_like_vcard(data):
        return ImportResult([], {}, [VCardError(1, "not a vCard file")], 0, is_vcard=False)
    source = front_end(data)
    result = ImportResult([], {}, [], 0)
    uids: dict[str, int] = {} if seen is None else seen
    memo = _Memo()
    for card in iter_cards(source.lines):
        result.cards_seen += 1
        if isinstance(card, VCardError):
            result.errors.append(card)
            continue
        try:
            contact, photo = _build(card, source, result.warnings, memo)
        except VCardError as exc:
            result.errors.append(exc)
            continue
        except Exception as exc:  # the promise is "never raises": a bug becomes an error
            result.errors.append(VCardError(card.line, f"internal error: {exc!r}"))
            continue
        if photo is not None:
            result.photos.setdefault(photo.hash, photo)
        result.contacts.append(_unique(contact, uids))
    result.truncated = _ends_inside_card(source.lines)
    return result


def _ends_inside_card(lines: list[bytes]) -> bool:
    """Tell whether the file was cut inside a card (or inside its ``BEGIN:VCARD`` line)."""
    depth = 0  # counted, so a card nested in another (and closed) is not a cut
    for line in lines:
        if line[:1] in _MARKER_FIRST:  # cheap: most lines are properties
            word = line.strip().upper()
            if word == b"BEGIN:VCARD":
                depth += 1
            elif word == b"END:VCARD":
                depth = max(depth - 1, 0)
    last = next((line for line in reversed(lines) if line.strip()), b"")
    return depth > 0 or b"BEGIN:VCARD".startswith(last.strip().upper() or b"-")


_MARKER_FIRST = frozenset((b"B", b"b", b"E", b"e"))


class _Card:
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


class _Memo:
    """What one import works out once per distinct parameter text, not once per property.

    A book of 10k cards has a few dozen distinct texts (``TYPE=CELL``...). The cached
    ``Params`` are shared, so nothing here may change one.
    """

    def __init__(self) -> None:
        self._params: dict[bytes, Params] = {}
        self._kinds: dict[tuple[bytes, str], tuple[str, str]] = {}

    def params(self, prop: Prop) -> Params:
        """Return ``parse_params(prop)``."""
        params = self._params.get(prop.param_text)
        if params is None:
            params = self._params[prop.param_text] = parse_params(prop)
        return params

    def kind(self, prop: Prop, params: Params, label: str) -> tuple[str, str]:
        """Return ``_type_and_label(params.types, label)``."""
        key = (prop.param_text, label)
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = _type_and_label(params.types, label)
        return kind


def _build(
    raw: RawCard, source: Source, warnings: list[VCardError], memo: _Memo
) -> tuple[Contact, Photo | None]:
    """Turn a raw card into a contact (with a provisional UID) and its photo.

    A property that does not decode is left out and added to ``warnings``.
    """
    if raw.warnings:
        warnings.extend(raw.warnings)
    labels = _group_labels(raw.props, source, warnings, memo)
    card = _Card(raw.line)
    for prop in raw.props:
        if prop.name in _WANTED:
            try:
                label = labels.get(prop.group, "") if labels else ""
                _apply(card, prop, memo.params(prop), label, source, memo)
            except VCardError as exc:
                warnings.append(exc)
    fn = card.fn or name_from_n(card.n) or card.nickname or card.org
    fn = fn or (card.phones[0].number if card.phones else "")
    fn = fn or (card.emails[0].address if card.emails else "") or card.im
    if not fn:
        raise VCardError(raw.line, "card has no name, phone or email")
    contact = Contact(
        uid=card.uid or card.bt_uid or _derived_uid(fn),
        fn=fn, n=card.n, org=card.org, title=card.title, phones=tuple(card.phones),
        emails=tuple(card.emails), addresses=tuple(card.addresses), birthday=card.bday,
        note=card.note, photo=card.photo.hash if card.photo else b"",
    )  # fmt: skip
    return contact, card.photo


def _apply(
    card: _Card, prop: Prop, params: Params, label: str, source: Source, memo: _Memo
) -> None:
    """Fold one property into the card (the most frequent names first)."""
    name = prop.name
    if name == "PHOTO":
        card.photo = card.photo or _photo(prop, params)
        return
    text = decode_text(prop, params, source.transcoded)
    if name == "TEL":
        number = text.strip()
        if number[:4].lower() == "tel:":
            number = number[4:].strip()
        if number:
            card.phones.append(Phone(number, *memo.kind(prop, params, label)))
    elif name in _SCALAR:
        setattr(card, _SCALAR[name], unescape(text).strip())
    elif name == "N":
        parts = [p.strip() for p in structured(text, 5)]
        card.n = tuple(parts) if any(parts) else ()
    elif name == "EMAIL":
        if address := unescape(text).strip():
            card.emails.append(Email(address, *memo.kind(prop, params, label)))
    elif name == "ADR":
        parts = [p.strip() for p in structured(text, 7)]
        if any(parts):
            kind, label = memo.kind(prop, params, label)
            card.addresses.append(_address(parts, kind, label))
    elif name == "ORG":
        card.org = ", ".join(p.strip() for p in _split_structured(text) if p.strip())
    elif name == "BDAY":
        card.bday = _birthday(text.strip(), params)
    elif name == "NICKNAME":  # a comma-separated list in 3.0 and 4.0: the first one
        card.nickname = card.nickname or _first_of_list(text)
    else:  # one of _IM
        card.im = card.im or _URI_SCHEME.sub("", unescape(text).strip(), count=1).strip()


_SCALAR = {"FN": "fn", "TITLE": "title", "NOTE": "note", "UID": "uid", "X-BT-UID": "bt_uid"}


def _group_labels(
    props: list[Prop], source: Source, warnings: list[VCardError], memo: _Memo
) -> dict[str, str]:
    """Map each group (``item1``) to the text of its ``X-ABLabel``, Apple wrapper removed."""
    labels: dict[str, str] = {}
    for prop in props:
        if prop.group and prop.name == "X-ABLABEL":
            try:
                text = decode_text(prop, memo.params(prop), source.transcoded)
            except VCardError as exc:
                warnings.append(exc)
                continue
            text = unescape(text).strip()
            match = _APPLE_LABEL.fullmatch(text)
            labels[prop.group] = match.group(1) if match else text
    return labels


def _type_and_label(words: list[str], label: str) -> tuple[str, str]:
    """Normalise TYPE words and a group label into (type, label)."""
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


def _address(parts: list[str], kind: str, label: str) -> Address:
    """Build an Address from its seven ADR components."""
    box, extended, street, locality, region, postcode, country = parts
    return Address(box, extended, street, locality, region, postcode, country, kind, label)


def _photo(prop: Prop, params: Params) -> Photo | None:
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


def _derived_uid(fn: str) -> str:
    """Derive a UID from the display name, stable across exports and phone changes."""
    key = " ".join(unicodedata.normalize("NFC", fn).split()).casefold()
    return hashlib.blake2b(key.encode(), digest_size=8, person=b"carhub-vcard-uid").hexdigest()


def _unique(contact: Contact, seen: dict[str, int]) -> Contact:
    """Suffix the n-th repeat of a UID in one file with ``-n``."""
    count = seen.get(contact.uid, 0) + 1
    seen[contact.uid] = count
    if count == 1:
        return contact
    return msgspec.structs.replace(contact, uid=f"{contact.uid}-{count}")


def unescape(text: str) -> str:
    """Undo vCard text escapes; an unknown escape keeps its backslash."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), text)


def _split_structured(text: str) -> list[str]:
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
    parts = _split_structured(text)[:size]
    return parts + [""] * (size - len(parts))
