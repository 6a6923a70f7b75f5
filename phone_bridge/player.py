"""The phone's simulated player: a timer around ``protocol.media.PlayerState``.

The state and every transition are pure (``protocol.media``); this class only keeps the
current value, tells listeners when it changes, and wakes up at each track end so the
car learns about the next track without per-second updates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from protocol.media import (
    Artwork,
    MediaCommand,
    NowPlaying,
    PlayerState,
    Track,
    advance,
    apply_command,
    now_playing,
)

__all__ = ["MediaPlayer", "Player"]

log = logging.getLogger("phone_bridge.player")


def _now_ms() -> int:
    return int(time.time() * 1000)


class MediaPlayer(Protocol):
    """What the bridge needs of a media source: ``Player`` here, or the MPRIS follower
    (``phone_bridge.mpris``)."""

    @property
    def artwork(self) -> Mapping[bytes, Artwork]:
        """Images the car may ask for, by SHA-256."""
        ...

    def subscribe(self, listener: Callable[[NowPlaying], None]) -> None: ...

    def now_playing(self) -> NowPlaying: ...

    def command(self, cmd: MediaCommand) -> object: ...

    async def run(self) -> None: ...


class Player:
    """A playlist that plays by the clock.

    Args:
        tracks: the playlist (from ``phone_bridge.media_source.load_tracks``).
        artwork: images by hash.
        autoplay: start playing at once.
    """

    def __init__(
        self, tracks: list[Track], artwork: dict[bytes, Artwork], *, autoplay: bool = True
    ) -> None:
        self.artwork = artwork
        self.state = PlayerState(tracks=tuple(tracks), since_ms=_now_ms())
        if autoplay and tracks:
            self.state = apply_command(self.state, MediaCommand(action="play"), _now_ms())
        self._listeners: list[Callable[[NowPlaying], None]] = []
        self._changed = asyncio.Event()

    def subscribe(self, listener: Callable[[NowPlaying], None]) -> None:
        """Call ``listener`` with the new now-playing state after every change."""
        self._listeners.append(listener)

    def now_playing(self) -> NowPlaying:
        """The current state as the message the car receives."""
        return now_playing(self.state, _now_ms())

    def command(self, cmd: MediaCommand) -> NowPlaying:
        """Obey a car command (raises ``MessageError`` for an invalid one)."""
        self.state = apply_command(self.state, cmd, _now_ms())
        log.info("command %s -> %s %r", cmd.action, self.state.state, self._title())
        return self._notify()

    def _title(self) -> str:
        return self.state.track.title if self.state.track else ""

    def _notify(self) -> NowPlaying:
        np = self.now_playing()
        for listener in self._listeners:
            listener(np)
        self._changed.set()
        return np

    def _ms_to_track_end(self) -> float | None:
        s = advance(self.state, _now_ms())
        if s.state != "playing" or s.track is None or s.track.duration_ms <= 0:
            return None
        return max(0.0, (s.track.duration_ms - s.position_ms) / max(s.rate, 1e-6))

    async def run(self) -> None:
        """Advance at each track end (and re-plan after every command) until cancelled."""
        while True:
            self._changed.clear()
            wait = self._ms_to_track_end()
            try:
                # +5 ms so we wake just past the boundary, on the next track.
                await asyncio.wait_for(
                    self._changed.wait(), None if wait is None else wait / 1000 + 0.005
                )
            except TimeoutError:
                self.state = advance(self.state, _now_ms())
                log.info("next track: %r", self._title())
                self._notify()
