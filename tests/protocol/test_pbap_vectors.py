"""The PBAP hex test vectors of PROTOCOL.md section 12.2, checked both ways.

Every value is parsed from the document, rebuilt by the encoders from the inputs the text
names, and decoded back to those inputs.
"""

from __future__ import annotations

import pytest

from protocol import pbap
from protocol.pbap import AppParams, Format, decode_app_params, encode_app_params
from tests.protocol.helpers import spec_vectors

DB = bytes.fromhex("0123456789abcdeffedcba9876543210")





VECTORS = spec_vectors("pbap")
# name -> (what the car's code builds, what the bytes decode to)
EXPECTED: dict[str, tuple[bytes, AppParams]] = {
    "pbap.connect": (pbap.connect_app_params(), AppParams(supported_features=0x8F)),
    "pbap.probe_get": (pbap.probe().app_params, AppParams(max_list_count=0)),
    "pbap.paged_get": (
        pbap.pull_phone_book(max_count=100, offset=200, fmt=Format.VCARD_30).app_params,
        AppParams(
            max_list_count=100,
            list_start_offset=200,
            format=1,
            property_selector=0x80A311B7,
        ),
    ),
    "pbap.photo_get": (
        pbap.pull_phone_book(max_count=100, selector=pbap.PHOTO_ONLY).app_params,
        AppParams(max_list_count=100, format=1, property_selector=0x80A1000F),
    ),
    "pbap.connect_selecting": (
        pbap.connect_app_params(pbap.car_features(0x21F)),
        AppParams(supported_features=0x9F),
    ),
    "pbap.photo_probe_get": (
        pbap.probe(vcard_selector=pbap.PHOTO_SELECTOR).app_params,
        AppParams(max_list_count=0, vcard_selector=0x08, vcard_selector_operator=0),
    ),
    "pbap.photo_selected_get": (
        pbap.pull_phone_book(
            max_count=3, selector=pbap.PHOTO_ONLY, vcard_selector=pbap.PHOTO_SELECTOR
        ).app_params,
        AppParams(
            max_list_count=3,
            format=1,
            property_selector=0x80A1000F,
            vcard_selector=0x08,
            vcard_selector_operator=0,
        ),
    ),
    "pbap.probe_response": (
        encode_app_params(
            AppParams(
                phonebook_size=2001,
                primary_version_counter=(42).to_bytes(16, "big"),
                secondary_version_counter=(7).to_bytes(16, "big"),
                database_identifier=DB,
            )
        ),
        AppParams(
            phonebook_size=2001,
            primary_version_counter=(42).to_bytes(16, "big"),
            secondary_version_counter=(7).to_bytes(16, "big"),
            database_identifier=DB,
        ),
    ),
}


def test_the_document_has_exactly_the_vectors_checked_here() -> None:
    assert set(VECTORS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vector_both_ways(name: str) -> None:
    built, decoded = EXPECTED[name]
    assert built == VECTORS[name], f"{name}: the encoder gives {built.hex()}"
    assert decode_app_params(VECTORS[name]) == decoded


def test_the_probe_response_means_skip_only_against_itself() -> None:
    answer = decode_app_params(VECTORS["pbap.probe_response"])
    stored = pbap.BookState.from_probe(answer)
    assert pbap.decide(stored, answer) == "skip"
    bumped = decode_app_params(
        VECTORS["pbap.probe_response"].replace((42).to_bytes(16, "big"), (43).to_bytes(16, "big"))
    )
    assert pbap.decide(stored, bumped) == "pull"


def test_the_photo_probe_vector_counts_only_cards_with_a_photo_at_the_pse() -> None:
    from protocol.obex import GetRequest
    from protocol.pbap.server import Book, answer_get

    def vcard(name: str, photo: bool) -> bytes:
        extra = b"PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQ\r\n" if photo else b""
        return b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:%s\r\n%sEND:VCARD\r\n" % (name.encode(), extra)

    book = Book((vcard("Owner", False), *(vcard(f"C{i}", i in (2, 9)) for i in range(20))))
    request = GetRequest("telecom/pb.vcf", pbap.TYPE_PHONEBOOK, VECTORS["pbap.photo_probe_get"])
    answer = answer_get(book, request, features=0x9F)
    assert answer.body == b"" and decode_app_params(answer.app_params).phonebook_size == 2
