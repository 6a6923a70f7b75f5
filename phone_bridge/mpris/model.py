"""MPRIS players as values: which one to follow, what the car is told, what a command calls.

No D-Bus here (``bus.py`` is the adapter): the functions take what the bus said, already
unpacked from its variants into plain Python values, and a monotonic ``now`` in seconds,
so the tests need neither a bus nor a clock.

The active player, for ``mpris:`` (any player) or ``mpris:NAME`` (``NAME`` itself or one of
its instances, ``NAME.instance123``, as ``playerctl -p NAME`` matches):

1. a player that is Playing; of several, the one that started playing last;
2. else the player whose state changed last (it appeared, paused, changed track...);
3. ties: the bus name in alphabetical order.

So pressing play in a second player moves the car to it, and pausing it leaves the car on
it (paused) until another player plays.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from protocol.media import NowPlaying

__all__ = [
    "BUS_PREFIX",
    "NOTHING",
    "NO_TRACK",
    "PlayerView",
    "command_call",
    "matches",
    "now_playing_of",
    "pick_active",
    "valid_player_name",
]

BUS_PREFIX = "org.mpris.MediaPlayer2."
# The spec's "no track" id: SetPosition must not be called with it.
NO_TRACK = "/org/mpris/MediaPlayer2/TrackList/NoTrack"
_NAME = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)*")
_MAX_RATE = 16.0  # protocol.media.NowPlaying.rate's bound
# A length or position past int64 (a player's double, say 1e300) is clamped: msgpack and the
# car take at most uint64 milliseconds, and a bigger int would raise when the car is told.
_MAX_US = 2**63 - 1
_STATES = {"Playing": "playing", "Paused": "paused"}
NOTHING = NowPlaying(
    title="", artists=[], album="", duration_ms=0, position_ms=0, rate=1.0,
    state="stopped", artwork=b"", track_id="",
)  # fmt: skip


@dataclass
class PlayerView:
    """What we know of one player on the bus.

    ``position_us`` was true at ``read_at``; ``changed_at`` is the last signal or reading
    that changed something; ``playing_since`` when it last became Playing (monotonic s).
    """

    bus_name: str
    owner: str
    status: str = "Stopped"
    metadata: dict[str, Any] = field(default_factory=dict)
    position_us: int = 0
    rate: float = 1.0
    read_at: float = 0.0
    changed_at: float = 0.0
    playing_since: float = 0.0

    def update(self, props: dict[str, Any], now: float) -> None:
        """Take the properties a ``GetAll`` or a ``PropertiesChanged`` carried."""
        if "PlaybackStatus" in props:
            status = str(props["PlaybackStatus"])
            if status == "Playing" and self.status != "Playing":
                self.playing_since = now
            if status != self.status:
                self.position_us = self.position_at(now)  # the clock stops or starts here
                self.read_at = now
            self.status = status
        if isinstance(props.get("Metadata"), dict):
            self.metadata = props["Metadata"]
        if "Rate" in props:
            self.seek(self.position_at(now), now)
            self.rate = _number(props["Rate"], 1.0)
        if "Position" in props:
            self.seek(int(_number(props["Position"], 0)), now)
        self.changed_at = now

    def seek(self, position_us: int, now: float) -> None:
        """Record a position read (or signalled by ``Seeked``) at ``now``."""
        self.position_us, self.read_at = min(max(0, position_us), _MAX_US), now

    def position_at(self, now: float) -> int:
        """The position in µs at ``now``, moving at ``rate`` while Playing."""
        pos = self.position_us
        if self.status == "Playing":
            rate = min(max(0.0, self.rate), _MAX_RATE)
            pos = min(pos + int(max(0.0, now - self.read_at) * 1e6 * rate), _MAX_US)
        length = self.length_us
        return min(pos, length) if length > 0 else pos

    @property
    def length_us(self) -> int:
        return min(max(0, int(_number(self.metadata.get("mpris:length"), 0))), _MAX_US)

    @property
    def track_id(self) -> str:
        """The ``mpris:trackid`` object path, or "" when absent or the spec's "no track"."""
        tid = self.metadata.get("mpris:trackid")
        return tid if isinstance(tid, str) and tid.startswith("/") and tid != NO_TRACK else ""

    @property
    def art_url(self) -> str:
        url = self.metadata.get("mpris:artUrl")
        return url.strip() if isinstance(url, str) else ""


def valid_player_name(name: str) -> bool:
    """Tell whether ``NAME`` can follow ``org.mpris.MediaPlayer2.`` in a bus name."""
    return len(BUS_PREFIX + name) <= 255 and _NAME.fullmatch(name) is not None


def matches(bus_name: str, wanted: str | None) -> bool:
    """Whether ``bus_name`` is an MPRIS player that ``mpris:WANTED`` follows."""
    if not bus_name.startswith(BUS_PREFIX):
        return False
    if not wanted:
        return True
    own = bus_name[len(BUS_PREFIX) :]
    return own == wanted or own.startswith(wanted + ".")


def pick_active(players: Iterable[PlayerView], wanted: str | None) -> PlayerView | None:
    """The player to follow (see the module's docstring), or None when none matches."""

    def rank(p: PlayerView) -> tuple[bool, float, str]:
        playing = p.status == "Playing"
        return (not playing, -(p.playing_since if playing else p.changed_at), p.bus_name)

    candidates = [p for p in players if matches(p.bus_name, wanted)]
    return min(candidates, key=rank) if candidates else None


def now_playing_of(view: PlayerView | None, artwork: bytes, now: float) -> NowPlaying:
    """Describe a player as the car's ``NowPlaying``.

    Args:
        view: the player, or None for "nothing plays" (stopped, no title).
        artwork: the SHA-256 of its cover, or ``b""`` (not loaded, none, or failed).
        now: monotonic seconds, to carry the position of this moment.

    Returns:
        The message; µs become ms, the rate is bounded as the wire wants, and a player
        without ``mpris:trackid`` gets an id from its title, artists and album.
    """
    if view is None:
        return NOTHING
    md = view.metadata
    title = _text(md.get("xesam:title")) or _title_from_url(md.get("xesam:url"))
    artists = _texts(md.get("xesam:artist"))
    album = _text(md.get("xesam:album"))
    return NowPlaying(
        title=title,
        artists=artists,
        album=album,
        duration_ms=view.length_us // 1000,
        position_ms=view.position_at(now) // 1000,
        rate=min(max(view.rate, 0.0), _MAX_RATE),
        state=_STATES.get(view.status, "stopped"),  # type: ignore[arg-type]
        artwork=artwork,
        track_id=view.track_id or _derived_id(view.bus_name, title, artists, album),
    )


def command_call(
    action: str, position_ms: int, view: PlayerView, now: float
) -> tuple[str, str, list[Any]]:
    """The ``org.mpris.MediaPlayer2.Player`` call a car's command becomes.

    Args:
        action: the car's action (already validated: ``protocol.media.ACTIONS``).
        position_ms: the seek target (``seek`` only).
        view: the player that takes it.
        now: monotonic seconds (a relative ``Seek`` needs the position now).

    Returns:
        (member, signature, body). ``seek`` is ``SetPosition(trackid, µs)``, or a relative
        ``Seek(offset)`` for a player that names no track (SetPosition needs its id).
    """
    if action == "seek":
        target_us = position_ms * 1000
        if view.track_id:
            return "SetPosition", "ox", [view.track_id, target_us]
        return "Seek", "x", [target_us - view.position_at(now)]
    member = {
        "play": "Play",
        "pause": "Pause",
        "toggle": "PlayPause",
        "next": "Next",
        "previous": "Previous",
    }[action]
    return member, "", []


def _number(value: Any, default: float) -> float:
    """A D-Bus number of any type (players disagree: x, t, i, u or d), else ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    try:
        number = float(value)
    except OverflowError:  # an int past a double (not from D-Bus, whose ints are 64-bit)
        return default
    return number if math.isfinite(number) else default  # NaN and infinities are no numbers


def _text(value: Any) -> str:
    """A string value, or the first of a list (players that send ``as`` for ``s``)."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), "")
    return value.strip() if isinstance(value, str) else ""


def _texts(value: Any) -> list[str]:
    """A list of strings from ``as`` (or a lone ``s``, as some players send)."""
    values = value if isinstance(value, list) else [value]
    return [v.strip() for v in values if isinstance(v, str) and v.strip()]


def _title_from_url(url: Any) -> str:
    """A file's name from ``xesam:url`` when a player gives no title."""
    if not isinstance(url, str) or not url:
        return ""
    path = unquote(urlparse(url).path).rstrip("/")
    return path.rsplit("/", 1)[-1] or url


def _derived_id(bus_name: str, title: str, artists: list[str], album: str) -> str:
    """A stable track id from what is shown, when the player gives none."""
    key = "\x1f".join([bus_name, title, "\x1e".join(artists), album])
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
