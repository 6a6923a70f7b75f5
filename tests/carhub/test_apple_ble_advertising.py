"""The car's advertising data and scan response (PROTOCOL.md §1.2): what an iPhone and a
CarHub phone read, within the 31 bytes a real controller accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bumble.core import UUID, AdvertisingData

from carhub.ble.advertising import advertising_data, scan_response_data
from protocol.apple import AMS_SERVICE_UUID, ANCS_SERVICE_UUID
from protocol.gatt import decode_service_data

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "PROTOCOL.md"
DEVICE_ID = "0123456789abcdef"
NAMES = ["", "Car", "Dual Car", "Test Golf", "Ünïcödé Äuto", "車" * 40, "🚗" * 20, "x" * 300]


def _vector(key: str) -> str:
    m = re.search(rf"^{re.escape(key)}\s+=\s+(\"[^\"]*\"|[0-9a-f]+)\s*$", SPEC.read_text(), re.M)
    assert m, key
    return m.group(1).strip('"')


@pytest.mark.parametrize("name", NAMES)
def test_both_pdus_fit_a_legacy_pdu(name: str) -> None:
    adv = advertising_data(name)
    scan = scan_response_data(255, DEVICE_ID, pairing_open=True)
    assert len(adv) <= 31 and len(scan) <= 31
    parsed = AdvertisingData.from_bytes(adv)
    solicited = parsed.get(AdvertisingData.LIST_OF_128_BIT_SERVICE_SOLICITATION_UUIDS)
    assert solicited == [UUID(ANCS_SERVICE_UUID)]
    shown = parsed.get(AdvertisingData.COMPLETE_LOCAL_NAME)
    short = parsed.get(AdvertisingData.SHORTENED_LOCAL_NAME)
    if len(name.encode()) <= 8:
        assert (shown or "") == name and short is None
    else:
        assert shown is None and isinstance(short, str) and short and name.startswith(short)


def test_scan_response_has_ams_and_the_carhub_service_data() -> None:
    scan = AdvertisingData.from_bytes(scan_response_data(1, DEVICE_ID, pairing_open=True))
    assert scan.get(AdvertisingData.LIST_OF_128_BIT_SERVICE_SOLICITATION_UUIDS) == [
        UUID(AMS_SERVICE_UUID)
    ]
    uuid, data = scan.get(AdvertisingData.SERVICE_DATA_32_BIT_UUID)
    assert uuid == UUID.from_32_bits(0x8D3E0001)
    decoded = decode_service_data(data)
    assert (decoded.version, decoded.pairing_open, decoded.short_id) == (1, True, "01234567")
    closed = AdvertisingData.from_bytes(scan_response_data(1, DEVICE_ID, pairing_open=False))
    assert decode_service_data(closed.get(AdvertisingData.SERVICE_DATA_32_BIT_UUID)[1]).flags == 0


def test_the_protocol_vector() -> None:
    assert advertising_data(_vector("ble.name")).hex() == _vector("ble.adv_data")
    assert advertising_data(_vector("ble.short_name")).hex() == _vector("ble.adv_short")
    scan = scan_response_data(1, _vector("ble.device_id"), pairing_open=True)
    assert scan.hex() == _vector("ble.scan_response")
