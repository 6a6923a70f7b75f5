"""The emulated iPhone's inputs: the notifications file, and which advertisements it takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bumble.core import UUID, AdvertisingData

from phone_bridge.errors import BadInput
from phone_bridge.ios import load_notifications
from phone_bridge.ios.scan import matches
from protocol.apple import AMS_SERVICE_UUID, ANCS_SERVICE_UUID
from protocol.apple.ancs import Category

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "notifications.json"


def test_the_sample_file_loads() -> None:
    specs = load_notifications(SAMPLE)
    assert len(specs) >= 3
    sms = specs[0]
    assert sms.category is Category.SOCIAL and sms.positive_action == "Reply"
    assert any(s.positive_action is None and s.negative_action is None for s in specs)


@pytest.mark.parametrize(("entry", "message"), [
    ({"title": "t"}, "entry 0: 'app_id' must be a non-empty string"),
    ({"app_id": "a", "title": "t", "delay": -1}, "entry 0: 'delay' must be a number"),
    ({"app_id": "a", "title": "t", "actions": {"maybe": "x"}}, "entry 0: 'actions' must be"),
    ({"app_id": "a", "title": "t", "colour": 1}, "entry 0: unknown key(s) colour"),
])
def test_bad_entries_say_what_is_wrong(tmp_path: Path, entry: object, message: str) -> None:
    path = tmp_path / "n.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(BadInput) as info:
        load_notifications(path)
    assert message in str(info.value)


def test_not_json_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "n.json"
    path.write_text("[{")
    with pytest.raises(BadInput, match="not JSON"):
        load_notifications(path)


def adv(*entries: tuple[int, bytes]) -> AdvertisingData:
    return AdvertisingData(list(entries))


ANCS = (AdvertisingData.LIST_OF_128_BIT_SERVICE_SOLICITATION_UUIDS,
        UUID(ANCS_SERVICE_UUID).to_bytes())
AMS = (AdvertisingData.LIST_OF_128_BIT_SERVICE_SOLICITATION_UUIDS,
       UUID(AMS_SERVICE_UUID).to_bytes())
ID = (AdvertisingData.SERVICE_DATA_32_BIT_UUID, bytes.fromhex("01003e8d0100c0ffee01"))


def test_only_a_car_that_solicits_apple_services_matches() -> None:
    assert matches(adv(ANCS), None)
    assert matches(adv(AMS), None)
    assert not matches(adv((AdvertisingData.COMPLETE_LOCAL_NAME, b"Golf")), None)


def test_car_filter_by_name_shortened_name_or_id_prefix() -> None:
    named = adv(ANCS, (AdvertisingData.COMPLETE_LOCAL_NAME, b"Golf"), ID)
    assert matches(named, "golf") and not matches(named, "Polo")
    assert matches(named, "c0ff") and matches(named, "c0ffee0123456789")
    assert not matches(named, "beef")
    short = adv(ANCS, (AdvertisingData.SHORTENED_LOCAL_NAME, b"Test Gol"))
    assert matches(short, "Test Golf") and not matches(short, "Test")
