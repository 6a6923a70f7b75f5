"""protocol.gatt: service data and info encode/decode (pure, no radio)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError, MessageError
from protocol.gatt import (
    FLAG_PAIRING_OPEN,
    CarInfo,
    decode_info,
    decode_service_data,
    encode_info,
    encode_service_data,
)

INFO = {"id": "0123456789abcdef", "name": "Golf", "model": "VW", "version": 1, "lan": []}


def test_service_data_layout_is_version_flags_short_id() -> None:
    data = encode_service_data(1, FLAG_PAIRING_OPEN, "0123456789abcdef")
    assert data == bytes.fromhex("0101" "01234567")
    decoded = decode_service_data(data)
    assert (decoded.version, decoded.pairing_open, decoded.short_id) == (1, True, "01234567")


@given(st.integers(0, 255), st.integers(0, 255), st.binary(min_size=4, max_size=4))
def test_service_data_round_trip(version: int, flags: int, short: bytes) -> None:
    decoded = decode_service_data(encode_service_data(version, flags, short))
    assert (decoded.version, decoded.flags, decoded.short_id) == (version, flags, short.hex())


@given(st.binary(max_size=5))
def test_short_service_data_is_a_message_error(data: bytes) -> None:
    with pytest.raises(MessageError):
        decode_service_data(data)


def test_bad_service_data_arguments_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        encode_service_data(256, 0, b"1234")
    with pytest.raises(LocalProtocolError):
        encode_service_data(1, 0, "not-hex-at-all")


def test_info_round_trip() -> None:
    info = dict(INFO, lan=["192.168.1.5:8443", "[fe80::1]:8443"])
    assert decode_info(encode_info(info)) == CarInfo(
        "0123456789abcdef", "Golf", "VW", 1, ("192.168.1.5:8443", "[fe80::1]:8443")
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps(dict(INFO, version=True)).encode(),
        json.dumps(dict(INFO, lan="10.0.0.1:1")).encode(),
        json.dumps({k: v for k, v in INFO.items() if k != "id"}).encode(),
        b"{" + b" " * 600 + b"}",
    ],
)
def test_bad_info_is_a_message_error(raw: bytes) -> None:
    with pytest.raises(MessageError):
        decode_info(raw)


@given(st.binary(max_size=64))
def test_info_garbage_never_raises_anything_else(raw: bytes) -> None:
    try:
        decode_info(raw)
    except MessageError:
        pass


def test_info_too_long_to_read_in_full_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        encode_info(dict(INFO, lan=["x" * 600]))
