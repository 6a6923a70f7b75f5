"""A second phone cannot take over a bonded iPhone's bond: the car refuses a pairing that
distributes a bonded identity address or IRK, or that comes from a bonded identity, and the
bonded phone's keys stay as they were (it still reconnects encrypted with no code)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from carhub.ble import BleCarServer
from radio import LocalRadio
from tests.carhub.apple_ble_iphone import FakeIPhone
from tests.carhub.test_apple_ble_car import ACTIONS, NOTE, Events, bond, make_car, phone_id_of

REFUSED = "identity already bonded to another phone; unpair it first"


@dataclass
class Scene:
    air: LocalRadio
    events: Events
    car: BleCarServer
    alice: FakeIPhone
    mallory: FakeIPhone
    state: Path


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    """A car with Alice bonded and connected, and Mallory powered on nearby."""
    air, events = LocalRadio(), Events()
    car = make_car(air, events, tmp_path)
    await car.start()
    alice, mallory = FakeIPhone(air, "Alice"), FakeIPhone(air, "Mallory")
    await alice.power_on()
    alice.add_note(7, NOTE, ACTIONS)
    await mallory.power_on()
    try:
        await bond(car, events, alice)
        yield Scene(air, events, car, alice, mallory, tmp_path)
    finally:
        await mallory.close()
        await alice.close()
        await car.stop()


def bonds(state: Path) -> dict[str, Any]:
    """The car's stored bonds, by identity address."""
    db: dict[str, Any] = json.loads((state / "bonds.json").read_text())["car"]
    return db


def failures(events: Events) -> list[str]:
    return [str(v) for n, v in events.calls if n == "failed"]


async def refused(s: Scene, before: dict[str, Any]) -> None:
    """Mallory's pairing was refused with the reason, nothing stored, Alice still served."""
    pid = phone_id_of(s.alice)
    await s.events.wait(lambda: REFUSED in failures(s.events), 15)
    await s.events.wait(lambda: "disconnected" in s.mallory.log)
    assert bonds(s.state) == before  # Alice's LTK and IRK unchanged, no new bond
    assert list(s.events.bonded) == [pid]
    assert [v for n, v in s.events.calls if n == "connected"] == [("ams", "ancs")]
    assert pid in s.events.handles and "disconnected" not in s.alice.log  # not "replaced"


async def alice_reconnects_with_no_code(s: Scene) -> None:
    pid = phone_id_of(s.alice)
    await s.alice.disconnect()
    await s.events.wait(lambda: pid not in s.events.handles)
    s.alice.log.clear()
    asked = [n for n, _ in s.events.calls].count("requested")
    await s.alice.connect(s.car.address)
    await s.events.wait(lambda: pid in s.events.handles)
    assert "encrypted_bonded" in s.alice.log and "paired" not in s.alice.log, s.alice.log
    assert len(s.alice.codes) == 1
    assert [n for n, _ in s.events.calls].count("requested") == asked  # no code shown


async def test_a_phone_distributing_a_bonded_identity_address_is_refused(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    s = scene
    before = bonds(s.state)
    assert s.mallory.device is not None and s.alice.device is not None
    s.mallory.device.public_address = s.alice.device.public_address  # claims Alice's identity
    with caplog.at_level(logging.INFO, "carhub.ble.apple"):
        await s.mallory.connect(s.car.address)
        await refused(s, before)
    assert len(s.mallory.codes) == 1  # refused after the code, during key distribution
    lines = [r.getMessage() for r in caplog.records if "refused pairing" in r.getMessage()]
    assert len(lines) == 1 and "identity address" in lines[0], lines
    await alice_reconnects_with_no_code(s)


async def test_a_phone_distributing_a_bonded_irk_is_refused(scene: Scene) -> None:
    s = scene
    before = bonds(s.state)
    assert s.mallory.device is not None
    s.mallory.device.irk = s.alice.irk  # its own RPA and address, but Alice's IRK distributed
    await s.mallory.connect(s.car.address)
    await refused(s, before)
    await alice_reconnects_with_no_code(s)


async def test_a_phone_connecting_from_a_bonded_identity_cannot_pair(scene: Scene) -> None:
    s = scene
    before = bonds(s.state)
    # Mallory knows Alice's IRK: its RPA resolves to Alice's identity address on the car.
    s.mallory.irk = s.alice.irk
    await s.mallory.connect(s.car.address)
    await refused(s, before)
    assert s.mallory.codes == []  # refused at the Pairing Request: no code shown
    assert await s.mallory.keys.get_all() == []  # so no keys were exchanged at all
    assert len([n for n, _ in s.events.calls if n == "requested"]) == 1
    await alice_reconnects_with_no_code(s)


async def test_a_second_phone_still_bonds_next_to_a_bonded_one(scene: Scene) -> None:
    s = scene
    bob = FakeIPhone(s.air, "Bob")
    await bob.power_on()
    try:
        bob_id = await bond(s.car, s.events, bob)
        assert set(s.events.bonded) == {phone_id_of(s.alice), bob_id}
        assert len(bonds(s.state)) == 2 and failures(s.events) == []
        assert phone_id_of(s.alice) in s.events.handles
    finally:
        await bob.close()
