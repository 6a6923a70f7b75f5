"""protocol.dnssd: the mDNS TXT record, held to PROTOCOL.md §1.1 (pure, no sockets)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.dnssd import (
    MAX_TXT_STRING,
    SERVICE_TYPE,
    TXT_KEYS,
    TxtRecord,
    decode_txt,
    encode_txt,
    instance_name,
)
from protocol.errors import LocalProtocolError, MessageError, Reason

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "PROTOCOL.md"
CAR_ID = "0123456789abcdef"
RECORD = TxtRecord(
    id=CAR_ID, name="Golf", model="VW", pairing_open=True, ble_address="C0:11:22:33:44:55"
)
# The strings a car puts on the wire for RECORD, in order (PROTOCOL.md §1.1).
VECTOR = {
    b"v": b"2",  # PROTOCOL_VERSION, the highest the car speaks
    b"id": b"0123456789abcdef",
    b"name": b"Golf",
    b"model": b"VW",
    b"pair": b"1",
    b"ble": b"C0:11:22:33:44:55",
}


def _section_1_1() -> str:
    text = SPEC.read_text(encoding="utf-8")
    return text[text.index("### 1.1 mDNS") : text.index("### 1.2")]


def test_the_keys_are_the_documented_ones_in_order() -> None:
    documented = re.findall(r"^\| `([a-z]+)` \|", _section_1_1(), flags=re.MULTILINE)
    assert tuple(documented) == TXT_KEYS
    assert list(encode_txt(RECORD)) == [k.encode() for k in documented]


def test_service_type_and_instance_are_the_documented_ones() -> None:
    section = _section_1_1()
    assert f"Service type `{SERVICE_TYPE}`" in section
    assert "instance `carhub-<id>`" in section
    assert instance_name(CAR_ID) == f"carhub-{CAR_ID}._carhub._tcp.local."


def test_fixed_vector() -> None:
    props = encode_txt(RECORD)
    assert props == VECTOR and list(props.items()) == list(VECTOR.items())
    assert decode_txt(VECTOR) == RECORD
    closed = encode_txt(TxtRecord(id=CAR_ID, name="Golf"))
    assert (closed[b"pair"], closed[b"ble"], closed[b"model"]) == (b"0", b"", b"")


_texts = st.text(max_size=40)


@given(
    st.text("0123456789abcdef", min_size=16, max_size=16),
    _texts,
    _texts,
    st.booleans(),
    _texts,
    st.integers(0, 10**6),
)
def test_round_trip(
    car_id: str, name: str, model: str, pairing: bool, ble: str, version: int
) -> None:
    record = TxtRecord(car_id, name, model, pairing, ble, version)
    assert decode_txt(encode_txt(record)) == record


@pytest.mark.parametrize(
    "over",
    [
        {b"id": b"a"},  # a one-letter id would prefix-match every query
        {b"id": b""},
        {b"id": None},
        {b"id": CAR_ID.upper().encode()},
        {b"id": (CAR_ID + "00").encode()},
        {b"id": CAR_ID[:15].encode()},
        {b"id": b"0123456789abcdeg"},
        {b"id": b" 0123456789abcdef"},
        {b"id": b"0123456789abcdef\n"},
        {b"id": "０１２３４５６７８９ａｂｃｄｅｆ".encode()},  # full-width digits: not hex
        {b"v": b"one"},
        {b"v": b"-1"},
        {b"v": b"+1"},
        {b"v": b"1.0"},
        {b"v": b" 1"},
        {b"v": "١".encode()},  # an Arabic-Indic one: a digit, but not ASCII
        {b"name": b"\xff\xfe bad utf-8"},
        {b"model": b"\xc3"},
        {b"pair": b"\x80"},
        {b"ble": b"\xc0\xaf"},  # an overlong encoding of "/"
        {b"\xff": b"x"},  # a key that is not UTF-8, even an unknown one
    ],
)
def test_every_malformed_field_is_a_clean_message_error(over: dict[bytes, bytes | None]) -> None:
    props: dict[bytes, bytes | None] = {**VECTOR, **over}
    with pytest.raises(MessageError) as info:
        decode_txt(props)
    assert info.value.reason is Reason.MALFORMED


def test_missing_id_is_malformed() -> None:
    props = {k: v for k, v in VECTOR.items() if k != b"id"}
    with pytest.raises(MessageError):
        decode_txt(props)


def test_absent_optional_keys_read_as_defaults() -> None:
    record = decode_txt({b"id": CAR_ID.encode()}, default_name="carhub-x")
    assert record == TxtRecord(id=CAR_ID, name="carhub-x", version=0)
    # A key without "=" (zeroconf gives None) reads as empty; an empty v as version 0.
    bare = decode_txt({**VECTOR, b"v": b"", b"name": None, b"pair": None})
    assert (bare.version, bare.name, bare.pairing_open) == (0, "", False)


def test_pair_is_open_only_for_exactly_one() -> None:
    for value in (b"0", b"", b"true", b"01", b"yes"):
        assert not decode_txt({**VECTOR, b"pair": value}).pairing_open


def test_unknown_keys_are_ignored() -> None:
    assert decode_txt({**VECTOR, b"future": b"x", b"flag": None}) == RECORD


@given(
    st.dictionaries(
        st.sampled_from([k.encode() for k in TXT_KEYS]) | st.binary(max_size=8),
        st.none() | st.binary(max_size=24),
        max_size=8,
    )
)
def test_garbage_never_raises_anything_else(props: dict[bytes, bytes | None]) -> None:
    try:
        decode_txt(props)
    except MessageError:
        pass


@pytest.mark.parametrize(
    "record",
    [
        TxtRecord(id="a", name="x"),
        TxtRecord(id=CAR_ID.upper(), name="x"),
        TxtRecord(id=CAR_ID, name="x", version=-1),
        TxtRecord(id=CAR_ID, name="n" * (MAX_TXT_STRING - len("name=") + 1)),
        TxtRecord(id=CAR_ID, name="x", model="é" * 125),  # 6 + 250 bytes
    ],
)
def test_a_record_the_wire_cannot_carry_is_a_local_error(record: TxtRecord) -> None:
    with pytest.raises(LocalProtocolError):
        encode_txt(record)


def test_the_longest_string_fits() -> None:
    name = "n" * (MAX_TXT_STRING - len("name="))
    props = encode_txt(TxtRecord(id=CAR_ID, name=name))
    assert len(b"name=" + props[b"name"]) == MAX_TXT_STRING
    assert decode_txt(props).name == name
