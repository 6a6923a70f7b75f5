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

import hashlib
import re
import unicodedata

import msgspec

from protocol.contacts import Contact, Photo
from protocol.errors import VCardError
from protocol.vcard_fields import (
    APPLY,
    CardFields,
    name_from_n,
    photo,
    structured,
    type_and_label,
    unescape,
)
from protocol.vcard_lex import (
    Params,
    Prop,
    RawCard,
    Source,
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

_APPLE_LABEL = re.compile(r"_\$!<(.*)>!\$_")
_UID_HASH = hashlib.blake2b(digest_size=8, person=b"carhub-vcard-uid")
# What a card is read for: the text properties of APPLY, and PHOTO.
_WANTED = frozenset({*APPLY, "PHOTO"})


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
    memo = _Memo(source.transcoded)
    for card in iter_cards(source.lines):
        result.cards_seen += 1
        if isinstance(card, VCardError):
            result.errors.append(card)
            continue
        try:
            contact, picture = _build(card, source, result.warnings, memo)
        except VCardError as exc:
            result.errors.append(exc)
            continue
        except Exception as exc:  # the promise is "never raises": a bug becomes an error
            result.errors.append(VCardError(card.line, f"internal error: {exc!r}"))
            continue
        if picture is not None:
            result.photos.setdefault(picture.hash, picture)
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


class _Memo:
    """What one import works out once per distinct parameter text, not once per property.

    A book of 10k cards has a few dozen distinct texts (``TYPE=CELL``...). The cached
    ``Params`` are shared, so nothing here may change one.
    """

    def __init__(self, transcoded: bool) -> None:
        self.transcoded = transcoded
        self._params: dict[bytes, tuple[Params, bool, tuple[str, str]]] = {}
        self._kinds: dict[tuple[bytes, str], tuple[str, str]] = {}

    def params(self, prop: Prop) -> tuple[Params, bool, tuple[str, str]]:
        """Return ``parse_params(prop)``, whether its text is plain, and its (type, label).

        Plain: no quoted-printable, and no CHARSET that applies; ``decode_text`` then
        tries UTF-8 and falls back to cp1252. The (type, label) is for no group label.
        """
        found = self._params.get(prop.param_text)
        if found is None:
            params = parse_params(prop)
            plain = params.encoding not in ("QUOTED-PRINTABLE", "QP") and (
                not params.charset or self.transcoded
            )
            kind = type_and_label(params.types, "")
            found = self._params[prop.param_text] = (params, plain, kind)
        return found

    def kind(self, prop: Prop, params: Params, label: str) -> tuple[str, str]:
        """Return ``type_and_label(params.types, label)``."""
        key = (prop.param_text, label)
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = type_and_label(params.types, label)
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
    card = CardFields(raw.line)
    transcoded = memo.transcoded
    for prop in raw.props:
        apply = APPLY.get(prop.name)
        if apply is None and prop.name != "PHOTO":
            continue
        params, plain, kind = memo.params(prop)
        try:
            if apply is None:
                card.photo = card.photo or photo(prop, params)
                continue
            try:  # decode_text, with its usual case inline
                text = prop.raw.decode() if plain else decode_text(prop, params, transcoded)
            except UnicodeDecodeError:
                text = decode_text(prop, params, transcoded)
            if labels and prop.group in labels:
                kind = memo.kind(prop, params, labels[prop.group])
            apply(card, text, params, kind)
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


def _group_labels(
    props: list[Prop], source: Source, warnings: list[VCardError], memo: _Memo
) -> dict[str, str]:
    """Map each group (``item1``) to the text of its ``X-ABLabel``, Apple wrapper removed."""
    labels: dict[str, str] = {}
    for prop in props:
        if prop.group and prop.name == "X-ABLABEL":
            try:
                text = decode_text(prop, memo.params(prop)[0], source.transcoded)
            except VCardError as exc:
                warnings.append(exc)
                continue
            text = unescape(text).strip()
            match = _APPLE_LABEL.fullmatch(text)
            labels[prop.group] = match.group(1) if match else text
    return labels


def _derived_uid(fn: str) -> str:
    """Derive a UID from the display name, stable across exports and phone changes."""
    key = " ".join(unicodedata.normalize("NFC", fn).split()).casefold()
    digest = _UID_HASH.copy()  # a copy is cheaper than a new keyed (``person``) blake2b
    digest.update(key.encode())
    return digest.hexdigest()


def _unique(contact: Contact, seen: dict[str, int]) -> Contact:
    """Suffix the n-th repeat of a UID in one file with ``-n``."""
    count = seen.get(contact.uid, 0) + 1
    seen[contact.uid] = count
    if count == 1:
        return contact
    return msgspec.structs.replace(contact, uid=f"{contact.uid}-{count}")
