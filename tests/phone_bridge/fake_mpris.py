"""A hand-written MPRIS player on a private D-Bus daemon, for tests and the README demo.

``PrivateBus`` starts ``dbus-daemon --session`` on a temporary socket (never the user's bus).
``FakeMprisPlayer`` exports ``org.mpris.MediaPlayer2`` and ``org.mpris.MediaPlayer2.Player``
with dbus-fast's ``ServiceInterface`` as a real player does: every property readable with
``Get``/``GetAll``, ``PropertiesChanged`` on each change (not for ``Position``, which real
players never signal), ``Seeked`` after a seek, and the position moving by the clock while
playing. ``calls`` records every method the bus called, so a test sees what the car asked.
``PlayerThread`` runs one in a thread of its own for tests that are synchronous (e2e).

Run it as a script to have a player to follow without a real one::

    python -m tests.phone_bridge.fake_mpris --name demo --advance 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

from dbus_fast import Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusDict,
    DBusDouble,
    DBusInt64,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
)
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method, signal

__all__ = ["FakeMprisPlayer", "FakeTrack", "PlayerThread", "PrivateBus", "png", "sample_tracks"]

OBJECT_PATH = "/org/mpris/MediaPlayer2"
T = TypeVar("T")
DBusStrList = Annotated[list[str], DBusSignature("as")]


class PrivateBus:
    """A ``dbus-daemon --session`` of our own on a socket under /tmp; ``stop`` ends it.

    Args:
        address: where it listens (default: a fresh socket; ``unix:path=...`` for a fixed one).
    """

    def __init__(self, address: str = "unix:tmpdir=/tmp") -> None:
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1",
             f"--address={address}"],
            # stderr: it warns that it cannot raise its fd limit when not root; noise here.
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon printed no address")

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL): every client sees the bus go."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def env(self) -> dict[str, str]:
        """``os.environ`` with this bus as the session bus (for subprocesses)."""
        return {**os.environ, "DBUS_SESSION_BUS_ADDRESS": self.address}


@dataclass(frozen=True)
class FakeTrack:
    """One track of the fake player's playlist."""

    track_id: str  # an object path, as MPRIS wants
    title: str
    artists: tuple[str, ...] = ()
    album: str = ""
    length_us: int = 0
    art_url: str = ""

    def metadata(self) -> dict[str, Variant]:
        """The MPRIS ``Metadata`` of this track (only the keys that are set)."""
        md: dict[str, Variant] = {"mpris:trackid": Variant("o", self.track_id)}
        if self.title:
            md["xesam:title"] = Variant("s", self.title)
        if self.artists:
            md["xesam:artist"] = Variant("as", list(self.artists))
        if self.album:
            md["xesam:album"] = Variant("s", self.album)
        if self.length_us:
            md["mpris:length"] = Variant("x", self.length_us)
        if self.art_url:
            md["mpris:artUrl"] = Variant("s", self.art_url)
        return md


def sample_tracks(art_url: str = "") -> list[FakeTrack]:
    """Three tracks of a few minutes; the first two share ``art_url`` (one album)."""
    return [
        FakeTrack("/org/carhub/track/1", "Morning Drive", ("Carhub Ensemble",), "Test Album",
                  200_000_000, art_url),
        FakeTrack("/org/carhub/track/2", "Night Signal", ("Ana", "Bo"), "Test Album",
                  185_000_000, art_url),
        FakeTrack("/org/carhub/track/3", "Cafe Lumiere", ("Lumiere",), "Other", 240_000_000),
    ]  # fmt: skip


class _Root(ServiceInterface):
    """``org.mpris.MediaPlayer2``: identity and what the player can do."""

    def __init__(self, identity: str, on_quit: Callable[[], None]) -> None:
        super().__init__("org.mpris.MediaPlayer2")
        self.identity = identity
        self.on_quit = on_quit

    @method()
    def Raise(self):
        pass

    @method()
    def Quit(self):
        self.on_quit()

    @dbus_property(access=PropertyAccess.READ)
    def CanQuit(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def CanRaise(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def HasTrackList(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Identity(self) -> DBusStr:
        return self.identity

    @dbus_property(access=PropertyAccess.READ)
    def SupportedUriSchemes(self) -> DBusStrList:
        return ["file"]

    @dbus_property(access=PropertyAccess.READ)
    def SupportedMimeTypes(self) -> DBusStrList:
        return ["audio/mpeg"]


class _Player(ServiceInterface):
    """``org.mpris.MediaPlayer2.Player``: a playlist that plays by the clock."""

    def __init__(self, tracks: list[FakeTrack], calls: list[str]) -> None:
        super().__init__("org.mpris.MediaPlayer2.Player")
        self.tracks = tracks
        self.calls = calls
        self.index = 0
        self.status = "Stopped"
        self.rate = 1.0
        self._pos_us = 0  # true at self._since (monotonic seconds)
        self._since = time.monotonic()

    # -- state helpers (also what a test drives) ---------------------------------------
    def position_us(self) -> int:
        pos = self._pos_us
        if self.status == "Playing":
            pos += int((time.monotonic() - self._since) * 1e6 * self.rate)
        length = self.track.length_us if self.tracks else 0
        return min(pos, length) if length else pos

    def set_position_us(self, pos_us: int) -> None:
        self._pos_us, self._since = max(0, pos_us), time.monotonic()

    @property
    def track(self) -> FakeTrack:
        return self.tracks[self.index]

    def set_status(self, status: str) -> None:
        self.set_position_us(self.position_us())  # freeze or restart the clock here
        if status == "Stopped":
            self.set_position_us(0)
        self.status = status
        self.emit_properties_changed({"PlaybackStatus": status})

    def go_to(self, index: int) -> None:
        self.index = index % len(self.tracks)
        self.set_position_us(0)
        self.emit_properties_changed({"Metadata": self.track.metadata()})

    def change_track(self, **changes: Any) -> None:
        self.tracks[self.index] = replace(self.track, **changes)
        self.emit_properties_changed({"Metadata": self.track.metadata()})

    def seek_to(self, pos_us: int) -> None:
        self.set_position_us(pos_us)
        self.Seeked(self.position_us())

    # -- the D-Bus interface -------------------------------------------------------------
    @method()
    def Next(self):
        self.calls.append("Next")
        self.go_to(self.index + 1)

    @method()
    def Previous(self):
        self.calls.append("Previous")
        self.go_to(self.index - 1)

    @method()
    def Pause(self):
        self.calls.append("Pause")
        if self.status == "Playing":
            self.set_status("Paused")

    @method()
    def PlayPause(self):
        self.calls.append("PlayPause")
        self.set_status("Paused" if self.status == "Playing" else "Playing")

    @method()
    def Stop(self):
        self.calls.append("Stop")
        self.set_status("Stopped")

    @method()
    def Play(self):
        self.calls.append("Play")
        if self.status != "Playing":
            self.set_status("Playing")

    @method()
    def Seek(self, offset: DBusInt64):
        self.calls.append(f"Seek {offset}")
        self.seek_to(self.position_us() + offset)

    @method()
    def SetPosition(self, track_id: DBusObjectPath, position: DBusInt64):
        self.calls.append(f"SetPosition {track_id} {position}")
        # The spec: ignore a stale track id or a position past the end.
        if track_id == self.track.track_id and 0 <= position <= self.track.length_us:
            self.seek_to(position)

    @method()
    def OpenUri(self, uri: DBusStr):
        self.calls.append(f"OpenUri {uri}")

    @signal()
    def Seeked(self, position: int) -> DBusInt64:
        return position

    @dbus_property(access=PropertyAccess.READ)
    def PlaybackStatus(self) -> DBusStr:
        return self.status

    @dbus_property()
    def LoopStatus(self) -> DBusStr:
        return "None"

    @LoopStatus.setter
    def LoopStatus(self, value: DBusStr):
        pass

    @dbus_property()
    def Rate(self) -> DBusDouble:
        return self.rate

    @Rate.setter
    def Rate(self, value: DBusDouble):
        self.set_position_us(self.position_us())
        self.rate = value
        self.emit_properties_changed({"Rate": value})

    @dbus_property()
    def Shuffle(self) -> DBusBool:
        return False

    @Shuffle.setter
    def Shuffle(self, value: DBusBool):
        pass

    @dbus_property(access=PropertyAccess.READ)
    def Metadata(self) -> DBusDict:
        return self.track.metadata() if self.tracks else {}

    @dbus_property()
    def Volume(self) -> DBusDouble:
        return 1.0

    @Volume.setter
    def Volume(self, value: DBusDouble):
        pass

    @dbus_property(access=PropertyAccess.READ)
    def Position(self) -> DBusInt64:
        return self.position_us()

    @dbus_property(access=PropertyAccess.READ)
    def MinimumRate(self) -> DBusDouble:
        return 0.5

    @dbus_property(access=PropertyAccess.READ)
    def MaximumRate(self) -> DBusDouble:
        return 2.0

    @dbus_property(access=PropertyAccess.READ)
    def CanGoNext(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def CanGoPrevious(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def CanPlay(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def CanPause(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def CanSeek(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def CanControl(self) -> DBusBool:
        return True


@dataclass
class FakeMprisPlayer:
    """``org.mpris.MediaPlayer2.NAME`` on the bus at ``address``.

    Args:
        address: the bus (``PrivateBus.address``).
        name: the player's name after ``org.mpris.MediaPlayer2.``.
        tracks: its playlist (default: ``sample_tracks()``).
    """

    address: str
    name: str = "fake"
    tracks: list[FakeTrack] = field(default_factory=sample_tracks)
    calls: list[str] = field(default_factory=list)
    bus: MessageBus | None = None

    async def start(self, status: str = "Playing") -> FakeMprisPlayer:
        """Connect, export both interfaces and take the name; start in ``status``."""
        self.player = _Player(self.tracks, self.calls)
        self.player.status = status
        self.root = _Root(f"Fake {self.name}", self._quit)
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.bus.export(OBJECT_PATH, self.root)
        self.bus.export(OBJECT_PATH, self.player)
        await self.bus.request_name(f"org.mpris.MediaPlayer2.{self.name}")
        return self

    def _quit(self) -> None:
        self.calls.append("Quit")
        asyncio.get_running_loop().call_soon(self.quit)

    def quit(self) -> None:
        """Leave the bus, as a player that is closed does (its name goes with it)."""
        if self.bus is not None:
            self.bus.disconnect()
            self.bus = None


class PlayerThread:
    """A ``FakeMprisPlayer`` on an event loop in a thread of its own.

    ``do(fn)`` runs ``fn(player)`` on that loop and returns its result, so a synchronous
    test changes the player exactly as the player would change itself.
    """

    def __init__(self, address: str, name: str = "fake", status: str = "Playing",
                 tracks: list[FakeTrack] | None = None) -> None:  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        fake = FakeMprisPlayer(address, name, tracks if tracks is not None else sample_tracks())
        self.fake = self.run(fake.start(status))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def do(self, fn: Callable[[_Player], T]) -> T:
        async def call() -> T:
            return fn(self.fake.player)

        return self.run(call())

    @property
    def calls(self) -> list[str]:
        return list(self.do(lambda p: list(p.calls)))

    def stop(self) -> None:
        self.do(lambda _: self.fake.quit())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A small solid-colour PNG (cover art for tests and the demo)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))  # fmt: skip


async def _demo(name: str, advance: float) -> None:
    """Play the sample tracks on the session bus, moving to the next every ``advance`` s."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if not address:
        raise SystemExit("DBUS_SESSION_BUS_ADDRESS is not set: no session bus to play on")
    cover = Path(tempfile.gettempdir()) / "carhub-fake-mpris-cover.png"
    cover.write_bytes(png(64, 64))
    fake = await FakeMprisPlayer(address, name, sample_tracks(cover.as_uri())).start()
    print(f"playing as org.mpris.MediaPlayer2.{name}; Ctrl-C to stop", flush=True)
    while fake.bus is not None:
        await asyncio.sleep(advance)
        if fake.player.status == "Playing":
            fake.player.Next()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake MPRIS player on the session bus.")
    parser.add_argument("--name", default="demo", help="org.mpris.MediaPlayer2.NAME")
    parser.add_argument("--advance", type=float, default=30.0, help="seconds per track")
    args = parser.parse_args()
    try:
        asyncio.run(_demo(args.name, args.advance))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
