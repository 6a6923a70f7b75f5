# ruff: noqa: F811  (the fixtures of test_apple_ble_car are imported, then requested by name)
"""A hostile or buggy iPhone, against the car's AMS/ANCS client (findings of a review).

Each test drives the real car (``BleCarServer``) and a scripted Bumble iPhone on one
in-process radio, and checks what the car keeps: bounded caches, notifications that keep
flowing after a bad one, values cut to what the car asked for, one rediscovery for a burst
of Service Changed indications.
"""

from __future__ import annotations

import asyncio
import struct

import carhub.ble.ancs_client as ancs_client
from carhub.ble import BleCarServer
from tests.carhub.apple_ble_iphone import FakeIPhone
from tests.carhub.test_apple_ble_car import (  # noqa: F401  (fixtures)
    Events,
    air,
    bond,
    car,
    events,
    phone,
    phone_id_of,
)

SMS = "com.apple.MobileSMS"


async def test_an_app_id_the_phone_cannot_be_asked_about_does_not_stop_ancs(
    car: BleCarServer, events: Events, phone: FakeIPhone
) -> None:
    pid = await bond(car, events, phone)
    await events.wait(lambda: (pid, 7) in events.notes)
    await phone.post(20, {0: "bad\x00app", 1: "nul in the app id"})
    await phone.post(21, {0: "x" * 300, 1: "app id over 255 bytes"})
    await phone.post(22, {0: SMS, 1: "still flowing"})
    note = await events.wait(lambda: events.notes.get((pid, 22)))
    assert note.title == "still flowing" and note.app_name == "Messages"
    assert events.notes[(pid, 20)].app_name == "bad\x00app"
    assert len(events.notes[(pid, 21)].app_id.encode()) <= 255


async def test_values_are_cut_to_what_the_car_asked_for(
    car: BleCarServer, events: Events, phone: FakeIPhone
) -> None:
    pid = await bond(car, events, phone)
    await events.wait(lambda: (pid, 7) in events.notes)
    # This phone counts the asked-for lengths in characters, not bytes: 512 "é" are 1 KiB.
    await phone.post(30, {0: SMS, 1: "T" * 500, 2: "S" * 500, 3: "é" * 2000})
    note = await events.wait(lambda: events.notes.get((pid, 30)))
    assert len(note.title.encode()) <= 64 and len(note.subtitle.encode()) <= 64
    assert len(note.message.encode()) <= 512 and set(note.message) == {"é"}


async def test_the_app_name_cache_is_bounded_and_goes_with_the_bond(
    car: BleCarServer, events: Events, phone: FakeIPhone, monkeypatch: object
) -> None:
    ancs_client.MAX_APP_NAMES = 3  # type: ignore[misc]
    try:
        pid = await bond(car, events, phone)
        for uid in range(40, 46):
            await phone.post(uid, {0: f"com.example.app{uid}", 1: f"n{uid}"})
        await events.wait(lambda: (pid, 45) in events.notes)
        names = car._app_names[pid]  # what the car holds for this phone
        assert len(names) <= 3 and "com.example.app45" in names
        await car.forget_bond(pid)
        assert pid not in car._app_names
    finally:
        ancs_client.MAX_APP_NAMES = 128  # type: ignore[misc]


def test_a_burst_of_service_changed_ranges_is_one_rediscovery() -> None:
    from carhub.ble.rediscovery import ChangedRange

    changed = ChangedRange()
    scheduled = [changed.add(s, e) for s, e in [(10, 20), (15, 40), (5, 12), (30, 31)]]
    assert scheduled == [True, False, False, False]  # one task for the whole burst
    assert changed.take() == (5, 40)
    assert changed.add(50, 60) is True  # after it ran, the next one schedules again


async def test_a_flood_of_service_changed_indications_costs_few_rediscoveries(
    car: BleCarServer, events: Events, phone: FakeIPhone
) -> None:
    pid = await bond(car, events, phone)
    await events.wait(lambda: (pid, 7) in events.notes)
    before = events.names().count("connected")
    for _ in range(200):
        await phone.indicate_service_changed(struct.pack("<HH", 1, 0xFFFF))
    await events.wait(lambda: events.names().count("connected") > before, timeout=10)
    await phone.post(50, {0: SMS, 1: "after the flood"})
    await events.wait(lambda: (pid, 50) in events.notes, timeout=10)
    await asyncio.sleep(1.0)  # whatever else the flood would still set off
    assert events.names().count("connected") - before <= 10  # not one per indication


async def test_an_iphone_that_pairs_before_the_car_asks_is_bonded_all_the_same(
    car: BleCarServer, events: Events, phone: FakeIPhone
) -> None:
    # iOS may start pairing itself (the user tapped the car in Settings): the code is
    # compared on the dashboard as usual, and the bond must stay, not be erased.
    connection = await phone.connect(car.address)
    await asyncio.wait_for(connection.pair(), 30)
    pid = phone_id_of(phone)
    await events.wait(lambda: pid in events.bonded and pid in events.handles, timeout=15)
    await events.wait(lambda: (pid, 7) in events.notes)
    assert len(phone.codes) == 1
