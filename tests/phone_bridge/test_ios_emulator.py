"""The emulated iPhone against a tiny car on Bumble's own AMS/ANCS clients, in one process."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bumble import hci
from bumble.att import ATT_Error

from phone_bridge.ios import IPhone, IPhoneOptions
from phone_bridge.player import Player
from protocol.media import Track
from radio import LocalRadio
from tests.phone_bridge.ios_car import CAR_ADDRESS, T, TinyCar

LONG_TITLE = "An Extraordinarily Long Song Title That Never Fits One Notification"
TRACKS = [
    Track(track_id="t1", title=LONG_TITLE, artists=("Ann",), album="First", duration_ms=200_000),
    Track(track_id="t2", title="Second", artists=("Bob",), album="Two", duration_ms=100_000),
]


@pytest.fixture
async def air() -> LocalRadio:
    return LocalRadio()


class Events(list[dict[str, Any]]):
    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self if e["event"] == kind]

    async def wait(self, kind: str, count: int = 1) -> list[dict[str, Any]]:
        async def poll() -> list[dict[str, Any]]:
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.01)
            return self.of(kind)
        return await asyncio.wait_for(poll(), T)


async def start_phone(air: LocalRadio, tmp_path: Path, events: Events, **kw: Any) -> IPhone:
    # A player: with none, Bumble's AmsClient chokes on the empty values an idle iPhone sends.
    kw.setdefault("player", Player(TRACKS, {}))
    options = IPhoneOptions(state_dir=tmp_path / "phone", auto_confirm=True,
                            emit=events.append, **kw)
    phone = IPhone(air, options)
    await phone.start()
    return phone


@pytest.fixture
async def car(air: LocalRadio) -> AsyncIterator[TinyCar]:
    c = TinyCar(air)
    await c.start()
    yield c
    await c.stop()


async def test_every_att_access_is_refused_until_bonded(air: LocalRadio, tmp_path: Path) -> None:
    car = TinyCar(air, auto=False)
    await car.start()
    events = Events()
    phone = await start_phone(air, tmp_path, events)
    try:
        s = await car.session(0)
        from bumble.device import Peer
        from bumble.profiles.ams import AmsClient
        from bumble.profiles.ancs import AncsClient
        peer = Peer(s.connection)
        ams = await asyncio.wait_for(AmsClient.for_peer(peer), T)
        ancs = await asyncio.wait_for(AncsClient.for_peer(peer), T)
        assert ams is not None and ancs is not None
        attempts = [
            ams._ams_proxy.entity_attribute.read_value(),
            ams._ams_proxy.entity_update.write_value(b"\x02\x02", with_response=True),
            ams._ams_proxy.remote_command.write_value(b"\x03", with_response=True),
            ams._ams_proxy.remote_command.subscribe(lambda _v: None),
            ancs._ancs_proxy.notification_source.subscribe(lambda _v: None),
            ancs._ancs_proxy.control_point.write_value(b"\x01app\x00\x00", with_response=True),
        ]
        codes = []
        for attempt in attempts:
            with pytest.raises(ATT_Error) as info:
                await asyncio.wait_for(attempt, T)
            codes.append(info.value.error_code)
        assert codes == [0x05] * len(attempts)
        await asyncio.sleep(0.3)
        # The phone waited for a Security Request: no pairing, no encryption.
        assert car.codes == [] and events.of("pairing-code") == []
        assert not s.connection.encryption
    finally:
        await phone.stop()
        await car.stop()


async def test_security_request_bonds_with_the_same_code_and_hands_over_the_identity(
    air: LocalRadio, car: TinyCar, tmp_path: Path
) -> None:
    events = Events()
    phone = await start_phone(air, tmp_path, events)
    try:
        s = await car.session(0)
        await asyncio.wait_for(s.ready.wait(), T)
        assert s.refusals == [0x05]
        (code_event,) = events.of("pairing-code")
        assert car.codes == [code_event["code"]] and len(code_event["code"]) == 6
        (connected,) = events.of("connected")
        assert hci.Address(connected["address"]).is_resolvable
        (_, keys), = car.paired
        assert keys.irk.value == phone.bonds.irk
        assert str(s.connection.peer_address) == phone.identity_address
        assert (await events.wait("bonded"))[0]["authenticated"] is True
        bond_file = tmp_path / "phone" / "ios-bonds.json"
        assert stat.S_IMODE(bond_file.stat().st_mode) == 0o600
        assert await phone.bonds.get(CAR_ADDRESS) is not None
    finally:
        await phone.stop()


async def test_reconnect_after_a_disconnect_is_from_a_new_address_and_needs_no_code(
    air: LocalRadio, car: TinyCar, tmp_path: Path
) -> None:
    events = Events()
    phone = await start_phone(air, tmp_path, events)
    try:
        first = await car.session(0)
        await asyncio.wait_for(first.ready.wait(), T)
        await car.disconnect(first)
        await events.wait("disconnected")
        second = await car.session(1)
        await asyncio.wait_for(second.ready.wait(), T)
        a, b = (e["address"] for e in await events.wait("connected", 2))
        assert a != b and hci.Address(b).is_resolvable
        assert len(car.codes) == 1 and len(events.of("pairing-code")) == 1
        assert events.of("encrypted") and second.refusals == [0x05]
        # The car knows the phone by its identity, not the private address it came from.
        assert str(second.connection.peer_address) == phone.identity_address
    finally:
        await phone.stop()
