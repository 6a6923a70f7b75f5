"""ANCS and AMS coming and going: the car, subscribed to Service Changed, rediscovers and
finds them gone, then back, and working again (Bumble's GATT client on a tiny car)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bumble import gatt
from bumble.core import UUID
from bumble.device import Peer
from bumble.profiles.ams import AmsClient, EntityId, RemoteCommandId, TrackAttributeId
from bumble.profiles.ancs import AncsClient, EventFlags

from phone_bridge.ios import IPhone, IPhoneOptions, NotificationSpec
from phone_bridge.player import Player
from protocol.apple import AMS_SERVICE_UUID, ANCS_SERVICE_UUID
from protocol.media import Track
from radio import LocalRadio
from tests.phone_bridge.ios_car import CarSession, T, TinyCar

AMS, ANCS = UUID(AMS_SERVICE_UUID), UUID(ANCS_SERVICE_UUID)
TRACKS = [Track(track_id="t1", title="One", artists=("Ann",), album="A", duration_ms=200_000)]
SMS = NotificationSpec(app_id="com.apple.MobileSMS", app_name="Messages", title="Anna",
                       message="Hi", delay=0)


class Watcher:
    """The car's side of Service Changed: subscribed, it records each indicated range."""

    def __init__(self, s: CarSession) -> None:
        self.peer = Peer(s.connection)
        self.ranges: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    async def subscribe(self) -> None:
        (service,) = await asyncio.wait_for(
            self.peer.discover_service(gatt.GATT_GENERIC_ATTRIBUTE_SERVICE), T)
        await asyncio.wait_for(service.discover_characteristics(), T)
        (changed,) = service.get_characteristics_by_uuid(gatt.GATT_SERVICE_CHANGED_CHARACTERISTIC)
        await asyncio.wait_for(changed.subscribe(self._on_indication, prefer_notify=False), T)

    def _on_indication(self, value: bytes) -> None:
        self.ranges.put_nowait(struct.unpack("<HH", value))

    async def changed(self) -> tuple[int, int]:
        return await asyncio.wait_for(self.ranges.get(), T)

    async def rediscover(self, start: int, end: int) -> dict[UUID, tuple[int, int]]:
        """Drop what the client knew in the range (Bumble's cache keeps removed services)."""
        client = self.peer.gatt_client
        client.services = [s for s in client.services
                           if s.end_group_handle < start or s.handle > end]
        found = await asyncio.wait_for(self.peer.discover_services(), T)
        # Proxies are made from the cached services: give those their characteristics
        # (what broke proxy creation after discover_services() in Bumble 0.0.236).
        for service in client.services:
            if start <= service.handle <= end:
                await asyncio.wait_for(service.discover_characteristics(), T)
        return {s.uuid: (s.handle, s.end_group_handle) for s in found}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[IPhone, CarSession, list[dict[str, Any]]]]:
    air = LocalRadio()
    car = TinyCar(air)
    await car.start()
    events: list[dict[str, Any]] = []
    phone = IPhone(air, IPhoneOptions(state_dir=tmp_path, auto_confirm=True,
                                      player=Player(TRACKS, {}), notifications=[SMS],
                                      emit=events.append))
    await phone.start()
    try:
        s = await car.session(0)
        await asyncio.wait_for(s.ready.wait(), T)
        yield phone, s, events
    finally:
        await phone.stop()
        await car.stop()


async def fresh_ancs(peer: Peer) -> list[Any]:
    ancs = await asyncio.wait_for(AncsClient.for_peer(peer), T)
    assert ancs is not None
    got: list[Any] = []
    ancs.on(ancs.EVENT_NOTIFICATION, got.append)
    await asyncio.wait_for(ancs.start(), T)
    return got


async def test_ancs_withdrawn_then_restored_is_indicated_and_rediscovered(rig: Any) -> None:
    phone, s, events = rig
    watcher = Watcher(s)
    await watcher.subscribe()
    before = await watcher.rediscover(1, 0xFFFF)
    assert AMS in before and ANCS in before

    assert await phone.set_services(ancs=False) == before[ANCS]
    assert await watcher.changed() == before[ANCS]
    after = await watcher.rediscover(*before[ANCS])
    assert ANCS not in after and after[AMS] == before[AMS]
    assert events[-1] == {"event": "services-changed", "ams": True, "ancs": False,
                          "start": before[ANCS][0], "end": before[ANCS][1]}
    assert await phone.set_services(ancs=False) is None  # no change: nothing indicated

    await phone.set_services(ancs=True)
    start, end = await watcher.changed()
    again = await watcher.rediscover(start, end)
    assert again[ANCS] == before[ANCS] and (start, end) == before[ANCS]
    # ANCS works again: the car subscribes anew and gets the notification already posted.
    got = await fresh_ancs(watcher.peer)
    async def pre_existing() -> None:
        while not got:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(pre_existing(), T)
    assert got[0].event_flags & EventFlags.PRE_EXISTING


async def test_ams_withdrawn_moves_ancs_and_the_range_covers_both(rig: Any) -> None:
    phone, s, _events = rig
    watcher = Watcher(s)
    await watcher.subscribe()
    before = await watcher.rediscover(1, 0xFFFF)
    await phone.set_services(ams=False)
    start, end = await watcher.changed()
    assert (start, end) == (before[AMS][0], before[ANCS][1])
    # No stale subscription survives in the range: ANCS now sits on AMS's old handles.
    cccds = phone.device.gatt_server.subscribers.values()
    assert not [h for c in cccds for h in c if start <= h <= end]
    after = await watcher.rediscover(start, end)
    assert AMS not in after and after[ANCS][0] == before[AMS][0]  # ANCS moved up
    got = await fresh_ancs(watcher.peer)  # at its new handles it answers
    async def pre_existing() -> None:
        while not got:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(pre_existing(), T)
    await phone.set_services(ams=True)
    start, end = await watcher.changed()
    assert (await watcher.rediscover(start, end)) == before
    # AMS is back at its handles and a car that registers again gets the track.
    ams = await asyncio.wait_for(AmsClient.for_peer(watcher.peer), T)
    assert ams is not None
    await asyncio.wait_for(ams.start(), T)
    await asyncio.wait_for(ams.observe(EntityId.TRACK, [TrackAttributeId.TITLE]), T)
    async def title() -> None:
        while ams.track_title != "One" or RemoteCommandId.PLAY not in ams.supported_commands:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(title(), T)
