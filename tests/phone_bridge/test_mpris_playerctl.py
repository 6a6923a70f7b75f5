"""``playerctl`` (Debian's, an independent MPRIS client) against the fake player.

Two things are checked at once: the fake behaves as real players do for a client that was
not written here (so the other MPRIS tests prove something), and what playerctl reads or
does to the player is what the car is told.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator

import pytest

from phone_bridge.mpris.player import MprisPlayer
from protocol.media import MediaCommand, NowPlaying
from tests.phone_bridge.fake_mpris import FakeMprisPlayer, PrivateBus

PLAYERCTL = shutil.which("playerctl")
pytestmark = pytest.mark.skipif(
    PLAYERCTL is None,
    reason="PLAYERCTL NOT INSTALLED: apt-get install -y playerctl (scripts/setup.sh does)",
)


@pytest.fixture
async def fake(bus: PrivateBus) -> AsyncIterator[FakeMprisPlayer]:
    player = await FakeMprisPlayer(bus.address, "fake").start()
    try:
        yield player
    finally:
        player.quit()


@pytest.fixture
async def sent(bus: PrivateBus) -> AsyncIterator[tuple[MprisPlayer, list[NowPlaying]]]:
    mp = MprisPlayer(None, bus.address)
    out: list[NowPlaying] = []
    mp.subscribe(out.append)
    task = asyncio.create_task(mp.run())
    try:
        yield mp, out
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def playerctl(bus: PrivateBus, *args: str) -> str:
    assert PLAYERCTL is not None
    proc = await asyncio.create_subprocess_exec(
        PLAYERCTL, "-p", "fake", *args, env=bus.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, (args, err.decode())
    return out.decode().strip()


async def until(out: list[NowPlaying], check: object, what: str) -> NowPlaying:
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if out and check(out[-1]):  # type: ignore[operator]
            return out[-1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"the car was not told {what} within 2 s; last: {out[-1:]}")


async def test_playerctl_reads_what_the_car_is_told(
    bus: PrivateBus, fake: FakeMprisPlayer, sent: tuple[MprisPlayer, list[NowPlaying]]
) -> None:
    assert "fake" in (await playerctl(bus, "-l")).splitlines()
    fmt = "{{title}}|{{artist}}|{{album}}|{{mpris:length}}|{{mpris:trackid}}|{{status}}"
    got = await playerctl(bus, "metadata", "--format", fmt)
    # playerctl quotes an object path (type o), as it does for every real player's track id.
    assert got == "Morning Drive|Carhub Ensemble|Test Album|200000000|'/org/carhub/track/1'|Playing"
    np = await until(sent[1], lambda np: np.title == "Morning Drive", "the track")
    assert (np.artists, np.album, np.duration_ms, np.track_id, np.state) == (
        ["Carhub Ensemble"], "Test Album", 200_000, "/org/carhub/track/1", "playing",
    )  # fmt: skip
    # Two artists: playerctl joins them with ", " as it does for real players.
    fake.player.go_to(1)
    assert await playerctl(bus, "metadata", "artist") == "Ana, Bo"
    await until(sent[1], lambda np: np.artists == ["Ana", "Bo"], "both artists")


async def test_what_playerctl_does_to_the_player_reaches_the_car(
    bus: PrivateBus, fake: FakeMprisPlayer, sent: tuple[MprisPlayer, list[NowPlaying]]
) -> None:
    out = sent[1]
    await until(out, lambda np: np.state == "playing", "playing")
    await playerctl(bus, "play-pause")
    await until(out, lambda np: np.state == "paused", "paused")
    assert await playerctl(bus, "status") == "Paused"
    await playerctl(bus, "position", "42")  # playerctl seeks with SetPosition(trackid, µs)
    np = await until(out, lambda np: 42_000 <= np.position_ms < 42_500, "the position")
    assert fake.calls[-1] == "SetPosition /org/carhub/track/1 42000000"
    assert float(await playerctl(bus, "position")) == pytest.approx(42.0, abs=0.5)
    await playerctl(bus, "next")
    np = await until(out, lambda np: np.title == "Night Signal", "the next track")
    assert np.state == "paused" and np.position_ms < 500
    assert fake.calls == ["PlayPause", "SetPosition /org/carhub/track/1 42000000", "Next"]


async def test_a_car_command_is_seen_by_playerctl_as_a_real_player_change(
    bus: PrivateBus, fake: FakeMprisPlayer, sent: tuple[MprisPlayer, list[NowPlaying]]
) -> None:
    mp, out = sent
    assert PLAYERCTL is not None
    watcher = await asyncio.create_subprocess_exec(
        PLAYERCTL, "-p", "fake", "--follow", "metadata", "--format", "{{status}} {{title}}",
        env=bus.env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert watcher.stdout is not None
    try:
        first = await asyncio.wait_for(watcher.stdout.readline(), 5)
        assert first.decode().strip() == "Playing Morning Drive"
        await until(out, lambda np: np.state == "playing", "playing")
        mp.command(MediaCommand(action="next"))
        mp.command(MediaCommand(action="pause"))
        seen: list[str] = []
        while "Paused Night Signal" not in seen:
            line = await asyncio.wait_for(watcher.stdout.readline(), 5)
            seen.append(line.decode().strip())
        await until(out, lambda np: (np.title, np.state) == ("Night Signal", "paused"), "it")
        mp.command(MediaCommand(action="seek", position_ms=100_000))
        await until(out, lambda np: np.position_ms >= 100_000, "the car's seek")
        assert float(await playerctl(bus, "position")) == pytest.approx(100.0, abs=0.5)
    finally:
        watcher.terminate()
        await watcher.wait()
