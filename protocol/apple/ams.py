"""Apple Media Service (AMS) codecs and the car's now-playing reducer.

Theory of operation. The car (Media Remote) writes an Entity Update *register* value naming
the attributes it wants of one entity (player, queue, track); the iPhone (Media Source)
notifies each value as ``entity | attribute | flags | UTF-8 value`` and again whenever it
changes. A value too long for the notification is cut and flagged truncated; the car then
writes ``entity | attribute`` to Entity Attribute and reads the whole value. Remote Command
notifies the commands the player offers; the car writes one command id to it.

``AmsPlayer`` folds updates into a ``protocol.media.NowPlaying`` so an iPhone lands in the
same media model as a CarHub phone. Layouts and bounds: PROTOCOL.md section 11.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from protocol.apple import MAX_ATTRIBUTE_VALUE, bad, cut_utf8, utf8
from protocol.apple._ams_ids import (
    ACTION_COMMANDS,
    FLAG_TRUNCATED,
    EntityId,
    EntityUpdate,
    PlaybackState,
    PlayerAttribute,
    QueueAttribute,
    RemoteCommand,
    TrackAttribute,
    check_local_pair,
    check_pair,
)
from protocol.apple.ams_player import (
    MAX_RATE,
    AmsPlayer,
    PlaybackInfo,
    format_playback_info,
    parse_playback_info,
    track_id_of,
)

# The ids and the player live in their own modules; this one is the public face.
_HEADER = 3  # entity, attribute, flags

__all__ = [
    "ACTION_COMMANDS",
    "FLAG_TRUNCATED",
    "MAX_RATE",
    "AmsPlayer",
    "EntityId",
    "EntityUpdate",
    "PlaybackInfo",
    "PlaybackState",
    "PlayerAttribute",
    "QueueAttribute",
    "RemoteCommand",
    "TrackAttribute",
    "decode_entity_attribute_request",
    "decode_entity_attribute_value",
    "decode_entity_update",
    "decode_register",
    "decode_remote_command",
    "decode_remote_commands",
    "encode_entity_attribute_request",
    "encode_entity_update",
    "encode_register",
    "encode_remote_commands",
    "format_playback_info",
    "parse_playback_info",
    "track_id_of",
]


def decode_entity_update(data: bytes) -> EntityUpdate:
    """Decode an Entity Update notification (car side).

    Args:
        data: ``entity | attribute | flags | value``, at most 512 bytes.

    Returns:
        The update; the value is decoded as UTF-8 with bad sequences replaced.

    Raises:
        AppleDataError: shorter than 3 bytes, longer than 512, or an unknown entity/attribute.
    """
    if len(data) < _HEADER:
        raise bad(f"entity update of {len(data)} bytes is too short")
    if len(data) > MAX_ATTRIBUTE_VALUE:
        raise bad(f"entity update of {len(data)} bytes is over {MAX_ATTRIBUTE_VALUE}")
    entity, attribute, flags = data[0], data[1], data[2]
    check_pair(entity, attribute)
    # Reserved flag bits are ignored, as the specification asks.
    value = data[_HEADER:].decode("utf-8", errors="replace")
    return EntityUpdate(entity, attribute, bool(flags & FLAG_TRUNCATED), value)


def encode_entity_update(entity: int, attribute: int, value: str, *, max_size: int) -> bytes:
    """Encode an Entity Update notification (phone side), truncating to fit.

    Args:
        entity: an ``EntityId``.
        attribute: an attribute id of that entity.
        value: the full value.
        max_size: the most bytes the notification may have (ATT MTU - 3); capped at 512.

    Returns:
        The notification; if the value did not fit it is cut at a UTF-8 character boundary
        and ``FLAG_TRUNCATED`` is set.

    Raises:
        ValueError: unknown entity/attribute, or ``max_size`` below 3.
    """
    check_local_pair(entity, attribute)
    if max_size < _HEADER:
        raise ValueError(f"max_size {max_size} leaves no room for the 3-byte header")
    raw = utf8(value)
    room = min(max_size, MAX_ATTRIBUTE_VALUE) - _HEADER
    cut = cut_utf8(raw, room)
    flags = FLAG_TRUNCATED if len(cut) < len(raw) else 0
    return bytes((entity, attribute, flags)) + cut


def encode_register(entity: EntityId, attributes: Sequence[int]) -> bytes:
    """Encode the car's Entity Update write registering ``attributes`` of ``entity``.

    Raises:
        ValueError: an unknown entity, an unknown or repeated attribute, or none at all.
    """
    if not attributes:
        raise ValueError("register at least one attribute")
    if len(set(attributes)) != len(attributes):
        raise ValueError("an attribute is registered twice")
    for a in attributes:
        check_local_pair(entity, a)
    return bytes((entity, *attributes))


def decode_register(data: bytes) -> tuple[int, tuple[int, ...]]:
    """Decode an Entity Update write (phone side).

    Returns:
        ``(entity, attribute ids)`` in the order written.

    Raises:
        AppleDataError: empty, no attribute, an unknown entity/attribute, or a repeat.
    """
    if len(data) < 2:
        raise bad("an entity update registration needs an entity and an attribute")
    entity, attributes = data[0], tuple(data[1:])
    if len(set(attributes)) != len(attributes):  # also bounds the length to 1 + 4
        raise bad("an attribute is registered twice")
    for a in attributes:
        check_pair(entity, a)
    return entity, attributes


def encode_entity_attribute_request(entity: int, attribute: int) -> bytes:
    """Encode the car's Entity Attribute write naming the value it will read next.

    Raises:
        ValueError: unknown entity/attribute.
    """
    check_local_pair(entity, attribute)
    return bytes((entity, attribute))


def decode_entity_attribute_request(data: bytes) -> tuple[int, int]:
    """Decode an Entity Attribute write (phone side).

    Raises:
        AppleDataError: not exactly 2 bytes, or an unknown entity/attribute.
    """
    if len(data) != 2:
        raise bad(f"entity attribute request of {len(data)} bytes, not 2")
    check_pair(data[0], data[1])
    return data[0], data[1]


def decode_entity_attribute_value(entity: int, attribute: int, data: bytes) -> EntityUpdate:
    """Turn the value read from Entity Attribute into a complete (untruncated) update.

    Args:
        entity: the entity the car wrote to Entity Attribute.
        attribute: the attribute it wrote.
        data: the value read (a long read), at most 512 bytes.

    Raises:
        AppleDataError: over 512 bytes, or an unknown entity/attribute.
    """
    check_pair(entity, attribute)
    if len(data) > MAX_ATTRIBUTE_VALUE:
        raise bad(f"entity attribute of {len(data)} bytes is over {MAX_ATTRIBUTE_VALUE}")
    return EntityUpdate(entity, attribute, False, data.decode("utf-8", errors="replace"))


def decode_remote_commands(data: bytes) -> frozenset[RemoteCommand]:
    """Decode the Remote Command notification: the commands the player offers now.

    Unknown (reserved) ids are ignored; an empty value means none.

    Raises:
        AppleDataError: over 512 bytes.
    """
    if len(data) > MAX_ATTRIBUTE_VALUE:
        raise bad(f"remote command list of {len(data)} bytes is over {MAX_ATTRIBUTE_VALUE}")
    known = {c.value for c in RemoteCommand}
    return frozenset(RemoteCommand(b) for b in data if b in known)


def encode_remote_commands(commands: Iterable[RemoteCommand]) -> bytes:
    """Encode the Remote Command notification (phone side), in id order, no repeats."""
    return bytes(sorted({int(RemoteCommand(c)) for c in commands}))


def decode_remote_command(data: bytes) -> RemoteCommand:
    """Decode the car's Remote Command write (phone side).

    Raises:
        AppleDataError: not exactly one byte, or an unknown command id.
    """
    if len(data) != 1:
        raise bad(f"remote command of {len(data)} bytes, not 1")
    try:
        return RemoteCommand(data[0])
    except ValueError:
        raise bad(f"unknown remote command {data[0]}") from None
