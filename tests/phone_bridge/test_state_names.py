"""The state directory remembers the phone's name, and one address holds one car."""

from __future__ import annotations

from pathlib import Path

from phone_bridge.state import PairedCar, PhoneState, default_phone_name


def test_a_name_given_once_is_the_name_from_then_on(tmp_path: Path) -> None:
    state = PhoneState(tmp_path)
    assert state.phone_name() == default_phone_name()
    assert state.phone_name("Alice's Pixel") == "Alice's Pixel"
    assert PhoneState(tmp_path).phone_name() == "Alice's Pixel"
    assert state.phone_name("Work Pixel") == "Work Pixel"
    assert PhoneState(tmp_path).phone_name(None) == "Work Pixel"


def test_a_damaged_name_file_costs_only_the_name(tmp_path: Path) -> None:
    (tmp_path / "phone.json").write_text("[not json")
    assert PhoneState(tmp_path).phone_name() == default_phone_name()
    (tmp_path / "phone.json").write_text('{"name": 7}')
    assert PhoneState(tmp_path).phone_name() == default_phone_name()


def test_an_address_belongs_to_the_last_car_met_there(tmp_path: Path) -> None:
    state = PhoneState(tmp_path)
    a = PairedCar(id="aa" * 8, name="A", public_key="11" * 32, endpoint="10.0.0.5:7000")
    b = PairedCar(id="bb" * 8, name="B", public_key="22" * 32, endpoint="10.0.0.6:7000")
    state.save_car(a)
    state.save_car(b)
    b.endpoint = "10.0.0.5:7000"  # B now answers at A's old address
    state.save_car(b)
    cars = state.cars()
    assert cars[b.id].endpoint == "10.0.0.5:7000" and cars[a.id].endpoint == ""
