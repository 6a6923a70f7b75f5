"""The info characteristic's optional ``classic`` field: the car's BD_ADDR, or absent."""

from __future__ import annotations

import json

import pytest

from protocol.errors import LocalProtocolError, MessageError
from protocol.gatt import BD_ADDR, decode_info, encode_info

INFO = {"id": "0123456789abcdef", "name": "Golf", "model": "VW", "version": 1, "lan": []}


def test_a_car_without_classic_has_none() -> None:
    assert decode_info(encode_info(INFO)).classic is None


@pytest.mark.parametrize("address", ["AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:0f"])
def test_the_classic_address_is_read_upper_case(address: str) -> None:
    info = decode_info(encode_info(dict(INFO, classic=address)))
    assert info.classic == address.upper()
    assert (info.id, info.name, info.lan) == ("0123456789abcdef", "Golf", ())


@pytest.mark.parametrize(
    "bad",
    [None, 12, "", "AA:BB:CC:DD:EE", "AA:BB:CC:DD:EE:FF:00", "AABBCCDDEEFF", "GG:BB:CC:DD:EE:FF",
     "AA-BB-CC-DD-EE-FF", " AA:BB:CC:DD:EE:FF"],
)  # fmt: skip
def test_a_malformed_classic_address_is_refused_both_ways(bad: object) -> None:
    with pytest.raises(MessageError):
        decode_info(json.dumps(dict(INFO, classic=bad)).encode())
    with pytest.raises(LocalProtocolError):
        encode_info(dict(INFO, classic=bad))


def test_bd_addr_is_six_colon_separated_hex_pairs() -> None:
    assert BD_ADDR.fullmatch("01:23:45:67:89:aB")
    assert not BD_ADDR.fullmatch("01:23:45:67:89:aB\n")
    assert not BD_ADDR.fullmatch("01:23:45:67:89")
