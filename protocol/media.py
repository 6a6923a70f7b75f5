"""Now-playing model, artwork by hash, media commands, and a pure player.

Theory of operation. The phone pushes ``NowPlaying`` when something changes (track, state,
a seek), never once a second: the message carries the position at the moment it was sent
and the playback ``rate``, and the car extrapolates with ``position_at``. Artwork is named by
its SHA-256 in ``NowPlaying.artwork``; the car asks for bytes it lacks with
``ArtworkRequest`` and the phone answers with ``Artwork``, so each image crosses once.

The car drives the phone's player with ``MediaCommand``. ``PlayerState`` is that player as
a value: ``apply_command`` and ``advance`` return a new state and never read a clock (time
is passed in as ``now_ms``), so the phone's simulated player is a thin timer around them
and tests need no sleeping.

Units are normalised: milliseconds as ints, ``rate`` 1.0 for normal speed, ``state`` one of
``playing``/``paused``/``stopped``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

import msgspec

from protocol.errors import MessageError, Reason
from protocol.messages import Message, register

__all__ = [
    "PREVIOUS_RESTARTS_AFTER_MS",
    "Action",
    "Artwork",
    "ArtworkRequest",
    "MediaCommand",
    "NowPlaying",
    "PlaybackState",
    "PlayerState",
    "Track",
    "advance",
    "apply_command",
    "artwork_of",
    "now_playing",
    "position_at",
    "sniff_image_mime",
    "validate_command",
]

PlaybackState = Literal["playing", "paused", "stopped"]
Action = Literal["play", "pause", "toggle", "next", "previous", "seek"]
ACTIONS: frozenset[str] = frozenset({"play", "pause", "toggle", "next", "previous", "seek"})
# Like most players, "previous" restarts the current track unless it has just begun.
PREVIOUS_RESTARTS_AFTER_MS = 3000

Ms = Annotated[int, msgspec.Meta(ge=0)]
Rate = Annotated[float, msgspec.Meta(ge=0.0, le=16.0)]
Sha256 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
# Artwork must fit a frame (1 MiB) with room for the header.
ArtworkBytes = Annotated[bytes, msgspec.Meta(max_length=1_000_000)]


class NowPlaying(Message, tag=40):
    """Phone -> car: what is playing, with the position at send time.

    ``duration_ms`` is 0 when unknown (a stream); ``artwork`` is a SHA-256 or ``b""``.
    """

    title: str
    artists: list[str]
    album: str
    duration_ms: Ms
    position_ms: Ms
    rate: Rate
    state: PlaybackState
    artwork: bytes
    track_id: str

    def __post_init__(self) -> None:
        if len(self.artwork) not in (0, 32):
            raise MessageError(Reason.MALFORMED, "artwork must be a SHA-256 or empty")


class Artwork(Message, tag=41):
    """Phone -> car: image bytes named by their SHA-256 (checked on decode)."""

    hash: Sha256
    mime: str
    data: ArtworkBytes

    def __post_init__(self) -> None:
        if hashlib.sha256(self.data).digest() != self.hash:
            raise MessageError(Reason.MALFORMED, "artwork bytes do not match their hash")


class ArtworkRequest(Message, tag=42):
    """Car -> phone: send the artwork with this hash."""

    hash: Sha256


class MediaCommand(Message, tag=43):
    """Car -> phone: drive the player; ``position_ms`` is used by ``seek`` only."""

    action: Action
    position_ms: Ms = 0


register(NowPlaying, Artwork, ArtworkRequest, MediaCommand)


class Track(msgspec.Struct, frozen=True):
    """One playlist entry of the phone's player."""

    track_id: str
    title: str
    artists: tuple[str, ...] = ()
    album: str = ""
    duration_ms: int = 0
    artwork: bytes = b""


class PlayerState(msgspec.Struct, frozen=True):
    """A player as a value: ``position_ms`` was true at ``since_ms``."""

    tracks: tuple[Track, ...]
    index: int = 0
    state: PlaybackState = "stopped"
    position_ms: int = 0
    since_ms: int = 0
    rate: float = 1.0

    @property
    def track(self) -> Track | None:
        """The current track, or None for an empty playlist."""
        return self.tracks[self.index] if self.tracks else None


def artwork_of(data: bytes, mime: str) -> Artwork:
    """Build an ``Artwork`` message named by the SHA-256 of ``data``."""
    return Artwork(hashlib.sha256(data).digest(), mime, data)


def sniff_image_mime(data: bytes) -> str | None:
    """The image type that ``data``'s magic bytes name (PNG, JPEG, WebP, GIF), or None.

    A file's bytes are trusted over the type a tag or a player declares for them.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def position_at(np: NowPlaying, received_at_ms: int, now_ms: int) -> int:
    """Extrapolate the position of ``np`` at ``now_ms``.

    Args:
        np: the last ``NowPlaying`` received.
        received_at_ms: when it was received, on the caller's clock.
        now_ms: the time to extrapolate to, on the same clock.

    Returns:
        The position in ms: moving at ``rate`` while playing, clamped to
        ``[0, duration_ms]`` (no upper clamp when the duration is unknown).
    """
    pos = np.position_ms
    if np.state == "playing":
        pos += round(max(0, now_ms - received_at_ms) * np.rate)
    return _clamp(pos, np.duration_ms)


def validate_command(cmd: MediaCommand) -> None:
    """Check a command built locally the way decoding checks a received one.

    Raises:
        MessageError: unknown action or negative position.
    """
    if cmd.action not in ACTIONS:
        raise MessageError(Reason.MALFORMED, f"unknown media action {cmd.action!r}")
    if not isinstance(cmd.position_ms, int) or cmd.position_ms < 0:
        raise MessageError(Reason.MALFORMED, f"bad seek position {cmd.position_ms!r}")


def advance(state: PlayerState, now_ms: int) -> PlayerState:
    """Move a playing player forward to ``now_ms``, across track ends, wrapping the playlist.

    Returns:
        A state with ``since_ms == now_ms`` (unchanged fields otherwise when not playing).
    """
    if state.state != "playing" or not state.tracks:
        return msgspec.structs.replace(state, since_ms=now_ms)
    pos = state.position_ms + round(max(0, now_ms - state.since_ms) * state.rate)
    total = sum(t.duration_ms for t in state.tracks)
    if total <= 0:  # nothing with a length: nothing to advance through
        return msgspec.structs.replace(state, since_ms=now_ms)
    index = state.index
    if pos >= state.tracks[index].duration_ms:
        # Skip whole laps first so a player left running for days costs O(tracks).
        pos -= state.tracks[index].duration_ms
        index = (index + 1) % len(state.tracks)
        pos %= total
        while pos >= state.tracks[index].duration_ms:
            pos -= state.tracks[index].duration_ms
            index = (index + 1) % len(state.tracks)
    return msgspec.structs.replace(state, index=index, position_ms=pos, since_ms=now_ms)


def apply_command(state: PlayerState, cmd: MediaCommand, now_ms: int) -> PlayerState:
    """Apply a car's command to the player.

    Args:
        state: the player before the command.
        cmd: the command.
        now_ms: when it is applied.

    Returns:
        The player after the command; an empty playlist stays stopped.

    Raises:
        MessageError: the command is invalid (see ``validate_command``).
    """
    validate_command(cmd)
    s = advance(state, now_ms)
    if not s.tracks:
        return s
    handler = _HANDLERS[cmd.action]
    return handler(s, cmd)


def now_playing(state: PlayerState, now_ms: int) -> NowPlaying:
    """Describe the player at ``now_ms`` as the message the phone pushes."""
    s = advance(state, now_ms)
    t = s.track or Track(track_id="", title="")
    return NowPlaying(
        title=t.title,
        artists=list(t.artists),
        album=t.album,
        duration_ms=t.duration_ms,
        position_ms=_clamp(s.position_ms, t.duration_ms),
        rate=s.rate,
        state=s.state if s.tracks else "stopped",
        artwork=t.artwork,
        track_id=t.track_id,
    )


def _clamp(pos: int, duration_ms: int) -> int:
    """Clamp a position to the track; a 0 duration means unknown, so only clamp below."""
    pos = max(0, pos)
    return min(pos, duration_ms) if duration_ms > 0 else pos


def _play(s: PlayerState, _: MediaCommand) -> PlayerState:
    """Start or resume; from stopped, start the current track at 0."""
    pos = 0 if s.state == "stopped" else s.position_ms
    return msgspec.structs.replace(s, state="playing", position_ms=pos)


def _pause(s: PlayerState, _: MediaCommand) -> PlayerState:
    """Pause; a stopped player stays stopped."""
    return s if s.state == "stopped" else msgspec.structs.replace(s, state="paused")


def _toggle(s: PlayerState, cmd: MediaCommand) -> PlayerState:
    """Pause when playing, otherwise play."""
    return _pause(s, cmd) if s.state == "playing" else _play(s, cmd)


def _next(s: PlayerState, _: MediaCommand) -> PlayerState:
    """Go to the next track (wrapping) at 0, keeping play/pause."""
    return msgspec.structs.replace(s, index=(s.index + 1) % len(s.tracks), position_ms=0)


def _previous(s: PlayerState, _: MediaCommand) -> PlayerState:
    """Restart the track, or go to the previous one (wrapping) if it has just started."""
    if s.position_ms > PREVIOUS_RESTARTS_AFTER_MS:
        return msgspec.structs.replace(s, position_ms=0)
    return msgspec.structs.replace(s, index=(s.index - 1) % len(s.tracks), position_ms=0)


def _seek(s: PlayerState, cmd: MediaCommand) -> PlayerState:
    """Jump within the current track, clamped to its length."""
    return msgspec.structs.replace(
        s, position_ms=_clamp(cmd.position_ms, s.tracks[s.index].duration_ms)
    )


_HANDLERS = {
    "play": _play,
    "pause": _pause,
    "toggle": _toggle,
    "next": _next,
    "previous": _previous,
    "seek": _seek,
}
