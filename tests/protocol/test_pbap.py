"""PBAP layer: the Application Parameters codec, the requests, the vCard listing guards
and the pull decisions (protocol.pbap)."""

from __future__ import annotations

import pytest

from protocol import pbap
from protocol.errors import LocalProtocolError, MessageError, Reason
from protocol.pbap import (
    AppParams,
    BookState,
    Feature,
    Format,
    PbapError,
    Property,
    Tag,
    decide,
    decode_app_params,
    encode_app_params,
    pages,
    parse_vcard_listing,
    split_cards,
    split_owner,
)
from protocol.vcard import import_vcards

DB = bytes.fromhex("0123456789abcdeffedcba9876543210")
C1 = bytes(15) + b"\x01"
C2 = bytes(15) + b"\x02"
FULL = AppParams(
    order=1, search_value=b"Ann", search_property=0, max_list_count=100,
    list_start_offset=200, property_selector=int(pbap.NO_PHOTO), format=1,
    phonebook_size=2001, new_missed_calls=3, primary_version_counter=C1,
    secondary_version_counter=C2, vcard_selector=int(Property.TEL),
    database_identifier=DB, vcard_selector_operator=1, reset_new_missed_calls=1,
    supported_features=int(pbap.CAR_FEATURES),
)  # fmt: skip
SIZES = {
    Tag.ORDER: 1, Tag.SEARCH_PROPERTY: 1, Tag.MAX_LIST_COUNT: 2, Tag.LIST_START_OFFSET: 2,
    Tag.PROPERTY_SELECTOR: 8, Tag.FORMAT: 1, Tag.PHONEBOOK_SIZE: 2, Tag.NEW_MISSED_CALLS: 1,
    Tag.PRIMARY_VERSION_COUNTER: 16, Tag.SECONDARY_VERSION_COUNTER: 16,
    Tag.VCARD_SELECTOR: 8, Tag.DATABASE_IDENTIFIER: 16, Tag.VCARD_SELECTOR_OPERATOR: 1,
    Tag.RESET_NEW_MISSED_CALLS: 1, Tag.SUPPORTED_FEATURES: 4,
}  # fmt: skip


# --- Application Parameters -------------------------------------------------------------


def test_every_parameter_round_trips_in_tag_order() -> None:
    raw = encode_app_params(FULL)
    assert decode_app_params(raw) == FULL
    tags = []
    pos = 0
    while pos < len(raw):
        tags.append(raw[pos])
        pos += 2 + raw[pos + 1]
    assert tags == sorted(Tag)


def test_integers_are_big_endian_with_their_spec_length() -> None:
    assert encode_app_params(AppParams(max_list_count=0x0102)) == bytes.fromhex("04020102")
    assert encode_app_params(AppParams(phonebook_size=5)) == bytes.fromhex("08020005")
    assert encode_app_params(AppParams(property_selector=Property.PHOTO)) == bytes.fromhex(
        "06080000000000000008"
    )
    assert decode_app_params(b"") == AppParams()


@pytest.mark.parametrize("tag", sorted(SIZES))
def test_a_wrong_length_is_refused_for_every_fixed_tag(tag: Tag) -> None:
    for length in (SIZES[tag] - 1, SIZES[tag] + 1):
        with pytest.raises(PbapError, match=f"0x{tag:02x}"):
            decode_app_params(bytes((tag, length)) + bytes(length))
    assert decode_app_params(bytes((tag, SIZES[tag])) + bytes(SIZES[tag])) != AppParams()


def test_truncation_duplicates_and_reserved_format_are_refused() -> None:
    for raw in (b"\x04", b"\x04\x02\x00", b"\x08\x02\x00\x01\x0a\x10" + bytes(15)):
        with pytest.raises(PbapError):
            decode_app_params(raw)
    with pytest.raises(PbapError, match="twice"):
        decode_app_params(bytes.fromhex("0402000a0402000b"))
    with pytest.raises(PbapError, match="format"):
        decode_app_params(bytes.fromhex("070102"))
    with pytest.raises(PbapError):
        decode_app_params(bytes(pbap.MAX_APP_PARAMS + 1))


def test_the_error_is_a_message_error_with_a_reason() -> None:
    with pytest.raises(MessageError) as info:
        decode_app_params(b"\x04\x01\x00")
    assert isinstance(info.value, PbapError)
    assert info.value.reason is Reason.MALFORMED


def test_unknown_tags_are_skipped_when_well_formed() -> None:
    raw = bytes.fromhex("4003aabbcc08020007ff00")
    assert decode_app_params(raw) == AppParams(phonebook_size=7)
    with pytest.raises(PbapError):
        decode_app_params(bytes.fromhex("080200074005aabb"))  # unknown, cut short


def test_search_value_is_variable_and_may_be_empty() -> None:
    assert decode_app_params(b"\x02\x00").search_value == b""
    long = AppParams(search_value=b"x" * 255)
    assert decode_app_params(encode_app_params(long)) == long


@pytest.mark.parametrize(
    "bad",
    [
        AppParams(max_list_count=0x10000),
        AppParams(order=-1),
        AppParams(format=2),
        AppParams(database_identifier=b"short"),
        AppParams(search_value=b"x" * 256),
    ],
)
def test_encoding_a_value_that_does_not_fit_is_our_bug(bad: AppParams) -> None:
    with pytest.raises(LocalProtocolError):
        encode_app_params(bad)


# --- Bits and selectors -------------------------------------------------------------------


def test_property_and_feature_bits_follow_the_spec_table() -> None:
    assert [Property.VERSION, Property.FN, Property.N, Property.PHOTO, Property.BDAY] == [
        1, 2, 4, 8, 16,
    ]  # fmt: skip
    assert (Property.ADR, Property.LABEL, Property.TEL, Property.EMAIL) == (32, 64, 128, 256)
    assert (Property.ORG, Property.UID, Property.NICKNAME) == (1 << 16, 1 << 21, 1 << 23)
    assert (Property.X_BT_UID, Property.PROPRIETARY_FILTER) == (1 << 31, 1 << 39)
    assert (Feature.DATABASE_IDENTIFIER, Feature.FOLDER_VERSION_COUNTERS) == (4, 8)


def test_no_photo_asks_for_everything_the_importer_keeps_but_the_photo() -> None:
    from protocol.vcard import _WANTED  # what protocol.vcard reads from a card

    by_name = {str(p.name).replace("_", "-"): p for p in Property}
    for prop in _WANTED - {"PHOTO"}:
        if prop in by_name:
            assert by_name[prop] & pbap.NO_PHOTO, prop
    assert not pbap.NO_PHOTO & Property.PHOTO
    assert pbap.NO_PHOTO & Property.VERSION


def test_photo_only_keeps_what_identifies_a_contact() -> None:
    want = {Property.VERSION, Property.FN, Property.N, Property.UID, Property.X_BT_UID}
    assert all(p & pbap.PHOTO_ONLY for p in want)
    assert pbap.PHOTO_ONLY & Property.PHOTO
    assert not pbap.PHOTO_ONLY & (Property.TEL | Property.EMAIL | Property.ADR)


def test_a_card_imports_to_the_same_uid_in_both_passes() -> None:
    full = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\r\nN:Lee;Ann\r\nTEL:+3312\r\nEND:VCARD\r\n"
    photo = (
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\r\nN:Lee;Ann\r\n"
        b"PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQ\r\nEND:VCARD\r\n"
    )
    a, b = import_vcards(full).contacts[0], import_vcards(photo).contacts[0]
    assert a.uid == b.uid and b.photo and not a.photo


def test_car_features_claim_counters_and_database_identifier() -> None:
    raw = pbap.connect_app_params()
    assert raw[:2] == b"\x10\x04"
    feats = Feature(decode_app_params(raw).supported_features or 0)
    assert Feature.FOLDER_VERSION_COUNTERS in feats and Feature.DATABASE_IDENTIFIER in feats
    assert Feature.DOWNLOAD in feats


# --- Requests -----------------------------------------------------------------------------


def test_pull_phone_book_page() -> None:
    get = pbap.pull_phone_book(max_count=100, offset=200, fmt=Format.VCARD_30)
    assert (get.name, get.type) == ("telecom/pb.vcf", "x-bt/phonebook")
    params = decode_app_params(get.app_params)
    assert params == AppParams(
        max_list_count=100, list_start_offset=200, format=1,
        property_selector=int(pbap.NO_PHOTO),
    )  # fmt: skip
    first = decode_app_params(pbap.pull_phone_book(max_count=50, selector=None).app_params)
    assert first.list_start_offset is None and first.property_selector is None


def test_probe_asks_only_for_the_size() -> None:
    get = pbap.probe("telecom/cch.vcf")
    assert get.name == "telecom/cch.vcf" and get.app_params == bytes.fromhex("04020000")


def test_listing_and_entry() -> None:
    listing = pbap.pull_vcard_listing(max_count=10, order=0)
    assert (listing.name, listing.type) == ("telecom/pb", "x-bt/vcard-listing")
    assert decode_app_params(listing.app_params) == AppParams(order=0, max_list_count=10)
    entry = pbap.pull_vcard_entry("1F.vcf", fmt=Format.VCARD_21, selector=pbap.PHOTO_ONLY)
    assert (entry.name, entry.type) == ("1F.vcf", "x-bt/vcard")
    assert decode_app_params(entry.app_params).format == 0


@pytest.mark.parametrize("handle", ["../pb.vcf", "1", "x.vcf", "1.vcf/..", ""])
def test_an_entry_name_must_be_a_handle(handle: str) -> None:
    with pytest.raises(LocalProtocolError):
        pbap.pull_vcard_entry(handle)


@pytest.mark.parametrize("path", ["../pb.vcf", "telecom//pb.vcf", "telecom/pb", "/pb.vcf"])
def test_a_phone_book_path_must_be_plain(path: str) -> None:
    with pytest.raises(LocalProtocolError):
        pbap.pull_phone_book(path)


def test_set_phone_book_starts_at_the_root() -> None:
    steps = pbap.set_phone_book("telecom/pb/../ich")
    assert [(s.kind, s.name, s.flags) for s in steps] == [
        ("root", "", 2), ("child", "telecom", 2), ("child", "pb", 2), ("parent", "", 3),
        ("child", "ich", 2),
    ]  # fmt: skip
    assert [s.kind for s in pbap.set_phone_book("")] == ["root"]
    with pytest.raises(LocalProtocolError):
        pbap.set_phone_book("telecom/a b")


# --- vCard listing ------------------------------------------------------------------------

IPHONE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE vcard-listing SYSTEM "vcard-listing.dtd">\n'
    b'<vCard-listing version="1.0">\n<card handle="0.vcf" name="Lee;Ann"/>\n'
    b'<card handle="1.vcf" name="M\xc3\xbcller;J&#252;rgen &amp; Co"/>\n'
    b'<card handle="a.vcf"/>\n</vCard-listing>\n'
)


def test_a_real_listing_parses_with_its_external_doctype() -> None:
    assert parse_vcard_listing(IPHONE) == [
        ("0.vcf", "Lee;Ann"), ("1.vcf", "Müller;Jürgen & Co"), ("a.vcf", ""),
    ]  # fmt: skip
    assert parse_vcard_listing(b'<vCard-listing version="1.0"/>') == []


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b'<vCard-listing><card handle="1.vcf" name="&lol2;"/></vCard-listing>'
)
XXE = (
    b'<!DOCTYPE vcard-listing [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<vCard-listing><card handle="1.vcf" name="&x;"/></vCard-listing>'
)


@pytest.mark.parametrize(
    "data",
    [
        LAUGHS,
        XXE,
        b'<!DOCTYPE x SYSTEM "http://evil/x.dtd"><vCard-listing/>',
        b'<vCard-listing><!ENTITY a "b"></vCard-listing>',
        b'<vCard-listing><card handle="1.vcf" name="&undefined;"/></vCard-listing>',
        b"<vCard-listing><![CDATA[x]]></vCard-listing>",
        b'<vCard-listing><card handle="../../etc.vcf"/></vCard-listing>',
        b'<vCard-listing><card name="no handle"/></vCard-listing>',
        b'<vCard-listing><card handle="1.vcf"/><card handle="1.VCF"/></vCard-listing>',
        b'<other><card handle="1.vcf"/></other>',
        b'<vCard-listing><card handle="1.vcf">',
        b"",
        b"\xff\xfe<\x00v\x00",
        '<?xml version="1.0" encoding="UTF-16"?><vCard-listing/>'.encode("utf-16"),
    ],
)
def test_hostile_or_broken_listings_are_refused(data: bytes) -> None:
    with pytest.raises(PbapError):
        parse_vcard_listing(data)


def test_listing_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    cards = b"".join(b'<card handle="%x.vcf"/>' % i for i in range(11))
    doc = b"<vCard-listing>" + cards + b"</vCard-listing>"
    assert len(parse_vcard_listing(doc)) == 11
    monkeypatch.setattr(pbap.listing, "MAX_LISTING_CARDS", 10)
    with pytest.raises(PbapError, match="more than 10"):
        parse_vcard_listing(doc)
    monkeypatch.setattr(pbap.listing, "MAX_LISTING_BYTES", len(doc) - 1)
    with pytest.raises(PbapError, match="bytes"):
        parse_vcard_listing(doc)


def test_a_listing_across_many_slices_parses_whole() -> None:
    n = 3000  # about 100 KiB: more than one 64 KiB slice
    cards = b"".join(b'<card handle="%x.vcf" name="Contact number %d"/>' % (i, i) for i in range(n))
    got = parse_vcard_listing(b"<vCard-listing>" + cards + b"</vCard-listing>")
    assert len(got) == n and got[-1] == (f"{n - 1:x}.vcf", f"Contact number {n - 1}")


# --- Decisions ----------------------------------------------------------------------------

PROBE = AppParams(
    phonebook_size=10, database_identifier=DB, primary_version_counter=C1,
    secondary_version_counter=C2,
)  # fmt: skip


def test_unchanged_book_is_skipped() -> None:
    stored = BookState.from_probe(PROBE)
    assert stored == BookState(DB, C1, C2, 10)
    assert decide(stored, PROBE) == "skip"


@pytest.mark.parametrize(
    "change",
    [
        {"database_identifier": bytes(16)},
        {"primary_version_counter": C2},
        {"secondary_version_counter": C1},
        {"database_identifier": None},
        {"primary_version_counter": None},
        {"secondary_version_counter": None},
    ],
)
def test_any_changed_or_missing_counter_means_a_pull(change: dict[str, object]) -> None:
    import dataclasses

    stored = BookState.from_probe(PROBE)
    assert decide(stored, dataclasses.replace(PROBE, **change)) == "pull"  # type: ignore[arg-type]


def test_a_phone_without_counters_is_always_pulled() -> None:
    pbap11 = AppParams(phonebook_size=10)
    assert decide(BookState.from_probe(pbap11), pbap11) == "pull"
    assert decide(None, PROBE) == "pull"


def test_pages_cover_the_book_exactly() -> None:
    assert pages(250, 100) == [(0, 100), (100, 100), (200, 50)]
    assert pages(200, 100) == [(0, 100), (100, 100)]
    assert pages(0, 100) == []
    assert pages(1, 1) == [(0, 1)]
    assert pages(10**6, 0xFFFF)[-1][0] <= 0xFFFF
    for bad in ((-1, 10), (10, 0), (10, 0x10000)):
        with pytest.raises(LocalProtocolError):
            pages(*bad)


BOOK = (
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Owner\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n"
    b"begin:vcard\nversion:2.1\nFN:Bob\nAGENT:\nBEGIN:VCARD\nFN:Agent\nEND:VCARD\nend:vcard\n"
)


def test_the_owner_card_is_not_a_contact() -> None:
    blocks = split_cards(BOOK)
    assert len(blocks) == 3 and b"".join(blocks) == BOOK
    owner, contacts = split_owner(blocks)
    assert owner is not None and import_vcards(owner).contacts[0].fn == "Owner"
    names = [c.fn for c in import_vcards(b"".join(contacts)).contacts]
    assert "Owner" not in names and {"Ann", "Bob"} <= set(names)
    assert split_owner(blocks, first_index=100) == (None, blocks)
    assert split_owner([]) == (None, [])


def test_split_cards_keeps_an_unterminated_card_for_the_importer() -> None:
    assert split_cards(b"junk\r\nBEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:B") == [
        b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n", b"BEGIN:VCARD\r\nFN:B",
    ]  # fmt: skip
    assert split_cards(b"") == [] and split_cards(b"END:VCARD\n") == []
