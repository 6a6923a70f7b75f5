"""Discovery trusts only well-formed sightings, and a car's id cannot capture other queries."""

from __future__ import annotations

import logging

import pytest

from phone_bridge.connect import _match
from phone_bridge.discovery import CarSighting, _from_info, merge

CAR_ID = "0123456789abcdef"


class FakeInfo:
    """The parts of zeroconf's ``AsyncServiceInfo`` that ``_from_info`` reads."""

    def __init__(self, props: dict[bytes, bytes | None], addrs: list[str] | None = None) -> None:
        self.properties = props
        self.name = "carhub-x._carhub._tcp.local."
        self.port = 7800
        self._addrs = ["127.0.0.1"] if addrs is None else addrs

    def parsed_addresses(self, _version: object = None) -> list[str]:
        return self._addrs


def _props(**over: bytes | None) -> dict[bytes, bytes | None]:
    base: dict[bytes, bytes | None] = {
        b"v": b"1",
        b"id": CAR_ID.encode(),
        b"name": b"Test Car",
        b"model": b"M",
        b"pair": b"1",
        b"ble": b"",
    }
    base.update({k.encode(): v for k, v in over.items()})
    return base


def test_good_txt_record_gives_a_sighting() -> None:
    car = _from_info(FakeInfo(_props()))  # type: ignore[arg-type]
    assert car is not None
    assert (car.id, car.name, car.version, car.pairing_open, car.endpoint) == (
        CAR_ID, "Test Car", 1, True, "127.0.0.1:7800",
    )  # fmt: skip


@pytest.mark.parametrize(
    "over",
    [
        {"name": b"\xff\xfe bad utf-8"},
        {"model": b"\xc3"},
        {"v": b"one"},
        {"v": b"-1"},
        {"id": b"a"},  # a one-letter id would prefix-match every query
        {"id": CAR_ID.upper().encode()},
        {"id": (CAR_ID + "00").encode()},
        {"id": b"0123456789abcdeg"},
        {"id": None},
        {"id": "０１２３４５６７８９ａｂｃｄｅｆ".encode()},  # full-width digits: not hex
    ],
)
def test_malformed_txt_record_is_skipped(
    over: dict[str, bytes | None], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="phone_bridge.discovery"):
        assert _from_info(FakeInfo(_props(**over))) is None  # type: ignore[arg-type]
    assert any("skipping" in r.getMessage() for r in caplog.records)


def test_non_utf8_key_is_skipped() -> None:
    props = _props()
    props[b"\xff"] = b"x"
    assert _from_info(FakeInfo(props)) is None  # type: ignore[arg-type]


def test_no_address_is_skipped() -> None:
    assert _from_info(FakeInfo(_props(), addrs=[])) is None  # type: ignore[arg-type]


def test_short_id_query_matches_full_ids_but_not_the_reverse() -> None:
    # The user typed a prefix of a full id.
    assert _match("0123", CAR_ID, "Car")
    # A BLE sighting carries an 8-hex short id: a full id query matches it.
    assert _match(CAR_ID, CAR_ID[:8], "")
    # Anything else advertising a short "id" must not capture queries.
    assert not _match(CAR_ID, "a", "evil")
    assert not _match(CAR_ID, "0", "evil")
    assert not _match(CAR_ID, CAR_ID[:12], "evil")
    assert not _match("Test Car", "t", "evil")
    # Names match exactly (case-insensitively), never by prefix.
    assert _match("test car", CAR_ID, "Test Car")
    assert not _match("Test", CAR_ID, "Test Car")
    assert not _match("", CAR_ID, "")


def test_merge_needs_a_real_short_id() -> None:
    mdns = [CarSighting(id=CAR_ID, name="Car", via=["mdns"])]
    ble = [CarSighting(id="", name="Other", ble_address="AA", via=["ble"])]
    out = merge(mdns, ble)
    assert sorted(c.name for c in out) == ["Car", "Other"]
    merged = merge(
        [CarSighting(id=CAR_ID, name="Car", via=["mdns"])],
        [CarSighting(id=CAR_ID[:8], name="Car", ble_address="AA", via=["ble"])],
    )
    assert len(merged) == 1 and merged[0].via == ["ble", "mdns"] and merged[0].ble_address == "AA"
