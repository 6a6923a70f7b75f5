"""Apple Notification Center Service (ANCS) codecs.

Theory of operation. The iPhone (Notification Provider) notifies an 8-byte event on
Notification Source for each notification added, modified or removed. The car
(Notification Consumer) writes a command to Control Point (get the attributes of a
notification, or of an app, or perform an action) and the iPhone answers Get commands on
Data Source, split into notifications of at most ATT MTU - 3 bytes. ``ResponseReader``
reassembles one answer from any split and checks it against the command it answers; the car
sends one command at a time, so one reader is live at a time. Layouts: PROTOCOL.md 11.2.
"""

from __future__ import annotations

import re
import struct
from datetime import datetime

from protocol.apple import MAX_ATTRIBUTE_VALUE, bad, utf8
from protocol.apple._ancs_ids import (
    CAR_APP_ATTRIBUTES,
    CAR_NOTIFICATION_ATTRIBUTES,
    MAX_APP_ID,
    MAX_RESPONSE,
    WITH_MAX_LEN,
    ActionId,
    AppAttribute,
    AppAttributes,
    Category,
    Command,
    CommandId,
    ErrorCode,
    EventFlags,
    EventId,
    GetAppAttributes,
    GetNotificationAttributes,
    NotificationAttribute,
    NotificationAttributes,
    NotificationEvent,
    PerformAction,
    Response,
)
from protocol.apple.ancs_data import ResponseReader, encode_answer, encode_response, split

__all__ = [
    "CAR_APP_ATTRIBUTES",
    "CAR_NOTIFICATION_ATTRIBUTES",
    "MAX_APP_ID",
    "MAX_RESPONSE",
    "ActionId",
    "AppAttribute",
    "AppAttributes",
    "Category",
    "Command",
    "CommandId",
    "ErrorCode",
    "EventFlags",
    "EventId",
    "GetAppAttributes",
    "GetNotificationAttributes",
    "NotificationAttribute",
    "NotificationAttributes",
    "NotificationEvent",
    "PerformAction",
    "Response",
    "ResponseReader",
    "category_name",
    "decode_command",
    "decode_notification_source",
    "encode_answer",
    "encode_command",
    "encode_notification_source",
    "encode_response",
    "format_date",
    "parse_date",
    "split",
]

_EVENT = struct.Struct("<BBBBI")
_NOTIFICATION_IDS = frozenset(int(a) for a in NotificationAttribute)
_APP_IDS = frozenset(int(a) for a in AppAttribute)
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})", re.ASCII)


def category_name(category: int) -> str:
    """The lower-case name of an ANCS category id (``"other"`` for an unknown one)."""
    try:
        return Category(category).name.lower()
    except ValueError:
        return "other"


def decode_notification_source(data: bytes) -> NotificationEvent:
    """Decode a Notification Source event (car side).

    Unknown categories are kept as their id; unknown (reserved) flag bits are dropped.

    Raises:
        AppleDataError: not exactly 8 bytes, or an unknown event id.
    """
    if len(data) != _EVENT.size:
        raise bad(f"notification source event of {len(data)} bytes, not 8")
    event, flags, category, count, uid = _EVENT.unpack(data)
    try:
        event_id = EventId(event)
    except ValueError:
        raise bad(f"unknown notification event {event}") from None
    known = EventFlags(flags & sum(EventFlags))
    return NotificationEvent(event_id, known, category, count, uid)


def encode_notification_source(ev: NotificationEvent) -> bytes:
    """Encode a Notification Source event (phone side): 8 bytes, uid little-endian."""
    return _EVENT.pack(ev.event, ev.flags, ev.category, ev.category_count, ev.uid)


def _check_attributes(cmd: GetNotificationAttributes | GetAppAttributes) -> None:
    """Refuse (ValueError) a command the iPhone would refuse: our bug, not the peer's."""
    ids = [a for a, _ in cmd.attributes]
    if not ids or len(set(ids)) != len(ids):
        raise ValueError("ask for at least one attribute, each once")
    for a, max_len in cmd.attributes:
        if isinstance(cmd, GetAppAttributes):
            if a not in _APP_IDS or max_len is not None:
                raise ValueError(f"app attribute {a} (max length {max_len}) is not valid")
        elif a not in _NOTIFICATION_IDS:
            raise ValueError(f"unknown notification attribute {a}")
        elif (a in WITH_MAX_LEN) != (max_len is not None):
            raise ValueError(f"attribute {a}: a max length is for title/subtitle/message")
        elif max_len is not None and not 1 <= max_len <= 0xFFFF:
            raise ValueError(f"max length {max_len} is not 1..65535")


def encode_command(cmd: Command) -> bytes:
    """Encode a Control Point command (car side).

    Raises:
        ValueError: a command the iPhone would refuse (unknown or repeated attribute ids,
            a max length where none belongs or missing where required, a bad app id).
    """
    if not isinstance(cmd, GetAppAttributes) and not 0 <= cmd.uid <= 0xFFFFFFFF:
        raise ValueError(f"notification uid {cmd.uid} is not a u32")
    if isinstance(cmd, PerformAction):
        return struct.pack("<BIB", CommandId.PERFORM_NOTIFICATION_ACTION, cmd.uid, cmd.action)
    _check_attributes(cmd)
    if isinstance(cmd, GetAppAttributes):
        app = utf8(cmd.app_id)
        if not app or b"\0" in app or len(app) > MAX_APP_ID:
            raise ValueError(f"app id {cmd.app_id[:40]!r} is empty, has NUL or is too long")
        return (
            bytes((CommandId.GET_APP_ATTRIBUTES,))
            + app
            + b"\0"
            + bytes(a for a, _ in cmd.attributes)
        )
    out = bytearray(struct.pack("<BI", CommandId.GET_NOTIFICATION_ATTRIBUTES, cmd.uid))
    for a, max_len in cmd.attributes:
        out += struct.pack("<BH", a, max_len) if max_len is not None else bytes((a,))
    return bytes(out)


def _app_id(data: bytes, start: int) -> tuple[str, int]:
    """Decode the NUL-terminated app id at ``start``; returns it and the index after NUL."""
    end = data.find(b"\0", start, start + MAX_APP_ID + 1)
    if end < 0:
        raise bad(f"app identifier is not NUL-terminated within {MAX_APP_ID} bytes")
    if end == start:
        raise bad("empty app identifier")
    try:
        return data[start:end].decode("utf-8"), end + 1
    except UnicodeDecodeError:
        raise bad("app identifier is not UTF-8") from None


def decode_command(data: bytes) -> Command:
    """Decode a Control Point write (phone side).

    Raises:
        AppleDataError: an unknown command, unknown or repeated attribute ids, a missing
            max length, trailing bytes, or a bad app id (the phone answers with an
            ``ErrorCode``).
    """
    if not data:
        raise bad("empty control point command")
    if len(data) > MAX_ATTRIBUTE_VALUE:
        raise bad(f"control point command of {len(data)} bytes")
    if data[0] == CommandId.PERFORM_NOTIFICATION_ACTION:
        if len(data) != 6:
            raise bad(f"perform action of {len(data)} bytes, not 6")
        uid, action = struct.unpack_from("<IB", data, 1)
        if action not in {a.value for a in ActionId}:
            raise bad(f"unknown action {action}")
        return PerformAction(uid, ActionId(action))
    attrs: list[tuple[int, int | None]] = []
    if data[0] == CommandId.GET_APP_ATTRIBUTES:
        app_id, i = _app_id(data, 1)
        for a in data[i:]:
            attrs.append((a, None))
        cmd: GetNotificationAttributes | GetAppAttributes = GetAppAttributes(app_id, tuple(attrs))
    elif data[0] == CommandId.GET_NOTIFICATION_ATTRIBUTES:
        if len(data) < 5:
            raise bad("get notification attributes without a uid")
        i = 5
        while i < len(data):
            a = data[i]
            if a in WITH_MAX_LEN:
                if i + 3 > len(data):
                    raise bad(f"attribute {a} lacks its max length")
                attrs.append((a, int.from_bytes(data[i + 1 : i + 3], "little")))
                i += 3
            else:
                attrs.append((a, None))
                i += 1
        cmd = GetNotificationAttributes(int.from_bytes(data[1:5], "little"), tuple(attrs))
    else:
        raise bad(f"unknown control point command {data[0]}")
    try:
        _check_attributes(cmd)
    except ValueError as e:
        raise bad(str(e)) from None
    return cmd


def parse_date(text: str) -> str:
    """Convert an ANCS date ``yyyyMMdd'T'HHmmSS`` to ISO 8601 ``YYYY-MM-DDTHH:MM:SS``.

    Raises:
        AppleDataError: not that shape, or not a real date and time.
    """
    m = _DATE.fullmatch(text)
    if m is None:
        raise bad(f"date {text[:24]!r} is not yyyyMMddTHHmmSS")
    try:
        y, mo, d, h, mi, sec = (int(g) for g in m.groups())
        dt = datetime(y, mo, d, h, mi, sec)
    except ValueError:
        raise bad(f"date {text!r} is not a real date") from None
    # Not strftime: glibc writes year 1 as "1", not "0001".
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    )


def format_date(dt: datetime) -> str:
    """Format a date as ANCS sends it (``yyyyMMdd'T'HHmmSS``; phone side)."""
    return f"{dt.year:04d}{dt.month:02d}{dt.day:02d}T{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"
