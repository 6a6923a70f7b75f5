"""Passkey entry: a phone that declares KeyboardOnly gets Passkey Entry with the car
displaying. The car refuses it (drops the link, shows no request); and if SSP completes
anyway (the phone typed the right passkey before the drop landed), the car undoes the
link key at once: none for a new phone (LE keys of the entry kept), the previous one for
a bonded address."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from bumble import hci
from bumble.keys import PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate

from carhub.apple import apple_phone_id
from carhub.pbap.pairing import SspDelegate
from tests.carhub.pbap_car_phone import FakePbapPhone
from tests.carhub.test_pbap_car_link import CALLS, book
from tests.carhub.test_pbap_car_rekey import entry
from tests.carhub.test_pbap_car_rekey2_spoof import Car, car, phone_at, victim_leaves

__all__ = ["car"]  # the fixture

LTK = PairingKeys.Key(bytes(range(16)), True)


class Keyboard(PairingDelegate):
    """A KeyboardOnly phone that types the passkey the car displays (the best guess)."""

    def __init__(self, passkey: asyncio.Future[int]) -> None:
        super().__init__(io_capability=PairingDelegate.KEYBOARD_INPUT_ONLY)
        self.passkey = passkey

    async def get_number(self) -> int | None:
        return await asyncio.wait_for(self.passkey, 5)


async def keyboard_phone(car: Car, phone: FakePbapPhone | None = None) -> FakePbapPhone:
    """``phone`` (or a new one) made KeyboardOnly, typing what the car's host displays."""
    if phone is None:
        phone = FakePbapPhone(car.air, book=book(5), calls=CALLS)
        await phone.power_on()
    assert phone.device is not None
    passkey: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    device = car.classic._device  # the car's Bumble device (the BLE server's)
    assert device is not None
    car_host = device.host

    def shown(_address: hci.Address, number: int) -> None:
        if not passkey.done():
            passkey.set_result(number)

    car_host.on("authentication_user_passkey_notification", shown)
    phone.device.pairing_config_factory = lambda _c: PairingConfig(
        sc=True, mitm=True, bonding=True, delegate=Keyboard(passkey)
    )
    return phone


def old_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """The delegate as it was: displays the passkey and refuses nothing."""

    async def display_number(self: SspDelegate, number: int, digits: int) -> None:
        return None

    monkeypatch.setattr(SspDelegate, "display_number", display_number)


async def phone_connects(phone: FakePbapPhone, car: Car) -> None:
    """The phone connects and authenticates; Bumble cancels that when the car drops it."""
    with contextlib.suppress(asyncio.CancelledError):
        await phone.connect_to(car.events.address)


async def link_key(car: Car, address: str) -> bytes | None:
    keys = await entry(car.keystore, apple_phone_id(address))
    return keys.link_key.value if keys is not None and keys.link_key is not None else None


@pytest.mark.parametrize("initiator", ["phone", "car"])
async def test_passkey_entry_is_refused(car: Car, initiator: str) -> None:
    phone = await keyboard_phone(car)
    if initiator == "car":
        assert car.events.connector is not None
        car.events.connector(phone.address)
    else:
        await phone_connects(phone, car)
    await car.events.wait_end()
    assert car.events.names() == ["pairing_failed"]  # no code shown on the dashboard
    assert "passkey entry" in car.events.calls[0][1]
    assert await link_key(car, phone.address) is None
    assert phone.gets == []
    await asyncio.sleep(0.3)
    assert phone.device is not None and not phone.device.connections  # dropped
    await phone.close()


async def test_passkey_ssp_that_completes_leaves_no_link_key(
    car: Car, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_display(monkeypatch)
    phone = await keyboard_phone(car)
    name = str(hci.Address(phone.address, hci.Address.PUBLIC_DEVICE_ADDRESS))
    await car.keystore.update(name, PairingKeys(ltk=LTK))  # the identity's LE bond
    await phone_connects(phone, car)
    await asyncio.sleep(1.0)
    assert "requested" not in car.events.names()
    assert phone.device is not None
    phone_keys = [k.link_key for _n, k in await phone.device.keystore.get_all()]
    assert any(k is not None for k in phone_keys)  # SSP did complete: the phone has a key
    assert await link_key(car, phone.address) is None  # the car's was undone at once
    assert await entry(car.keystore, apple_phone_id(phone.address)) == PairingKeys(ltk=LTK)
    assert phone.gets == []
    assert not phone.device.connections  # dropped
    await phone.close()


async def test_passkey_ssp_at_a_bonded_address_restores_the_old_key(
    car: Car, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, _keys = await victim_leaves(car)
    before = await entry(car.keystore, apple_phone_id(address))
    assert before is not None and before.link_key is not None
    old_display(monkeypatch)
    spoofer = await keyboard_phone(car, await phone_at(car, address, []))
    await phone_connects(spoofer, car)
    await asyncio.sleep(1.0)
    assert "requested" not in car.events.names()
    assert await entry(car.keystore, apple_phone_id(address)) == before
    assert spoofer.gets == []
    await spoofer.close()
