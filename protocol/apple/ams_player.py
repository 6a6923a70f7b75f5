"""The car's AMS reducer: Entity Updates folded into a ``protocol.media.NowPlaying``.

PLAYBACK_INFO is ``"state,rate,elapsed"``; the car extrapolates the position from the rate
and elapsed time as for a CarHub phone (``protocol.media.position_at``). Bounds: section 11.1.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from protocol.apple import bad, utf8
from protocol.apple._ams_ids import (
    EntityId,
    EntityUpdate,
    PlaybackState,
    PlayerAttribute,
    TrackAttribute,
    check_pair,
)
from protocol.media import NowPlaying
from protocol.media import PlaybackState as NowPlayingState

__all__ = [
    "MAX_RATE",
    "AmsPlayer",
    "PlaybackInfo",
    "format_playback_info",
    "parse_playback_info",
    "track_id_of",
]

# Fastest rate NowPlaying allows (protocol.media.Rate); faster is clamped.
MAX_RATE = 16.0
# Longest playback-info text accepted: three short numbers and two commas.
_MAX_PLAYBACK_INFO = 96
# A decimal with at most 9 integer digits (and 20 decimals): finite, seconds below 31 years,
# so a hostile value cannot make a huge int or float("inf"). Apple sends "1,1.000,12.345".
_NUMBER = re.compile(r"\s*([-+]?\d{1,9}(?:\.\d{0,20})?)\s*", re.ASCII)
# The attributes that are free text; every other attribute is a number.
_TEXT = frozenset(
    {
        (EntityId.PLAYER, PlayerAttribute.NAME),
        (EntityId.TRACK, TrackAttribute.ARTIST),
        (EntityId.TRACK, TrackAttribute.ALBUM),
        (EntityId.TRACK, TrackAttribute.TITLE),
    }
)
_INTEGER = re.compile(r"\s*[-+]?\d{1,9}\s*", re.ASCII)


@dataclass(frozen=True)
class PlaybackInfo:
    """PLAYBACK_INFO: a ``PlaybackState`` value, the rate (1.0 normal) and elapsed seconds."""

    state: int
    rate: float
    elapsed_s: float


def _number(text: str, what: str) -> float:
    m = _NUMBER.fullmatch(text)
    if m is None:
        raise bad(f"{what} {text[:20]!r} is not a decimal number")
    return float(m.group(1))


def parse_playback_info(text: str) -> PlaybackInfo:
    """Parse ``"state,rate,elapsed"`` (for example ``"1,1.0,12.345"``).

    Raises:
        AppleDataError: not three fields, an unknown state, or a field that is not a
            bounded decimal (no exponents, inf or nan).
    """
    if len(text) > _MAX_PLAYBACK_INFO:
        raise bad(f"playback info of {len(text)} characters")
    parts = text.split(",")
    if len(parts) != 3:
        raise bad(f"playback info {text!r} does not have three fields")
    if _INTEGER.fullmatch(parts[0]) is None:
        raise bad(f"playback state {parts[0]!r} is not an integer")
    state = int(parts[0])
    if state not in {s.value for s in PlaybackState}:
        raise bad(f"unknown playback state {state}")
    return PlaybackInfo(state, _number(parts[1], "rate"), _number(parts[2], "elapsed time"))


def format_playback_info(info: PlaybackInfo) -> str:
    """Format playback info as the iPhone sends it (elapsed to the millisecond).

    Raises:
        ValueError: an unknown state or a non-finite number.
    """
    state = PlaybackState(info.state)
    if not (math.isfinite(info.rate) and math.isfinite(info.elapsed_s)):
        raise ValueError("playback rate and elapsed time must be finite")
    return f"{int(state)},{float(info.rate)!r},{round(float(info.elapsed_s), 3)!r}"


def track_id_of(artist: str, album: str, title: str) -> str:
    """A stable 16-hex-digit id of a track, so the dashboard sees track changes.

    Returns:
        ``""`` when all three are empty (nothing loaded), else a SHA-256 prefix.
    """
    if not (artist or album or title):
        return ""
    h = hashlib.sha256()
    for field in (artist, album, title):  # length-prefixed, so fields cannot run together
        raw = utf8(field)
        h.update(len(raw).to_bytes(4, "little") + raw)
    return h.hexdigest()[:16]


class AmsPlayer:
    """The car's view of one iPhone's player, folded from Entity Updates.

    A truncated text (name, artist, album, title) is shown as it is until the car has
    re-read it through Entity Attribute and fed the full value as a new update; a truncated
    number (playback info, volume, queue, duration) is ignored until then, since its cut
    text would parse to a wrong value or not at all. Volume and queue values are validated
    and kept, but are not part of ``NowPlaying``.
    """

    def __init__(self) -> None:
        self.player_name = ""
        self.volume = 0.0
        self.queue: dict[int, int] = {}
        self._playback: PlaybackInfo | None = None  # None: no player (empty value)
        self._track: dict[int, str] = {}
        self._duration_ms = 0

    def update(self, upd: EntityUpdate) -> bool:
        """Apply one update.

        Returns:
            True if ``now_playing()`` changed.

        Raises:
            AppleDataError: an unknown entity/attribute, or a value that does not parse
                (playback info, volume, duration, queue integers); the state is unchanged.
        """
        check_pair(upd.entity, upd.attribute)
        if upd.truncated and (upd.entity, upd.attribute) not in _TEXT:
            return False
        before = self.now_playing()
        if upd.entity == EntityId.PLAYER:
            self._update_player(upd.attribute, upd.value)
        elif upd.entity == EntityId.QUEUE:
            self._update_queue(upd.attribute, upd.value)
        else:
            self._update_track(upd.attribute, upd.value)
        return self.now_playing() != before

    def _update_player(self, attribute: int, value: str) -> None:
        if attribute == PlayerAttribute.NAME:
            self.player_name = value
        elif attribute == PlayerAttribute.PLAYBACK_INFO:
            # An empty value is what an iPhone sends when no app is playing.
            self._playback = parse_playback_info(value) if value.strip() else None
        elif value.strip():  # VOLUME
            self.volume = min(1.0, max(0.0, _number(value, "volume")))

    def _update_queue(self, attribute: int, value: str) -> None:
        if not value.strip():
            self.queue.pop(attribute, None)
        elif _INTEGER.fullmatch(value) is None:
            raise bad(f"queue value {value[:20]!r} is not an integer")
        else:
            self.queue[attribute] = int(value)

    def _update_track(self, attribute: int, value: str) -> None:
        if attribute == TrackAttribute.DURATION:
            seconds = _number(value, "duration") if value.strip() else 0.0
            self._duration_ms = max(0, round(seconds * 1000))
        else:
            self._track[attribute] = value

    def now_playing(self) -> NowPlaying:
        """The player as the media model's ``NowPlaying`` (no artwork: AMS carries none).

        REWINDING and FAST_FORWARDING become ``"playing"`` (the position moves); the rate
        is clamped to ``[0, 16]`` (a rewind's negative rate stands still) and the position
        to ``>= 0``. With no playback info the state is ``"stopped"``.
        """
        artist = self._track.get(TrackAttribute.ARTIST, "")
        album = self._track.get(TrackAttribute.ALBUM, "")
        title = self._track.get(TrackAttribute.TITLE, "")
        info = self._playback
        state: NowPlayingState
        if info is None:
            state, rate, position_ms = "stopped", 0.0, 0
        else:
            state = "paused" if info.state == PlaybackState.PAUSED else "playing"
            rate = min(MAX_RATE, max(0.0, info.rate))
            position_ms = max(0, round(info.elapsed_s * 1000))
        return NowPlaying(
            title=title,
            artists=[artist] if artist else [],
            album=album,
            duration_ms=self._duration_ms,
            position_ms=position_ms,
            rate=rate,
            state=state,
            artwork=b"",
            track_id=track_id_of(artist, album, title),
        )
