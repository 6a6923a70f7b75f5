"""The PBAP 1.2 server (PSE) of the emulated phones, sans-I/O, on ``protocol.obex``.

Theory of operation: ``PhoneBookServer`` owns an ``ObexServer`` for the PBAP target. Bytes
from the PCE go in with ``receive_data``; each ``GetRequest`` or ``SetPathRequest`` it
yields is answered at once from the current ``Book`` by the pure ``answer_get`` and
``answer_setpath``, and the responses wait in ``data_to_send``. What was served comes
back as events (``PceConnected``, ``Served``, ``PceDisconnected``) for the shell's log.

The objects: ``telecom/pb.vcf`` (the book, handle 0 the owner card), ``telecom/cch.vcf``
(the call history as given, newest first) and ``ich``/``och``/``mch`` (its received,
dialled and missed entries, by ``X-IRMC-CALL-DATETIME;TYPE=``). PullPhoneBook names are
absolute; PullvCardListing and PullvCardEntry are relative to the SetPhoneBook folder.
Responses carry the version counters and the DatabaseIdentifier only when the CONNECT's
PbapSupportedFeatures claimed those bits and the PSE has them (``pse_features``); a
CONNECT with none is a PBAP 1.1 PCE (bits 0x03, section 6.2.1), and a PBAP 1.1 PSE
(``V11_FEATURES``) sends neither whatever the CONNECT claims. Any name this phone does
not have is answered 404 Not Found; bad Application Parameters 400 Bad Request. Cards
are filtered by ``cards.filter_card``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final
from xml.sax.saxutils import quoteattr

from protocol.errors import LocalProtocolError, Reason
from protocol.obex import (
    MAX_PACKET,
    ClientConnected,
    ClientDisconnected,
    GetRequest,
    ObexServer,
    ResponseCode,
    SetPathRequest,
)
from protocol.pbap.calls import CallType, call_kind
from protocol.pbap.cards import (
    card_name,
    card_numbers,
    filter_card,
    property_bits,
)
from protocol.pbap.changes import split_cards
from protocol.pbap.params import (
    AppParams,
    Feature,
    Format,
    PbapError,
    Property,
    decode_app_params,
)
from protocol.pbap.params import encode_app_params as _encode
from protocol.pbap.requests import (
    MAX_LIST_COUNT,
    PBAP_TARGET,
    TYPE_PHONEBOOK,
    TYPE_VCARD,
    TYPE_VCARD_LISTING,
)
from protocol.vcard_lex import RawCard, front_end, iter_cards, parse_params

__all__ = [
    "PSE_FEATURES",
    "V11_FEATURES",
    "Answer",
    "Book",
    "PceConnected",
    "PceDisconnected",
    "PhoneBookServer",
    "PseEvent",
    "Served",
    "answer_get",
    "answer_setpath",
]

# What this PSE implements (the SDP record's PbapSupportedFeatures): download, browsing,
# the database identifier, folder version counters and vCard selecting.
PSE_FEATURES: Final = (
    Feature.DOWNLOAD | Feature.BROWSING | Feature.DATABASE_IDENTIFIER
    | Feature.FOLDER_VERSION_COUNTERS | Feature.VCARD_SELECTING
)  # fmt: skip
# PBAP 1.1: download and browsing only. What a PBAP 1.1 PSE implements (no
# PbapSupportedFeatures in its SDP record, as older phones and many car kits are), and what
# a CONNECT without PbapSupportedFeatures says of its PCE (section 6.2.1).
V11_FEATURES: Final = int(Feature.DOWNLOAD | Feature.BROWSING)
FOLDERS: Final = ("pb", "cch", "ich", "och", "mch")
_CALL_TYPES: Final[dict[str, CallType]] = {"ich": "incoming", "och": "outgoing", "mch": "missed"}
# A call history card keeps its date and type whatever the selector: the car's NO_PHOTO
# selector has no X-IRMC-CALL-DATETIME bit, and AOSP's PSE sends it regardless too.
_CALL_BITS: Final = int(Property.X_IRMC_CALL_DATETIME)
_HANDLE = re.compile(r"([0-9A-Fa-f]{1,16})\.vcf")
_LISTING_HEAD: Final = (
    b'<?xml version="1.0"?>\r\n<!DOCTYPE vcard-listing SYSTEM "vcard-listing.dtd">\r\n'
    b'<vCard-listing version="1.0">\r\n'
)


@dataclass(frozen=True)
class Book:
    """What the phone serves: its cards, its calls, its identifier and counters.

    ``cards`` are vCard blocks with the owner card first (handle 0); ``calls`` the call
    history cards, newest first; ``database_id``, ``primary`` and ``secondary`` the 16
    bytes sent as DatabaseIdentifier and version counters.
    """

    cards: tuple[bytes, ...]
    calls: tuple[bytes, ...] = ()
    database_id: bytes = bytes(16)
    primary: bytes = bytes(16)
    secondary: bytes = bytes(16)

    def __post_init__(self) -> None:
        for value in (self.database_id, self.primary, self.secondary):
            if len(value) != 16:
                raise LocalProtocolError(Reason.MALFORMED, "identifier/counter is not 16 bytes")

    def folder(self, name: str) -> Sequence[bytes]:
        """The cards of ``pb``, ``cch``, ``ich``, ``och`` or ``mch``."""
        if name == "pb":
            return self.cards
        if name == "cch":
            return self.calls
        kind = _CALL_TYPES[name]
        return [c for c in self.calls if _call_type(c) == kind]


def _call_type(card: bytes) -> CallType | None:
    """The type its first ``X-IRMC-CALL-DATETIME`` says (3.0 ``TYPE=`` or 2.1 bare word)."""
    for raw in iter_cards(front_end(card).lines):
        if isinstance(raw, RawCard):
            for prop in raw.props:
                if prop.name == "X-IRMC-CALL-DATETIME":
                    return call_kind(parse_params(prop))
    return None


@dataclass(frozen=True)
class Answer:
    """How to answer one request: a response code, and for Success a body and params."""

    code: int
    body: bytes = b""
    app_params: bytes = b""


@dataclass(frozen=True)
class PceConnected:
    """A PCE connected; ``features`` are its PbapSupportedFeatures (or the 1.1 default)."""

    features: int


@dataclass(frozen=True)
class Served:
    """One GET answered: ``operation`` "pull", "listing" or "entry", the path asked for,
    how many cards went out from which offset, and the response code."""

    operation: str
    path: str
    cards: int
    offset: int
    code: int


@dataclass(frozen=True)
class PceDisconnected:
    """The PCE sent OBEX DISCONNECT."""


PseEvent = PceConnected | Served | PceDisconnected


@dataclass
class _Session:
    features: int = V11_FEATURES
    folder: list[str] = field(default_factory=list)
    pse_features: int = PSE_FEATURES


def _book_params(book: Book, s: _Session, *, size: int | None, counters: bool) -> bytes:
    shared = s.features & s.pse_features
    send_counters = counters and bool(shared & Feature.FOLDER_VERSION_COUNTERS)
    return _encode(AppParams(
        phonebook_size=size,
        primary_version_counter=book.primary if send_counters else None,
        secondary_version_counter=book.secondary if send_counters else None,
        database_identifier=(
            book.database_id if shared & Feature.DATABASE_IDENTIFIER else None
        ),
    ))  # fmt: skip


def _selected(cards: Sequence[bytes], p: AppParams) -> list[tuple[int, bytes]]:
    """(handle, card) of the cards the vCardSelector lets through (all without one)."""
    indexed = list(enumerate(cards))
    if not p.vcard_selector:
        return indexed
    want = p.vcard_selector
    if p.vcard_selector_operator == 1:  # AND: every selected property present
        return [(i, c) for i, c in indexed if property_bits(c) & want == want]
    return [(i, c) for i, c in indexed if property_bits(c) & want]


def _window(items: list[tuple[int, bytes]], p: AppParams) -> list[tuple[int, bytes]]:
    start = p.list_start_offset or 0
    count = MAX_LIST_COUNT if p.max_list_count is None else p.max_list_count
    return items[start : start + count]


def _pull(book: Book, s: _Session, name: str, p: AppParams) -> Answer:
    m = re.fullmatch(r"telecom/([a-z]+)\.vcf", name)
    if m is None or m.group(1) not in FOLDERS:
        return Answer(ResponseCode.NOT_FOUND)
    items = _selected(book.folder(m.group(1)), p)
    counters = m.group(1) == "pb"
    if p.max_list_count == 0:
        return Answer(ResponseCode.SUCCESS, b"",
                      _book_params(book, s, size=len(items), counters=counters))
    fmt = Format(p.format or 0)  # absent Format is vCard 2.1 (section 5.1.4.2)
    always = 0 if counters else _CALL_BITS
    body = b"".join(
        filter_card(c, p.property_selector, fmt, always=always) for _, c in _window(items, p)
    )
    return Answer(ResponseCode.SUCCESS, body,
                  _book_params(book, s, size=None, counters=counters))


def _folder_of(s: _Session, name: str | None) -> str | None:
    """The phone book folder a relative Name points at, or None."""
    path = [*s.folder, *[part for part in (name or "").split("/") if part]]
    if len(path) == 2 and path[0] == "telecom" and path[1] in FOLDERS:
        return path[1]
    return None


def _listing(book: Book, s: _Session, name: str | None, p: AppParams) -> Answer:
    folder = _folder_of(s, name)
    if folder is None:
        return Answer(ResponseCode.NOT_FOUND)
    items = _selected(book.folder(folder), p)
    if p.search_value:
        needle = p.search_value.decode("utf-8", errors="replace").casefold()

        def hit(card: bytes) -> bool:
            fields = card_numbers(card) if p.search_property == 1 else [card_name(card)]
            return any(needle in f.casefold() for f in fields)

        items = [(i, c) for i, c in items if hit(c)]
    if p.order in (1, 2):  # alphabetical, and phonetical as alphabetical
        items.sort(key=lambda ic: card_name(ic[1]).casefold())
    counters = folder == "pb"
    if p.max_list_count == 0:
        return Answer(ResponseCode.SUCCESS, b"",
                      _book_params(book, s, size=len(items), counters=counters))
    rows = b"".join(
        b"<card handle=\"%X.vcf\" name=%s/>\r\n" % (i, quoteattr(card_name(c)).encode())
        for i, c in _window(items, p)
    )
    body = _LISTING_HEAD + rows + b"</vCard-listing>\r\n"
    return Answer(ResponseCode.SUCCESS, body,
                  _book_params(book, s, size=None, counters=counters))


def _entry(book: Book, s: _Session, name: str, p: AppParams) -> Answer:
    folder = _folder_of(s, None)
    m = _HANDLE.fullmatch(name)
    cards = book.folder(folder) if folder else ()
    if m is None or int(m.group(1), 16) >= len(cards):
        return Answer(ResponseCode.NOT_FOUND)
    always = _CALL_BITS if folder != "pb" else 0
    card = filter_card(cards[int(m.group(1), 16)], p.property_selector, Format(p.format or 0),
                       always=always)
    params = _book_params(book, s, size=None, counters=False)
    return Answer(ResponseCode.SUCCESS, card, params)


def answer_get(book: Book, request: GetRequest, *, features: int = V11_FEATURES,
               folder: Sequence[str] = (), pse_features: int = PSE_FEATURES) -> Answer:
    """Answer one PBAP GET from ``book``.

    Args:
        book: what the phone serves.
        request: the GET as ``ObexServer`` delivered it.
        features: the PCE's PbapSupportedFeatures from its CONNECT.
        folder: the current SetPhoneBook folder, as path segments (``()`` is the root).
        pse_features: what this PSE implements (``V11_FEATURES``: a PBAP 1.1 PSE).

    Returns:
        Success with the body and Application Parameters, 404 for a name this phone
        does not have, 400 for bad parameters or an unknown Type. Never raises.
    """
    s = _Session(features, list(folder), pse_features)
    try:
        p = decode_app_params(request.app_params)
    except PbapError:
        return Answer(ResponseCode.BAD_REQUEST)
    if request.type == TYPE_PHONEBOOK and request.name:
        return _pull(book, s, request.name, p)
    if request.type == TYPE_VCARD_LISTING:
        return _listing(book, s, request.name, p)
    if request.type == TYPE_VCARD and request.name:
        return _entry(book, s, request.name, p)
    return Answer(ResponseCode.BAD_REQUEST)


def answer_setpath(folder: Sequence[str], request: SetPathRequest) -> tuple[int, list[str]]:
    """Answer a SETPATH (SetPhoneBook): the response code and the new folder.

    Args:
        folder: the current folder's segments.
        request: the SETPATH; root is no/empty Name without "back up".

    Returns:
        ``(Success, new folder)``, or ``(Not Found, folder unchanged)`` for a folder this
        phone does not have or "back up" from the root.
    """
    path = list(folder)
    if request.parent:
        if not path:
            return ResponseCode.NOT_FOUND, list(folder)
        path.pop()
    elif not request.name:
        return ResponseCode.SUCCESS, []
    if request.name:
        path.append(request.name)
    known = path == [] or path == ["telecom"] or (
        len(path) == 2 and path[0] == "telecom" and path[1] in FOLDERS)
    return (ResponseCode.SUCCESS, path) if known else (ResponseCode.NOT_FOUND, list(folder))


class PhoneBookServer:
    """A PBAP PSE for one OBEX session (one RFCOMM channel).

    Args:
        book: what it serves; replace ``book`` at any time (the next request sees it).
        max_packet: the longest OBEX packet it accepts.
        pse_features: what it implements: ``PSE_FEATURES`` (PBAP 1.2) or ``V11_FEATURES``
            (PBAP 1.1: no DatabaseIdentifier, no version counters).
    """

    def __init__(self, book: Book, *, max_packet: int = MAX_PACKET,
                 pse_features: int = PSE_FEATURES) -> None:
        self.book = book
        self.pse_features = pse_features
        self.obex = ObexServer(PBAP_TARGET, max_packet=max_packet)
        self.features = V11_FEATURES
        self.folder: list[str] = []

    def data_to_send(self) -> bytes:
        """The OBEX responses queued so far."""
        return self.obex.data_to_send()

    def receive_data(self, data: bytes) -> list[PseEvent]:
        """Feed bytes from the PCE and answer every request they complete.

        Returns:
            What happened, in order.

        Raises:
            ObexError: malformed OBEX; the session is closed (the shell drops the link).
        """
        events: list[PseEvent] = []
        for event in self.obex.receive_data(data):
            if isinstance(event, ClientConnected):
                events.append(self._on_connect(event.app_params))
            elif isinstance(event, GetRequest):
                events.append(self._on_get(event))
            elif isinstance(event, SetPathRequest):
                code, self.folder = answer_setpath(self.folder, event)
                self.obex.respond(code)
            elif isinstance(event, ClientDisconnected):
                events.append(PceDisconnected())
        return events

    def _on_connect(self, raw: bytes) -> PceConnected:
        try:
            features = decode_app_params(raw).supported_features
        except PbapError:  # already accepted by OBEX: serve it as a 1.1 PCE
            features = None
        self.features = V11_FEATURES if features is None else features
        self.folder = []
        return PceConnected(self.features)

    def _on_get(self, request: GetRequest) -> Served:
        answer = answer_get(self.book, request, features=self.features, folder=self.folder,
                            pse_features=self.pse_features)
        if answer.code == ResponseCode.SUCCESS:
            self.obex.respond_get(answer.body, answer.app_params)
        else:
            self.obex.respond(answer.code)
        operation = {TYPE_PHONEBOOK: "pull", TYPE_VCARD_LISTING: "listing",
                     TYPE_VCARD: "entry"}.get(request.type or "", "unknown")
        cards = answer.body.count(b"<card ") if operation == "listing" else (
            len(split_cards(answer.body)))
        try:
            offset = decode_app_params(request.app_params).list_start_offset or 0
        except PbapError:
            offset = 0
        path = "/".join([*self.folder, request.name or ""]) if operation != "pull" else (
            request.name or "")
        return Served(operation, path, cards, offset, answer.code)
