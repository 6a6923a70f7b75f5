"""AMS ids, the Entity Update value and the entity/attribute check (shared by the AMS modules)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from protocol.apple import AppleDataError, bad

__all__ = [
    "ACTION_COMMANDS",
    "FLAG_TRUNCATED",
    "EntityId",
    "EntityUpdate",
    "PlaybackState",
    "PlayerAttribute",
    "QueueAttribute",
    "RemoteCommand",
    "TrackAttribute",
    "check_local_pair",
    "check_pair",
]


class RemoteCommand(IntEnum):
    """Remote Command ids (AMS appendix, table A-1)."""

    PLAY = 0
    PAUSE = 1
    TOGGLE_PLAY_PAUSE = 2
    NEXT_TRACK = 3
    PREVIOUS_TRACK = 4
    VOLUME_UP = 5
    VOLUME_DOWN = 6
    ADVANCE_REPEAT_MODE = 7
    ADVANCE_SHUFFLE_MODE = 8
    SKIP_FORWARD = 9
    SKIP_BACKWARD = 10
    LIKE_TRACK = 11
    DISLIKE_TRACK = 12
    BOOKMARK_TRACK = 13


# The car's media actions (protocol.media.Action) that AMS can carry; "seek" has none.
ACTION_COMMANDS: dict[str, RemoteCommand] = {
    "play": RemoteCommand.PLAY,
    "pause": RemoteCommand.PAUSE,
    "toggle": RemoteCommand.TOGGLE_PLAY_PAUSE,
    "next": RemoteCommand.NEXT_TRACK,
    "previous": RemoteCommand.PREVIOUS_TRACK,
}


class EntityId(IntEnum):
    """AMS entities."""

    PLAYER = 0
    QUEUE = 1
    TRACK = 2


class PlayerAttribute(IntEnum):
    """Attributes of the player entity."""

    NAME = 0
    PLAYBACK_INFO = 1
    VOLUME = 2


class QueueAttribute(IntEnum):
    """Attributes of the queue entity (integer strings)."""

    INDEX = 0
    COUNT = 1
    SHUFFLE_MODE = 2
    REPEAT_MODE = 3


class TrackAttribute(IntEnum):
    """Attributes of the track entity; DURATION is seconds as a float string."""

    ARTIST = 0
    ALBUM = 1
    TITLE = 2
    DURATION = 3


class PlaybackState(IntEnum):
    """The first field of PLAYBACK_INFO."""

    PAUSED = 0
    PLAYING = 1
    REWINDING = 2
    FAST_FORWARDING = 3


FLAG_TRUNCATED = 0x01
# Known attribute ids per entity: anything else is refused.
_ATTRIBUTES: dict[int, frozenset[int]] = {
    EntityId.PLAYER: frozenset(PlayerAttribute),
    EntityId.QUEUE: frozenset(QueueAttribute),
    EntityId.TRACK: frozenset(TrackAttribute),
}


@dataclass(frozen=True)
class EntityUpdate:
    """One Entity Update notification: ``value`` is the (possibly truncated) text."""

    entity: int
    attribute: int
    truncated: bool
    value: str


def check_pair(entity: int, attribute: int) -> None:
    known = _ATTRIBUTES.get(entity)
    if known is None:
        raise bad(f"unknown AMS entity {entity}")
    if attribute not in known:
        raise bad(f"unknown AMS attribute {attribute} of entity {entity}")


def check_local_pair(entity: int, attribute: int) -> None:
    try:
        check_pair(entity, attribute)
    except AppleDataError as e:
        raise ValueError(e.detail) from None
