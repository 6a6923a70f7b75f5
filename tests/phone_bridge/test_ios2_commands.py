"""The Remote Commands the emulated iPhone offers follow its playlist, and are notified
again whenever they change: none with no media, no "next" with one track, all with more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bumble.att import ATT_Error

from phone_bridge.ios import IPhone, IPhoneOptions
from phone_bridge.player import Player
from protocol.apple.ams import RemoteCommand, decode_remote_commands
from protocol.media import Track
from radio import LocalRadio
from tests.phone_bridge.ios_car import CarSession, T, TinyCar

ONE = Track(track_id="t1", title="One", artists=("Ann",), album="A", duration_ms=200_000)
TWO = Track(track_id="t2", title="Two", artists=("Bob",), album="B", duration_ms=100_000)
P, PA, TG, NX, PR = (RemoteCommand.PLAY, RemoteCommand.PAUSE, RemoteCommand.TOGGLE_PLAY_PAUSE,
                     RemoteCommand.NEXT_TRACK, RemoteCommand.PREVIOUS_TRACK)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[IPhone, CarSession, list[frozenset[Any]]]]:
    air = LocalRadio()
    car = TinyCar(air)
    await car.start()
    phone = IPhone(air, IPhoneOptions(state_dir=tmp_path, auto_confirm=True, player=None))
    await phone.start()
    try:
        s = await car.session(0)
        await asyncio.wait_for(s.ready.wait(), T)
        assert s.ams is not None
        # Bumble's AmsClient only ever adds to supported_commands: read the raw values.
        seen: list[frozenset[Any]] = []
        await asyncio.wait_for(s.ams._ams_proxy.remote_command.subscribe(
            lambda v: seen.append(decode_remote_commands(bytes(v)))), T)
        yield phone, s, seen
    finally:
        await phone.stop()
        await car.stop()


async def last(seen: list[frozenset[Any]], want: frozenset[Any]) -> None:
    async def poll() -> None:
        while not seen or seen[-1] != want:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), T)


async def test_commands_follow_the_playlist(rig: Any) -> None:
    phone, s, seen = rig
    await last(seen, frozenset())  # no media app: nothing to command
    with pytest.raises(ATT_Error) as info:
        await asyncio.wait_for(s.ams.play(), T)
    assert info.value.error_code == 0xA0  # AMS Invalid State

    phone.ams.set_player(Player([ONE], {}))
    await last(seen, frozenset({P, PA, TG, PR}))  # one track: no next, previous restarts
    with pytest.raises(ATT_Error):
        await asyncio.wait_for(s.ams.next_track(), T)
    await asyncio.wait_for(s.ams.pause(), T)
    assert phone.ams.player.state.state == "paused"

    phone.ams.set_player(Player([ONE, TWO], {}))
    await last(seen, frozenset({P, PA, TG, NX, PR}))
    await asyncio.wait_for(s.ams.next_track(), T)
    assert phone.ams.player.state.index == 1

    phone.ams.set_player(Player([], {}))  # an empty playlist offers nothing again
    await last(seen, frozenset())
    assert len(seen) >= 4
