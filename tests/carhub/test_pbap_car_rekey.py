"""A bonded phone that forgot the car (its link key deleted, or replaced by another one):
with the pairing window closed the car refuses it and keeps its own key; with the window
open it pairs again with a code, and the accepted pairing replaces its link key (only the
link key: LE keys of the same identity stay), then pulls. On a LocalRadio,
whose controllers check stored link keys."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bumble.keys import KeyStore, MemoryKeyStore, PairingKeys

from carhub.apple import apple_phone_id
from carhub.ble import BleCarServer
from carhub.ble.bonds import CarKeyStore, open_keystore
from carhub.pbap import ClassicCar
from carhub.pbap.pairing import PHONE_LOST_KEY, forget_link_key
from radio import LocalRadio
from tests.carhub.pbap_car_phone import FakePbapPhone
from tests.carhub.test_pbap_car_link import CALLS, DEVICE_ID, INFO, Events, book

LTK = PairingKeys.Key(bytes(range(16)), True)
IRK = PairingKeys.Key(bytes(range(16, 32)), True)


@pytest.fixture
async def car(tmp_path: Path) -> AsyncIterator[tuple[LocalRadio, Events, KeyStore]]:
    """A car whose bonds live in STATE/bonds.json, as with ``carhub run``."""
    air, events, keystore = LocalRadio(), Events(), open_keystore(tmp_path)
    classic = ClassicCar(events, keystore, page_size=500, response_timeout=1.0)

    async def on_link(_link: Any) -> None:
        return None

    server = BleCarServer(
        air, name="Golf", device_id=DEVICE_ID, info=INFO, on_link=on_link, classic=classic
    )
    await server.start()
    yield air, events, keystore
    await server.stop()


async def entry(keystore: KeyStore, phone_id: str) -> PairingKeys | None:
    for name, keys in await keystore.get_all():
        if apple_phone_id(name) == phone_id:
            return keys
    return None


async def bonded_phone(air: LocalRadio, events: Events, keystore: KeyStore) -> FakePbapPhone:
    """A phone paired (window open) and pulled once, then disconnected; LE keys added."""
    phone = FakePbapPhone(air, book=book(5), calls=CALLS)
    await phone.power_on()
    await phone.connect_to(events.address)
    await events.wait_end()
    assert events.names()[-1] == "done"
    await phone.disconnect()
    await asyncio.sleep(0.1)
    # The same identity bonded over LE too (an iPhone): those keys must survive.
    name = next(n for n, _k in await keystore.get_all())
    await keystore.update(name, PairingKeys(ltk=LTK, irk=IRK))
    events.calls.clear()
    return phone


async def forget(phone: FakePbapPhone, how: str) -> None:
    assert phone.device is not None
    keys: MemoryKeyStore = phone.device.keystore
    if how == "forgot":  # reset, or "Forget this device" in the phone's settings
        await keys.delete_all()
        return
    for name, stored in await keys.get_all():  # re-paired with another car at this address
        stored.link_key = PairingKeys.Key(secrets.token_bytes(16), True)
        await keys.update(name, stored)


async def reconnect(phone: FakePbapPhone, events: Events, initiator: str) -> None:
    if initiator == "car":
        assert events.connector is not None
        events.connector(phone.address)
    else:
        await phone.connect_to(events.address)
    await events.wait_end()


CASES = [("forgot", "car"), ("forgot", "phone"), ("other key", "car"), ("other key", "phone")]


@pytest.mark.parametrize(("how", "initiator"), CASES)
async def test_window_closed_refuses_and_keeps_the_cars_key(
    car: Any, how: str, initiator: str
) -> None:
    air, events, keystore = car
    phone = await bonded_phone(air, events, keystore)
    pid = apple_phone_id(phone.address)
    before = await entry(keystore, pid)
    pulled = len(phone.gets)
    await forget(phone, how)
    events.may_bond = False
    await reconnect(phone, events, initiator)
    assert events.calls == [("pairing_failed", PHONE_LOST_KEY)]
    assert await entry(keystore, pid) == before  # link key and LE keys as they were
    assert len(phone.gets) == pulled  # nothing pulled
    await asyncio.sleep(0.2)
    assert phone.device is not None and not phone.device.connections  # dropped
    await phone.close()


@pytest.mark.parametrize(("how", "initiator"), CASES)
async def test_window_open_pairs_again_with_a_code_and_pulls(
    car: Any, how: str, initiator: str
) -> None:
    air, events, keystore = car
    phone = await bonded_phone(air, events, keystore)
    pid = apple_phone_id(phone.address)
    before = await entry(keystore, pid)
    assert before is not None and before.link_key is not None
    await forget(phone, how)
    await reconnect(phone, events, initiator)
    names = events.names()
    assert names[:3] == ["requested", "bonded", "connected"], names
    assert names[-2:] == ["skipped", "calls"]  # the book had not changed
    assert events.calls[0][1][1] == phone.codes[-1]  # the same code on both sides
    after = await entry(keystore, pid)
    assert after is not None and after.link_key is not None
    assert after.link_key.value != before.link_key.value  # a new bond
    assert (after.ltk, after.irk) == (LTK, IRK)  # the LE bond of the identity kept
    assert phone.device is not None
    phone_keys = [k.link_key for _n, k in await phone.device.keystore.get_all()]
    assert [k.value for k in phone_keys if k is not None] == [after.link_key.value]
    await phone.close()


@pytest.mark.parametrize("store", ["json", "memory"])
async def test_forget_link_key_keeps_le_keys_and_other_phones(tmp_path: Path, store: str) -> None:
    keystore: KeyStore = MemoryKeyStore()
    if store == "json":  # Bumble's JsonKeyStore merges on update; the memory one replaces
        keystore = CarKeyStore("car", str(tmp_path / "b.json"))
    link = PairingKeys.Key(b"\x01" * 16, True)
    await keystore.update("00:CA:48:00:00:01/P", PairingKeys(ltk=LTK, irk=IRK, link_key=link))
    await keystore.update("00:CA:48:00:00:02/P", PairingKeys(link_key=link, link_key_type=8))
    await keystore.update("00:CA:48:00:00:03/P", PairingKeys(link_key=link))
    assert await forget_link_key(keystore, "00ca48000001")
    assert await forget_link_key(keystore, "00ca48000002")
    assert not await forget_link_key(keystore, "00ca48000002")  # nothing left to delete
    assert dict(await keystore.get_all()) == {
        "00:CA:48:00:00:01/P": PairingKeys(ltk=LTK, irk=IRK),
        "00:CA:48:00:00:03/P": PairingKeys(link_key=link),
    }
