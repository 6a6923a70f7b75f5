"""``MprisPlayer`` against a real ``dbus-daemon`` and the fake player: what the car is sent.

Each test has a private session bus (never the user's). The follower's listener stands in
for the bridge: it records every ``NowPlaying`` the car would receive, with its time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from phone_bridge.mpris.player import MprisPlayer
from protocol.media import MediaCommand, NowPlaying
from tests.phone_bridge.fake_mpris import FakeMprisPlayer, FakeTrack, PrivateBus, png

LIMIT = 2.0  # seconds from a change in the player to the car (issue 14)


class Car:
    """What the bridge would send the car, in order, with when it was sent."""

    def __init__(self, player: MprisPlayer) -> None:
        self.sent: list[tuple[float, NowPlaying]] = []
        player.subscribe(lambda np: self.sent.append((time.monotonic(), np)))

    @property
    def last(self) -> NowPlaying | None:
        return self.sent[-1][1] if self.sent else None

    async def wait(self, check: Callable[[NowPlaying], bool], what: str,
                   limit: float = LIMIT) -> NowPlaying:  # fmt: skip
        """Wait for a ``NowPlaying`` that passes ``check``, sent within ``limit`` s of now."""
        start = time.monotonic()
        while time.monotonic() - start < limit:
            if self.last is not None and check(self.last):
                return self.last
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {what} within {limit} s; last sent: {self.last}")


@pytest.fixture
async def follow(bus: PrivateBus) -> AsyncIterator[Callable[..., Car]]:
    """Start followers on the private bus; all stopped at the end."""
    tasks: list[asyncio.Task[None]] = []

    def start(wanted: str | None = None, **kw: object) -> Car:
        mp = MprisPlayer(wanted, kw.pop("address", bus.address), **kw)  # type: ignore[arg-type]
        car = Car(mp)
        car.player = mp  # type: ignore[attr-defined]
        tasks.append(asyncio.create_task(mp.run()))
        return car

    yield start
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_playing_player_reaches_the_car_with_everything_mpris_says(
    bus: PrivateBus, follow: Callable[..., Car]
) -> None:
    fake = await FakeMprisPlayer(bus.address, "one").start()
    fake.player.seek_to(12_000_000)
    car = follow()
    np = await car.wait(lambda np: np.title == "Morning Drive", "the playing track")
    assert np.artists == ["Carhub Ensemble"] and np.album == "Test Album"
    assert (np.duration_ms, np.state, np.rate) == (200_000, "playing", 1.0)
    assert np.track_id == "/org/carhub/track/1"
    assert 12_000 <= np.position_ms < 14_000
    fake.quit()


async def test_metadata_status_and_rate_changes_reach_the_car_within_2_s(
    bus: PrivateBus, follow: Callable[..., Car]
) -> None:
    fake = await FakeMprisPlayer(bus.address, "one").start()
    car = follow()
    await car.wait(lambda np: np.title == "Morning Drive", "the first track")
    fake.player.go_to(1)  # the player moves on by itself
    np = await car.wait(lambda np: np.title == "Night Signal", "the next track")
    assert np.artists == ["Ana", "Bo"] and np.position_ms < 1000
    fake.player.change_track(title="Night Signal (Live)", artists=("Ana",))
    await car.wait(lambda np: (np.title, np.artists) == ("Night Signal (Live)", ["Ana"]), "retag")
    fake.player.set_status("Paused")
    paused = await car.wait(lambda np: np.state == "paused", "paused")
    fake.player.Rate = 1.5  # the property's setter, as a Set call would
    fake.player.set_status("Playing")
    np = await car.wait(lambda np: np.state == "playing" and np.rate == 1.5, "playing at 1.5x")
    assert abs(np.position_ms - paused.position_ms) < 500
    fake.quit()


async def test_a_seek_in_the_player_moves_the_car_s_position(
    bus: PrivateBus, follow: Callable[..., Car]
) -> None:
    fake = await FakeMprisPlayer(bus.address, "one").start()
    car = follow()
    await car.wait(lambda np: np.title == "Morning Drive", "the first track")
    fake.player.seek_to(150_000_000)  # Seeked(150 s)
    np = await car.wait(lambda np: np.position_ms >= 150_000, "the seek")
    assert np.position_ms < 151_000 and np.title == "Morning Drive"
    fake.quit()


async def test_car_commands_become_mpris_calls_and_their_effect_comes_back(
    bus: PrivateBus, follow: Callable[..., Car]
) -> None:
    fake = await FakeMprisPlayer(bus.address, "one").start()
    car = follow()
    mp: MprisPlayer = car.player  # type: ignore[attr-defined]
    await car.wait(lambda np: np.title == "Morning Drive", "the first track")
    steps = [
        ("pause", "Pause", lambda np: np.state == "paused"),
        ("play", "Play", lambda np: np.state == "playing"),
        ("toggle", "PlayPause", lambda np: np.state == "paused"),
        ("next", "Next", lambda np: np.title == "Night Signal"),
        ("previous", "Previous", lambda np: np.title == "Morning Drive"),
    ]
    for action, call, check in steps:
        mp.command(MediaCommand(action=action))  # type: ignore[arg-type]
        await car.wait(check, f"the effect of {action}")
        assert fake.calls[-1] == call
    mp.command(MediaCommand(action="seek", position_ms=30_000))
    np = await car.wait(lambda np: 30_000 <= np.position_ms < 31_000, "the car's seek")
    assert fake.calls[-1] == "SetPosition /org/carhub/track/1 30000000"
    assert np.state == "paused"
    fake.quit()


async def test_a_player_that_quits_leaves_nothing_playing_and_a_new_one_is_followed(
    bus: PrivateBus, follow: Callable[..., Car], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "phone_bridge.mpris")
    fake = await FakeMprisPlayer(bus.address, "one").start()
    car = follow()
    await car.wait(lambda np: np.title == "Morning Drive", "the first track")
    fake.quit()
    np = await car.wait(lambda np: np.title == "", "nothing playing")
    assert (np.state, np.track_id) == ("stopped", "")
    assert "no player on the session bus; waiting for one" in caplog.text
    again = await FakeMprisPlayer(bus.address, "two", [FakeTrack("/x/1", "Comeback")]).start()
    await car.wait(lambda np: np.title == "Comeback" and np.state == "playing", "the new player")
    assert "following org.mpris.MediaPlayer2.two" in caplog.text
    again.quit()


async def test_two_players_the_car_follows_the_one_that_plays_and_a_name_pins_one(
    bus: PrivateBus, follow: Callable[..., Car]
) -> None:
    a = await FakeMprisPlayer(bus.address, "alpha", [FakeTrack("/a/1", "From Alpha")]).start()
    b = await FakeMprisPlayer(bus.address, "beta", [FakeTrack("/b/1", "From Beta")]).start("Paused")
    any_car, beta_car = follow(), follow("beta")
    await any_car.wait(lambda np: np.title == "From Alpha", "the playing player")
    await beta_car.wait(lambda np: np.title == "From Beta" and np.state == "paused", "beta")
    b.player.PlayPause()  # the user presses play in the second player
    await any_car.wait(lambda np: np.title == "From Beta" and np.state == "playing", "beta plays")
    b.player.set_status("Paused")  # paused: alpha still plays, so the car goes back to it
    await any_car.wait(lambda np: np.title == "From Alpha", "alpha again")
    # A command goes to the followed player only.
    beta_mp: MprisPlayer = beta_car.player  # type: ignore[attr-defined]
    beta_mp.command(MediaCommand(action="play"))
    await beta_car.wait(lambda np: np.state == "playing", "beta playing")
    assert a.calls == [] and b.calls == ["PlayPause", "Play"]
    a.quit()
    await beta_car.wait(lambda np: np.title == "From Beta", "beta unaffected")
    await any_car.wait(lambda np: np.title == "From Beta", "the only player left")
    b.quit()


async def test_local_cover_art_is_sent_by_hash_and_kept_for_the_car_to_ask(
    bus: PrivateBus, follow: Callable[..., Car], tmp_path: Path
) -> None:
    cover = tmp_path / "cover.png"
    cover.write_bytes(png(16, 16))
    digest = hashlib.sha256(cover.read_bytes()).digest()
    missing = (tmp_path / "nope.jpg").as_uri()
    tracks = [FakeTrack("/t/1", "With Cover", art_url=cover.as_uri()),
              FakeTrack("/t/2", "Missing Cover", art_url=missing)]  # fmt: skip
    fake = await FakeMprisPlayer(bus.address, "art", tracks).start()
    car = follow()
    mp: MprisPlayer = car.player  # type: ignore[attr-defined]
    np = await car.wait(lambda np: np.artwork == digest, "the cover's hash")
    assert np.title == "With Cover"
    art = mp.artwork[digest]
    assert art.mime == "image/png" and art.data == cover.read_bytes()
    fake.player.go_to(1)  # a cover that cannot be read: the track goes without one
    np = await car.wait(lambda np: np.title == "Missing Cover", "the track without its cover")
    assert np.artwork == b""
    fake.quit()


async def test_no_bus_is_one_line_then_the_player_is_followed_once_a_bus_is_there(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "phone_bridge.mpris")
    address = f"unix:path={tmp_path}/bus"
    mp = MprisPlayer(None, address, retry=0.1)
    car = Car(mp)
    task = asyncio.create_task(mp.run())
    await asyncio.sleep(0.5)  # five attempts
    lines = [r.message for r in caplog.records if "no D-Bus session bus" in r.message]
    assert len(lines) == 1, lines
    assert mp.now_playing().state == "stopped"
    bus = PrivateBus(address)
    try:
        fake = await FakeMprisPlayer(bus.address, "late").start()
        await car.wait(lambda np: np.title == "Morning Drive", "the player on the new bus", 3.0)
        fake.quit()
        await car.wait(lambda np: np.title == "", "nothing once it quit")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        bus.stop()


async def test_the_bus_going_away_stops_the_car_s_player_and_it_reconnects(
    tmp_path: Path,
) -> None:
    address = f"unix:path={tmp_path}/bus"
    bus = PrivateBus(address)
    mp = MprisPlayer(None, address, retry=0.1)
    car = Car(mp)
    task = asyncio.create_task(mp.run())
    try:
        fake = await FakeMprisPlayer(address, "p").start()
        await car.wait(lambda np: np.title == "Morning Drive", "the player")
        fake.quit()
        bus.stop()  # the session ends (logout): no crash, nothing plays
        await car.wait(lambda np: np.state == "stopped", "stopped")
        bus = PrivateBus(address)
        fake = await FakeMprisPlayer(address, "p").start()
        await car.wait(lambda np: np.title == "Morning Drive", "the player again", 3.0)
        fake.quit()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        bus.stop()


async def test_snapshot_reads_the_player_once_for_sync(bus: PrivateBus, tmp_path: Path) -> None:
    cover = tmp_path / "c.png"
    cover.write_bytes(png())
    track = FakeTrack("/s/1", "Once", art_url=cover.as_uri())
    fake = await FakeMprisPlayer(bus.address, "s", [track]).start()
    mp = MprisPlayer(None, bus.address)
    np = await mp.snapshot()
    assert (np.title, np.state) == ("Once", "playing")
    assert mp.artwork[np.artwork].data == cover.read_bytes()
    fake.quit()
    nothing = await MprisPlayer(None, "unix:path=/nonexistent/bus").snapshot()
    assert nothing.state == "stopped" and nothing.title == ""
