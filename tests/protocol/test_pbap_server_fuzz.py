"""Hypothesis fuzzing of the PSE: any request gets an answer, any bytes an ObexError at worst.

The emulated phone answers whatever a PCE sends; a crash would end the phone's link.
Paging is checked against the whole book: the windows of a book, joined, are the book.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.obex import GetRequest, ObexError, ResponseCode, SetPathRequest
from protocol.pbap import (
    NO_PHOTO,
    AppParams,
    Format,
    Property,
    encode_app_params,
    pages,
    pull_phone_book,
    split_cards,
)
from protocol.pbap.cards import MANDATORY, filter_card, properties
from protocol.pbap.server import Book, PhoneBookServer, answer_get, answer_setpath

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_prop = st.sampled_from([
    b"FN:A B", b"N:B;A;;;", b"TEL;TYPE=CELL:+1 2", b"EMAIL:a@b", b"NOTE:x\r\n  folded",
    b"PHOTO;ENCODING=b;TYPE=JPEG:AAAA\r\n BBBB", b"X-CUSTOM:1", b"item1.TEL:+3",
    b"item1.X-ABLabel:Car", b"ADR:;;St;;;;", b"NOTE;ENCODING=QUOTED-PRINTABLE:a=\r\nb",
    b"UID:u1", b"BDAY:2000-01-01", b"ORG:O", b"\xff\xfe junk", b"",
])  # fmt: skip
_card = st.lists(_prop, max_size=8).map(
    lambda ps: b"BEGIN:VCARD\r\nVERSION:3.0\r\n" + b"".join(p + b"\r\n" for p in ps)
    + b"END:VCARD\r\n"
)
_book = st.lists(_card, min_size=1, max_size=12).map(lambda cs: Book(tuple(cs), tuple(cs[:3])))
_u16 = st.one_of(st.none(), st.integers(0, 0xFFFF))
_app = st.builds(
    AppParams,
    order=st.one_of(st.none(), st.integers(0, 255)),
    search_value=st.one_of(st.none(), st.binary(max_size=8)),
    search_property=st.one_of(st.none(), st.integers(0, 255)),
    max_list_count=_u16,
    list_start_offset=_u16,
    property_selector=st.one_of(st.none(), st.integers(0, (1 << 64) - 1)),
    format=st.one_of(st.none(), st.sampled_from([0, 1])),
    vcard_selector=st.one_of(st.none(), st.integers(0, (1 << 64) - 1)),
    vcard_selector_operator=st.one_of(st.none(), st.integers(0, 1)),
)
_name = st.one_of(st.none(), st.sampled_from([
    "telecom/pb.vcf", "telecom/cch.vcf", "telecom/mch.vcf", "telecom/pb", "", "pb", "0.vcf",
    "5.vcf", "FFFFFFFFFFFFFFFF.vcf", "../x", "telecom/../pb.vcf",
]), st.text(max_size=12))  # fmt: skip
_type = st.one_of(st.none(), st.sampled_from(
    ["x-bt/phonebook", "x-bt/vcard-listing", "x-bt/vcard", "text/plain"]))
_folder = st.sampled_from([(), ("telecom",), ("telecom", "pb"), ("telecom", "cch")])
_codes = {ResponseCode.SUCCESS, ResponseCode.NOT_FOUND, ResponseCode.BAD_REQUEST}


@FAST
@given(_book, _name, _type, _app, _folder, st.integers(0, 0x3FF))
def test_every_request_gets_one_of_three_answers(
    book: Book, name: str | None, type_: str | None, p: AppParams,
    folder: tuple[str, ...], features: int,
) -> None:
    answer = answer_get(book, GetRequest(name, type_, encode_app_params(p)),
                        features=features, folder=folder)
    assert answer.code in _codes
    if answer.code != ResponseCode.SUCCESS:
        assert answer.body == b"" and answer.app_params == b""


@FAST
@given(_book, st.binary(max_size=40))
def test_garbage_application_parameters_are_400_never_a_crash(book: Book, raw: bytes) -> None:
    answer = answer_get(book, GetRequest("telecom/pb.vcf", "x-bt/phonebook", raw))
    assert answer.code in (ResponseCode.SUCCESS, ResponseCode.BAD_REQUEST)


@FAST
@given(_book, st.integers(1, 7), st.sampled_from([None, int(NO_PHOTO)]))
def test_the_pages_joined_are_the_whole_book(book: Book, size: int, selector: int | None) -> None:
    def body(g: object) -> bytes:
        assert hasattr(g, "name")
        req = GetRequest(g.name, g.type, g.app_params)  # type: ignore[attr-defined]
        return answer_get(book, req, features=0x0F).body

    whole = body(pull_phone_book(selector=selector))
    joined = b"".join(body(pull_phone_book(max_count=c, offset=o, selector=selector))
                      for o, c in pages(len(book.cards), size))
    assert joined == whole
    assert len(split_cards(whole)) == len(book.cards)


@FAST
@given(_card, st.integers(1, (1 << 64) - 1), st.sampled_from(list(Format)))
def test_filtered_cards_hold_only_selected_or_mandatory_properties(
    card: bytes, selector: int, fmt: Format
) -> None:
    out = filter_card(card, selector, fmt)
    allowed = {n.replace("_", "-").encode() for n, b in Property.__members__.items()
               if (selector | MANDATORY[fmt]) & b}
    for name, raw in properties(out):
        grouped = b"." in raw.split(b":")[0].split(b";")[0]
        assert name in allowed | {b"BEGIN", b"END"} or grouped
    assert filter_card(out, selector, fmt) == out  # filtering twice changes nothing


@FAST
@given(st.binary(max_size=300))
def test_garbage_bytes_raise_obex_error_only(data: bytes) -> None:
    server = PhoneBookServer(Book((b"BEGIN:VCARD\r\nEND:VCARD\r\n",)))
    try:
        server.receive_data(data)
    except ObexError:
        pass
    server.data_to_send()


@FAST
@given(st.lists(st.tuples(st.one_of(st.none(), st.text(max_size=8)), st.booleans()),
                max_size=8))
def test_setpath_stays_inside_the_tree(steps: list[tuple[str | None, bool]]) -> None:
    folder: list[str] = []
    for name, parent in steps:
        code, folder = answer_setpath(folder, SetPathRequest(name, parent, False))
        assert code in (ResponseCode.SUCCESS, ResponseCode.NOT_FOUND)
        assert len(folder) <= 2 and (not folder or folder[0] == "telecom")
