"""Hypothesis fuzzing of the PBAP decoders: bad bytes raise PbapError only.

The car decodes whatever a phone (or anything claiming to be one) sends in Application
Parameters and vCard listings; any other exception would crash the pull. Sizes are small
so the file runs in a few seconds.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.pbap import (
    AppParams,
    PbapError,
    Tag,
    decode_app_params,
    encode_app_params,
    parse_vcard_listing,
    split_cards,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Well-formed TLVs with plausible tags (known and not) and any lengths, then mutated.
_tlv = st.builds(
    lambda tag, value: bytes((tag, len(value))) + value,
    st.one_of(st.sampled_from(list(Tag)), st.integers(0, 255)),
    st.binary(max_size=20),
)
_params = st.lists(_tlv, max_size=8).map(b"".join)


def _decode_or_refuse(data: bytes) -> None:
    try:
        params = decode_app_params(data)
    except PbapError as e:
        assert e.detail
        return
    # Whatever was accepted re-encodes to something that decodes to the same values.
    assert isinstance(params, AppParams)
    assert decode_app_params(encode_app_params(params)) == params


@FAST
@given(st.binary(max_size=64))
def test_random_bytes(data: bytes) -> None:
    _decode_or_refuse(data)


@FAST
@given(_params, st.integers(0, 200), st.binary(max_size=3))
def test_tlv_shaped_bytes_cut_and_spliced(data: bytes, cut: int, tail: bytes) -> None:
    _decode_or_refuse(data)
    _decode_or_refuse(data[:cut] + tail)


_name = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_handle = st.one_of(
    st.integers(0, 0xFFFF).map(lambda i: f"{i:x}.vcf"),
    st.text(max_size=8),
)
_card = st.builds(
    lambda h, n: f'<card handle="{h}" name="{n}"/>',
    _handle,
    _name,
)
_junk = st.sampled_from(
    [
        "<!DOCTYPE x [<!ENTITY a 'b'>]>", "&a;", "&amp;", "<!--c-->", "<![CDATA[x]]>",
        "<?xml version='1.0'?>", "<card>", "</vCard-listing>", '"', "<", ">", "\x00", "&#0;",
        '<!DOCTYPE vcard-listing SYSTEM "vcard-listing.dtd">',
    ]
)  # fmt: skip
_listing = st.builds(
    lambda head, cards, junk, at: (
        lambda doc: (doc[:at] + junk + doc[at:]).encode("utf-8", "replace")
    )(head + '<vCard-listing version="1.0">' + "".join(cards) + "</vCard-listing>"),
    st.sampled_from(["", '<?xml version="1.0"?>', '<!DOCTYPE vcard-listing SYSTEM "x.dtd">']),
    st.lists(_card, max_size=6),
    st.one_of(st.just(""), _junk),
    st.integers(0, 300),
)


@FAST
@given(st.one_of(_listing, st.binary(max_size=200)))
def test_vcard_listing_refuses_only_with_pbap_error(data: bytes) -> None:
    try:
        cards = parse_vcard_listing(data)
    except PbapError:
        return
    assert len(cards) <= 6
    for handle, name in cards:
        assert handle.lower().endswith(".vcf") and "/" not in handle
        assert isinstance(name, str)


@FAST
@given(st.binary(max_size=200), st.lists(st.sampled_from([b"BEGIN:VCARD\r\n", b"END:VCARD\n"])))
def test_split_cards_never_raises_and_loses_no_card_bytes(junk: bytes, marks: list[bytes]) -> None:
    body = junk + b"".join(marks)
    blocks = split_cards(body)
    assert all(b in body for b in blocks)
    assert sum(map(len, blocks)) <= len(body)
