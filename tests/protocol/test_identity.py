"""Identity: keys, device ids, fingerprints and the pairing URI."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import PairingError, SessionError
from protocol.identity import (
    Identity,
    InvalidPeerKeyError,
    PairingUri,
    PairingUriError,
    device_id,
    fingerprint,
    short_id,
)


def test_private_bytes_round_trip_keeps_the_same_identity() -> None:
    ident = Identity.generate()
    again = Identity.from_private_bytes(ident.private_bytes())
    assert again.public_key == ident.public_key
    assert again.device_id == ident.device_id
    assert len(ident.private_bytes()) == 32 and len(ident.public_key) == 32


def test_private_key_not_in_repr() -> None:
    ident = Identity.generate()
    assert ident.private_bytes().hex() not in repr(ident)
    assert ident.device_id in repr(ident)


def test_wrong_size_private_key_refused() -> None:
    with pytest.raises(ValueError):
        Identity.from_private_bytes(b"\x01" * 31)


def test_device_id_and_short_id_shape() -> None:
    ident = Identity.generate()
    assert re.fullmatch(r"[0-9a-f]{16}", ident.device_id)
    assert short_id(ident.device_id) == bytes.fromhex(ident.device_id)[:4]
    with pytest.raises(ValueError):
        short_id("XYZ")


def test_ids_differ_between_keys_and_are_stable() -> None:
    a, b = Identity.generate(), Identity.generate()
    assert a.device_id != b.device_id and a.fingerprint != b.fingerprint
    assert device_id(a.public_key) == a.device_id
    assert fingerprint(a.public_key) == a.fingerprint


def test_fingerprint_is_eight_groups_of_four_digits() -> None:
    assert re.fullmatch(r"(\d{4} ){7}\d{4}", Identity.generate().fingerprint)


def test_dh_agrees_both_ways() -> None:
    a, b = Identity.generate(), Identity.generate()
    assert a.dh(b.public_key) == b.dh(a.public_key)


@pytest.mark.parametrize(
    "bad",
    [bytes(32), b"\x01" + bytes(31), b"\x00" * 31, b""],
    ids=["zero", "order-1", "short", "empty"],
)
def test_dh_with_bad_peer_key_is_typed(bad: bytes) -> None:
    with pytest.raises(InvalidPeerKeyError) as info:
        Identity.generate().dh(bad)
    assert isinstance(info.value, PairingError) and isinstance(info.value, SessionError)


def test_uri_round_trip_with_and_without_host() -> None:
    ident = Identity.generate()
    for host in ("", "192.168.1.20:8765", "[fe80::1]:8765", "car.local:9"):
        uri = PairingUri.create(ident, host)
        text = uri.to_uri()
        assert text.startswith("carhub://pair?v=1&id=" + ident.device_id)
        assert PairingUri.parse(text) == uri
        assert ("host=" in text) == bool(host)
        assert uri.matches(ident.public_key)
        assert not uri.matches(Identity.generate().public_key)


def test_each_uri_has_a_fresh_secret() -> None:
    ident = Identity.generate()
    assert PairingUri.create(ident).secret != PairingUri.create(ident).secret
    assert len(PairingUri.create(ident).secret) == 16


def _good() -> str:
    return PairingUri.create(Identity.generate()).to_uri()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda u: u.replace("carhub://", "http://"),
        lambda u: u.replace("//pair", "//pairing"),
        lambda u: u.replace("v=1", "v=2"),
        lambda u: re.sub(r"id=[0-9a-f]+", "id=ABC", u),
        lambda u: re.sub(r"fp=[0-9a-f]+", "fp=00ff", u),
        lambda u: re.sub(r"&s=[^&]+", "&s=!!!", u),
        lambda u: re.sub(r"&s=[^&]+", "&s=AAAA", u),
        lambda u: re.sub(r"&s=[^&]+", "", u),
        lambda u: u + "&id=0000000000000000",
        lambda u: u + "&host=a%20b",
        lambda u: "",
    ],
    ids=["scheme", "path", "version", "id", "fp-short", "s-chars", "s-short", "s-missing",
         "id-twice", "host-space", "empty"],
)
def test_bad_uri_is_a_typed_value_error(mutate: object) -> None:
    assert callable(mutate)
    with pytest.raises(PairingUriError) as info:
        PairingUri.parse(mutate(_good()))
    assert isinstance(info.value, ValueError)


def test_unknown_uri_parameters_are_ignored() -> None:
    good = _good()
    assert PairingUri.parse(good + "&future=1") == PairingUri.parse(good)


@given(st.text(max_size=300))
def test_garbage_uri_only_raises_typed_error(text: str) -> None:
    try:
        PairingUri.parse(text)
    except PairingUriError:
        pass


@given(st.text(alphabet="carhub:/?&=pairvidfsh0123456789abcdef-_%", max_size=200))
def test_near_miss_uri_only_raises_typed_error(text: str) -> None:
    try:
        PairingUri.parse("carhub://pair?" + text)
    except PairingUriError:
        pass
