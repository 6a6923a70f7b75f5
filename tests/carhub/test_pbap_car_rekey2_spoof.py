"""A device that claims a bonded phone's BD_ADDR (Write BD_ADDR on the emulated radio,
spoofing on real hardware) while the phone is away, with the pairing window open: the car
pairs again without deleting anything first. A rejected or unanswered code leaves the car's
bonds.json byte-identical and the real phone reconnects with no code; an accepted one
replaces the link key (LE keys kept). The request says it replaces a bond."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bumble.keys import KeyStore, PairingKeys

from carhub.apple import apple_phone_id
from carhub.ble import BleCarServer
from carhub.ble.bonds import open_keystore
from carhub.pbap import ClassicCar
from carhub.pbap.car import DECISION_TIMEOUT_S
from radio import LocalRadio
from radio.bdaddr import claim_address
from tests.carhub.pbap_car_phone import FakePbapPhone
from tests.carhub.test_pbap_car_link import CALLS, DEVICE_ID, INFO, Events, book
from tests.carhub.test_pbap_car_rekey import bonded_phone, entry


class NamedEvents(Events):
    """Events that also keep the phone name of every pairing request; ``answer`` None
    never decides (the car's decision timeout runs out)."""

    def __init__(self) -> None:
        super().__init__()
        self.requested_names: list[str] = []
        self.answer: bool | None = True

    def classic_pairing_requested(
        self,
        phone_id: str,
        phone_name: str,
        code: str,
        expires_at: float,
        decide: Callable[[bool], None],
    ) -> Callable[[], None]:
        self.requested_names.append(phone_name)
        self._note("requested", (phone_id, code))
        if self.answer is not None:
            asyncio.get_running_loop().call_soon(decide, self.answer)
        return lambda: None


@dataclass
class Car:
    air: LocalRadio
    events: NamedEvents
    keystore: KeyStore
    bonds: Path
    classic: ClassicCar


@pytest.fixture
async def car(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Car]:
    # The car's 25 s decision, shortened for the timeout case.
    monkeypatch.setattr("carhub.pbap.car.DECISION_TIMEOUT_S", 1.0)
    assert DECISION_TIMEOUT_S == 25.0
    air, events, keystore = LocalRadio(), NamedEvents(), open_keystore(tmp_path)
    classic = ClassicCar(events, keystore, page_size=500, response_timeout=1.0)

    async def on_link(_link: Any) -> None:
        return None

    server = BleCarServer(
        air, name="Golf", device_id=DEVICE_ID, info=INFO, on_link=on_link, classic=classic
    )
    await server.start()
    yield Car(air, events, keystore, tmp_path / "bonds.json", classic)
    await server.stop()


async def phone_at(car: Car, address: str, keys: list[tuple[str, PairingKeys]]) -> FakePbapPhone:
    """A phone on the air that took ``address``, holding ``keys``."""
    phone = FakePbapPhone(car.air, book=book(5), calls=CALLS)
    await phone.power_on()
    assert await claim_address(phone.device, address)
    assert phone.address == address
    assert phone.device is not None
    for name, stored in keys:
        await phone.device.keystore.update(name, stored)
    return phone


async def connect(phone: FakePbapPhone, car: Car, initiator: str) -> None:
    if initiator == "car":
        assert car.events.connector is not None
        car.events.connector(phone.address)
    else:
        await phone.connect_to(car.events.address)
    await car.events.wait_end(60)


async def victim_leaves(car: Car) -> tuple[str, list[tuple[str, PairingKeys]]]:
    """The real phone bonds (and an LE bond for it), then leaves the air; its keys kept."""
    phone = await bonded_phone(car.air, car.events, car.keystore)
    assert phone.device is not None
    keys = list(await phone.device.keystore.get_all())
    assert [k.link_key is not None for _n, k in keys] == [True]
    address = phone.address
    await phone.close()
    await asyncio.sleep(0.2)
    return address, keys


def spoof_keys(keys: list[tuple[str, PairingKeys]], how: str) -> list[tuple[str, PairingKeys]]:
    if how == "no key":
        return []
    return [(n, PairingKeys(link_key=PairingKeys.Key(secrets.token_bytes(16), True)))
            for n, _k in keys]  # fmt: skip


CASES = [
    (how, initiator, answer)
    for how in ("other key", "no key")
    for initiator in ("phone", "car")
    for answer in ("rejected", "timeout")
]


@pytest.mark.parametrize(("how", "initiator", "answer"), CASES)
async def test_spoofer_rejected_leaves_the_bond_and_the_real_phone_reconnects(
    car: Car, how: str, initiator: str, answer: str
) -> None:
    address, keys = await victim_leaves(car)
    pid = apple_phone_id(address)
    stored = car.bonds.read_bytes()
    before = await entry(car.keystore, pid)
    assert before is not None and before.link_key is not None and before.ltk is not None

    spoofer = await phone_at(car, address, spoof_keys(keys, how))
    car.events.answer = False if answer == "rejected" else None
    await connect(spoofer, car, initiator)
    names = car.events.names()
    assert names[0] == "requested" and names[-1] == "pairing_failed", car.events.calls
    assert car.bonds.read_bytes() == stored  # nothing deleted, nothing rewritten
    assert await entry(car.keystore, pid) == before
    assert car.events.requested_names[-1].endswith("(replaces its bond)")
    assert ("rejected" if answer == "rejected" else "no answer") in car.events.calls[-1][1]
    await spoofer.close()
    await asyncio.sleep(0.2)

    car.events.calls.clear()
    car.events.answer = True
    real = await phone_at(car, address, keys)
    await connect(real, car, "phone")
    assert "requested" not in car.events.names(), car.events.calls
    assert car.events.names()[0] == "connected" and real.codes == []  # no code
    assert car.events.names()[-2:] == ["skipped", "calls"]
    assert car.bonds.read_bytes() == stored
    await real.close()


@pytest.mark.parametrize("initiator", ["phone", "car"])
async def test_spoofer_accepted_replaces_the_link_key_only(car: Car, initiator: str) -> None:
    address, keys = await victim_leaves(car)
    pid = apple_phone_id(address)
    before = await entry(car.keystore, pid)
    assert before is not None and before.link_key is not None

    spoofer = await phone_at(car, address, spoof_keys(keys, "other key"))
    await connect(spoofer, car, initiator)
    names = car.events.names()
    assert names[:3] == ["requested", "bonded", "connected"], names
    assert car.events.requested_names[-1] == "Test Android (replaces its bond)"
    after = await entry(car.keystore, pid)
    assert after is not None and after.link_key is not None
    assert after.link_key.value != before.link_key.value
    assert (after.ltk, after.irk) == (before.ltk, before.irk)  # the LE bond kept
    assert spoofer.device is not None
    spoofer_keys = [k.link_key.value for _n, k in await spoofer.device.keystore.get_all()
                    if k.link_key is not None]  # fmt: skip
    assert spoofer_keys == [after.link_key.value]
    await spoofer.close()
