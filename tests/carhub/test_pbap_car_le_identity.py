"""A phone bonded over Classic first (an iPhone that gave the car its contacts over PBAP)
can still bond over LE from the same identity address while it is on an authenticated
BR/EDR link to the car; otherwise, and for an LE bond of that address, the pairing is
refused as a takeover (carhub.ble.bonds.NumericComparisonSession, session_proxy)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from bumble.keys import PairingKeys

from carhub.ble import BleCarServer
from carhub.ble.bonds import open_keystore, session_proxy
from radio import LocalRadio
from tests.carhub.apple_ble_iphone import FakeIPhone
from tests.carhub.test_apple_ble_car import Events, bond, make_car, phone_id_of

REFUSED = "identity already bonded to another phone; unpair it first"


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[tuple[LocalRadio, Events, BleCarServer]]:
    air, events = LocalRadio(), Events()
    car = make_car(air, events, tmp_path)
    await car.start()
    try:
        yield air, events, car
    finally:
        await car.stop()


def stored(state: Path) -> dict[str, Any]:
    db: dict[str, Any] = json.loads((state / "bonds.json").read_text())["car"]
    return db


def link_key_only() -> PairingKeys:
    return PairingKeys(link_key=PairingKeys.Key(secrets.token_bytes(16), True), link_key_type=8)


async def test_a_classic_only_bond_does_not_block_le_bonding_of_the_same_identity(
    scene: Any, tmp_path: Path
) -> None:
    air, events, car = scene
    iphone = FakeIPhone(air, "Ann's iPhone")
    await iphone.power_on()
    try:
        assert iphone.device is not None
        name = str(iphone.device.public_address)
        # The car bonded this phone over Classic before (a link key and nothing else), and
        # the phone is on its authenticated BR/EDR link now.
        classic = link_key_only()
        await open_keystore(tmp_path).update(name, classic)
        live = phone_id_of(iphone)
        car._device.smp_session_proxy = session_proxy(lambda pid: pid == live)
        pid = await bond(car, events, iphone)
        assert pid == phone_id_of(iphone) and events.bonded == {pid: "Ann's iPhone"}
        assert [v for n, v in events.calls if n == "failed"] == []
        entry = stored(tmp_path)[name]
        # One identity, both bonds: the LE keys joined the Classic link key.
        assert entry["link_key"]["value"] == classic.link_key.value.hex()  # type: ignore[union-attr]
        assert "ltk" in entry or "ltk_peripheral" in entry or "ltk_central" in entry
        assert "irk" in entry
    finally:
        await iphone.close()


def le_and_link_keys() -> PairingKeys:
    keys = PairingKeys(ltk=PairingKeys.Key(secrets.token_bytes(16), True))
    keys.link_key = link_key_only().link_key
    return keys


@pytest.mark.parametrize(
    ("keys", "on_classic"),
    [(le_and_link_keys, True), (link_key_only, False)],
    ids=["an-le-bond-of-the-identity", "a-classic-only-bond-while-that-phone-is-not-on-classic"],
)
async def test_the_le_pairing_is_refused_as_a_takeover(
    scene: Any, tmp_path: Path, keys: Callable[[], PairingKeys], on_classic: bool
) -> None:
    air, events, car = scene
    iphone = FakeIPhone(air, "Mallory")
    await iphone.power_on()
    try:
        assert iphone.device is not None
        name = str(iphone.device.public_address)
        await open_keystore(tmp_path).update(name, keys())
        before = stored(tmp_path)
        # An LE bond refuses even while the phone is on Classic; a link key alone only when not.
        car._device.smp_session_proxy = session_proxy(lambda _pid: on_classic)
        await iphone.connect(car.address)
        await events.wait(lambda: REFUSED in [str(v) for n, v in events.calls if n == "failed"])
        assert events.bonded == {} and stored(tmp_path) == before
    finally:
        await iphone.close()
