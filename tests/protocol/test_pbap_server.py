"""The PSE (protocol.pbap.server) against the car's OBEX client and PBAP request builders."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from phone_bridge.pbap.book import _read_cards
from protocol.obex import (
    BodyChunk,
    Connected,
    Failed,
    GetDone,
    ObexClient,
    ObexError,
    PathSet,
    ResponseCode,
)
from protocol.pbap import (
    CAR_FEATURES,
    NO_PHOTO,
    PBAP_TARGET,
    PHOTO_ONLY,
    AppParams,
    BookState,
    Feature,
    Format,
    Property,
    connect_app_params,
    decide,
    decode_app_params,
    encode_app_params,
    pages,
    parse_vcard_listing,
    probe,
    pull_phone_book,
    pull_vcard_entry,
    pull_vcard_listing,
    set_phone_book,
    split_cards,
    split_owner,
)
from protocol.pbap.cards import CounterState, card_name, filter_card, next_counters
from protocol.pbap.requests import PbapGet
from protocol.pbap.server import PSE_FEATURES, Book, PceConnected, PhoneBookServer, Served
from protocol.vcard import import_vcards

CORPUS = Path(__file__).parents[1] / "data" / "vcard"
DB = bytes.fromhex("00112233445566778899aabbccddeeff")


def card(fn: str, tel: str = "+1 555 0100", *, photo: bool = False, extra: str = "") -> bytes:
    family, _, given = fn.partition(" ")[::-1]
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{fn}", f"N:{family};{given};;;",
             f"TEL;TYPE=CELL:{tel}", f"EMAIL:{given.lower() or 'x'}@example.com"]
    if photo:
        lines += ["PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMC",
                  " AgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8Q"]
    if extra:
        lines.append(extra)
    lines.append("END:VCARD")
    return ("\r\n".join(lines) + "\r\n").encode()


def book(n: int = 5, **kw: bytes) -> Book:
    cards = [card("Emulated Owner", "+1 555 0000")]
    cards += [card(f"Person{i:03d} Test", f"+1 555 {i:04d}", photo=i % 2 == 0) for i in range(1, n)]
    counters = next_counters(None, cards)
    return Book(tuple(cards), kw.get("calls", ()), DB,  # type: ignore[arg-type]
                counters.primary_bytes(), counters.secondary_bytes())


class Pair:
    """The car's ObexClient joined to a PhoneBookServer in memory (bytes both ways)."""

    def __init__(self, b: Book, *, features: int | None = int(CAR_FEATURES),
                 client_max: int = 0xFFFF, one_byte: bool = False) -> None:
        self.server = PhoneBookServer(b)
        self.client = ObexClient(max_packet=client_max)
        self.one_byte = one_byte
        self.events: list[object] = []
        params = b"" if features is None else connect_app_params(features)
        assert isinstance(self.run(self.client.connect(PBAP_TARGET, params))[0], Connected)

    def _to_server(self, data: bytes) -> bytes:
        chunks = [data[i:i + 1] for i in range(len(data))] if self.one_byte else [data]
        for chunk in chunks:
            self.events += self.server.receive_data(chunk)
        return self.server.data_to_send()

    def run(self, request: bytes) -> list[object]:
        out: list[object] = []
        while request:
            out += self.client.receive_data(self._to_server(request))
            request = self.client.data_to_send()
        return out

    def get(self, g: PbapGet) -> tuple[int, bytes, AppParams]:
        events = self.run(self.client.get(g.name, g.type, g.app_params))
        body = b"".join(e.data for e in events if isinstance(e, BodyChunk))
        last = events[-1]
        if isinstance(last, Failed):
            return last.code, body, AppParams()
        assert isinstance(last, GetDone)
        return ResponseCode.SUCCESS, body, decode_app_params(last.app_params)


def test_probe_gives_size_counters_and_identifier_to_a_12_pce() -> None:
    b = book(7)
    code, body, p = Pair(b).get(probe())
    assert (code, body) == (ResponseCode.SUCCESS, b"")
    assert p.phonebook_size == 7
    assert p.database_identifier == DB
    assert (p.primary_version_counter, p.secondary_version_counter) == (b.primary, b.secondary)
    assert p.primary_version_counter == (1).to_bytes(16, "big")


@pytest.mark.parametrize(("features", "counters", "db"), [
    (None, False, False),  # PBAP 1.1 PCE: no PbapSupportedFeatures in CONNECT
    (int(Feature.DOWNLOAD), False, False),
    (int(Feature.DOWNLOAD | Feature.DATABASE_IDENTIFIER), False, True),
    (int(Feature.DOWNLOAD | Feature.FOLDER_VERSION_COUNTERS), True, False),
])  # fmt: skip
def test_counters_and_identifier_only_when_the_connect_asked(
    features: int | None, counters: bool, db: bool
) -> None:
    pair = Pair(book(3), features=features)
    _, _, p = pair.get(probe())
    assert p.phonebook_size == 3
    assert (p.primary_version_counter is not None) is counters
    assert (p.secondary_version_counter is not None) is counters
    assert (p.database_identifier is not None) is db
    assert pair.events[0] == PceConnected(0x03 if features is None else features)


def test_the_car_pages_the_whole_book_and_sets_the_owner_apart() -> None:
    b = book(23)
    pair = Pair(b, client_max=255)  # small packets: many Continue responses per page
    _, _, p = pair.get(probe())
    got: list[bytes] = []
    owner = None
    for offset, count in pages(p.phonebook_size or 0, 5):
        code, body, page_params = pair.get(pull_phone_book(max_count=count, offset=offset))
        assert code == ResponseCode.SUCCESS
        assert page_params.primary_version_counter == b.primary  # counters on every page
        assert page_params.phonebook_size is None  # only with MaxListCount 0
        o, contacts = split_owner(split_cards(body), first_index=offset)
        owner = owner or o
        got += contacts
    assert len(got) == 22
    assert owner is not None and b"FN:Emulated Owner" in owner
    names = [c.fn for c in import_vcards(b"".join(got)).contacts]
    assert names == [f"Person{i:03d} Test" for i in range(1, 23)]
    served = [e for e in pair.events if isinstance(e, Served)]
    assert [(s.offset, s.cards) for s in served[1:]] == [(0, 5), (5, 5), (10, 5), (15, 5), (20, 3)]


def test_an_offset_past_the_end_is_an_empty_success() -> None:
    code, body, _ = Pair(book(3)).get(pull_phone_book(offset=10, max_count=5))
    assert (code, body) == (ResponseCode.SUCCESS, b"")


def test_no_photo_leaves_photo_out_and_photo_only_keeps_identity_and_photo() -> None:
    pair = Pair(book(3))
    _, body, _ = pair.get(pull_phone_book(selector=NO_PHOTO))
    assert b"PHOTO" not in body and body.count(b"TEL;") == 3
    _, body, _ = pair.get(pull_phone_book(selector=PHOTO_ONLY))
    assert body.count(b"PHOTO;") == 1
    assert b"EMAIL" not in body  # not selected
    assert body.count(b"TEL;") == 3  # mandatory in 3.0 whatever the selector
    _, body, _ = pair.get(pull_phone_book(selector=None))
    assert body.count(b"PHOTO;") == 1 and body.count(b"EMAIL:") == 3


def test_selector_keeps_only_selected_properties_plus_the_mandatory_ones() -> None:
    c = card("Ann Lee", extra="NOTE:secret")
    got = filter_card(c, int(Property.NOTE), Format.VCARD_21)
    assert b"NOTE:secret" in got
    assert b"EMAIL" not in got and b"FN:" not in got  # FN is mandatory in 3.0 only
    assert b"N:Lee;Ann;;;" in got and b"TEL;" in got and b"VERSION:2.1\r\n" in got
    assert got.startswith(b"BEGIN:VCARD\r\n") and got.endswith(b"END:VCARD\r\n")
    assert b"FN:Ann Lee" in filter_card(c, int(Property.NOTE), Format.VCARD_30)


def test_format_rewrites_only_the_version_line() -> None:
    pair = Pair(book(2))
    _, body21, _ = pair.get(pull_phone_book(fmt=Format.VCARD_21, selector=None))
    _, body30, _ = pair.get(pull_phone_book(fmt=Format.VCARD_30, selector=None))
    assert body21.count(b"VERSION:2.1\r\n") == 2 and b"VERSION:3.0" not in body21
    assert body21.replace(b"VERSION:2.1", b"VERSION:3.0") == body30


def test_a_grouped_label_stays_with_its_selected_property() -> None:
    c = (CORPUS / "ios_grouped_label.vcf").read_bytes()
    got = filter_card(c, int(NO_PHOTO), Format.VCARD_30)
    assert b"item1.X-ABLabel:_$!<Mobile>!$_" in got and b"PHOTO" not in got
    assert b"X-SOCIALPROFILE" not in got  # no bit names it


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.vcf")), ids=lambda p: p.name)
def test_the_quirk_corpus_imports_the_same_through_the_two_passes(path: Path) -> None:
    data = path.read_bytes()
    # A BOM or UTF-16 belongs to the file, not to a card: the emulated phone's reader makes
    # the file UTF-8 cards before it serves them (phone_bridge.pbap.book), as phones do.
    cards = _read_cards(path, "contacts")
    b = Book(tuple(cards), database_id=DB)
    pair = Pair(b)
    _, first, _ = pair.get(pull_phone_book(selector=NO_PHOTO))
    _, photos, _ = pair.get(pull_phone_book(selector=PHOTO_ONLY))
    want = import_vcards(data)
    got = import_vcards(first)
    assert got.contacts == [msgspec.structs.replace(c, photo=b"") for c in want.contacts]
    with_photo = {c.uid: c.photo for c in import_vcards(photos).contacts if c.photo}
    assert with_photo == {c.uid: c.photo for c in want.contacts if c.photo}


def test_listing_parses_and_entries_come_by_handle_after_setphonebook() -> None:
    pair = Pair(book(12))
    code, body, _ = pair.get(pull_vcard_listing("telecom/pb", max_count=5, offset=9))
    assert code == ResponseCode.SUCCESS
    listing = parse_vcard_listing(body)
    assert listing == [("9.vcf", "Test;Person009;;;"), ("A.vcf", "Test;Person010;;;"),
                       ("B.vcf", "Test;Person011;;;")]
    for step in set_phone_book("telecom/pb"):
        name = None if step.kind == "parent" else step.name
        assert pair.run(pair.client.setpath(name, parent=step.kind == "parent")) == [PathSet()]
    code, entry, p = pair.get(pull_vcard_entry("A.vcf"))
    assert code == ResponseCode.SUCCESS and b"FN:Person010 Test" in entry
    assert p.database_identifier == DB
    _, all_rows, _ = pair.get(pull_vcard_listing(""))
    assert len(parse_vcard_listing(all_rows)) == 12
    _, _, p = pair.get(pull_vcard_listing("", max_count=0))
    assert p.phonebook_size == 12


def test_listing_search_and_order() -> None:
    cards = (card("Owner Me"), card("Zed Zulu", "+44 1"), card("Amy Adams", "+44 2"),
             card("Bob Brown", "+1 3"))
    pair = Pair(Book(cards))
    _, body, _ = pair.get(pull_vcard_listing(search_value=b"ada"))
    assert parse_vcard_listing(body) == [("2.vcf", "Adams;Amy;;;")]
    _, body, _ = pair.get(pull_vcard_listing(search_value=b"+44", search_property=1))
    assert [h for h, _ in parse_vcard_listing(body)] == ["1.vcf", "2.vcf"]
    _, body, _ = pair.get(pull_vcard_listing(order=1))
    assert [n.split(";")[0] for _, n in parse_vcard_listing(body)] == [
        "Adams", "Brown", "Me", "Zulu"]


def test_names_this_phone_does_not_have_are_404() -> None:
    pair = Pair(book(2))
    assert pair.get(pull_phone_book("SIM1/telecom/pb.vcf"))[0] == ResponseCode.NOT_FOUND
    assert pair.get(pull_phone_book("telecom/spd.vcf"))[0] == ResponseCode.NOT_FOUND
    assert pair.get(pull_vcard_listing("telecom/nope"))[0] == ResponseCode.NOT_FOUND
    assert pair.get(pull_vcard_entry("5.vcf"))[0] == ResponseCode.NOT_FOUND  # at the root
    events = pair.run(pair.client.setpath("nowhere"))
    assert events == [Failed(ResponseCode.NOT_FOUND, 0x85)]
    assert pair.run(pair.client.setpath(None, parent=True))[0] == Failed(
        ResponseCode.NOT_FOUND, 0x85)
    # and the session still serves
    assert pair.get(probe())[2].phonebook_size == 2


def test_bad_application_parameters_and_types_are_400() -> None:
    pair = Pair(book(2))
    bad = PbapGet("telecom/pb.vcf", "x-bt/phonebook", b"\x04\x03\x00\x00\x00")
    assert pair.get(bad)[0] == ResponseCode.BAD_REQUEST
    assert pair.get(PbapGet("telecom/pb.vcf", "x-bt/MAP-msg", b""))[0] == ResponseCode.BAD_REQUEST


def test_call_history_and_its_folders() -> None:
    def call(kind: str, name: str, when: str) -> bytes:
        return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\nN:{name};;;;\r\nTEL:+1 555\r\n"
                f"X-IRMC-CALL-DATETIME;TYPE={kind}:{when}\r\nEND:VCARD\r\n").encode()
    calls = (call("MISSED", "A", "20240102T100000"), call("DIALED", "B", "20240101T090000"),
             call("RECEIVED", "C", "20240101T080000"), call("MISSED", "D", "20231231T230000"))
    pair = Pair(book(2, calls=calls))  # type: ignore[arg-type]
    _, body, p = pair.get(pull_phone_book("telecom/cch.vcf", max_count=100))
    assert split_cards(body) == list(calls) and b"X-IRMC-CALL-DATETIME" in body
    assert p.primary_version_counter is None  # the counters describe telecom/pb only
    _, body, _ = pair.get(pull_phone_book("telecom/mch.vcf", selector=None))
    assert [card_name(c) for c in split_cards(body)] == ["A;;;;", "D;;;;"]
    _, _, p = pair.get(pull_phone_book("telecom/ich.vcf", max_count=0))
    assert p.phonebook_size == 1
    _, body, _ = pair.get(pull_phone_book("telecom/cch.vcf", selector=NO_PHOTO))
    assert body.count(b"X-IRMC-CALL-DATETIME;TYPE=") == 4  # kept though not selected


def test_requests_fed_one_byte_at_a_time() -> None:
    pair = Pair(book(6), one_byte=True, client_max=300)
    code, body, _ = pair.get(pull_phone_book(max_count=3, offset=2))
    assert code == ResponseCode.SUCCESS and len(split_cards(body)) == 3


def test_a_new_book_is_seen_by_the_next_request_and_decide_pulls() -> None:
    b = book(4)
    pair = Pair(b)
    stored = BookState.from_probe(pair.get(probe())[2])
    assert decide(stored, pair.get(probe())[2]) == "skip"
    cards = list(b.cards)
    cards[2] = cards[2].replace(b"+1 555 0002", b"+1 555 9999")
    state = next_counters(next_counters(None, b.cards), cards)
    pair.server.book = Book(tuple(cards), (), DB, state.primary_bytes(), state.secondary_bytes())
    assert decide(stored, pair.get(probe())[2]) == "pull"


def test_next_counters() -> None:
    cards = [card("Owner Me"), card("Ann Lee")]
    first = next_counters(None, cards)
    assert (first.primary, first.secondary) == (1, 1)
    assert next_counters(first, list(cards)) is first
    noted = next_counters(first, [cards[0], card("Ann Lee", extra="NOTE:hi")])
    assert (noted.primary, noted.secondary) == (2, 1)  # a note is not name/number/mail/address
    renum = next_counters(noted, [cards[0], card("Ann Lee", "+1 999", extra="NOTE:hi")])
    assert (renum.primary, renum.secondary) == (3, 2)
    gone = next_counters(renum, [cards[0]])
    assert (gone.primary, gone.secondary) == (4, 3)
    wrap = CounterState((1 << 128) - 1, 5, "x", gone.secondary_digest)
    assert next_counters(wrap, [cards[0]]).primary == 0
    assert len(first.primary_bytes()) == 16


def test_malformed_obex_is_an_obex_error() -> None:
    server = PhoneBookServer(book(2))
    with pytest.raises(ObexError):
        server.receive_data(b"\x80\x00\x02")  # a length shorter than the header


def test_pse_features_and_app_params_fit() -> None:
    assert int(PSE_FEATURES) == 0x1F
    # the largest response parameters fit any client (OBEX minimum packet 255)
    full = AppParams(phonebook_size=1, primary_version_counter=bytes(16),
                     secondary_version_counter=bytes(16), database_identifier=bytes(16))
    assert len(encode_app_params(full)) < 100
