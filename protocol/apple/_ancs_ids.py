"""ANCS ids, bounds and the command and answer values (shared by the ANCS modules)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

__all__ = [
    "CAR_APP_ATTRIBUTES",
    "CAR_NOTIFICATION_ATTRIBUTES",
    "MAX_APP_ID",
    "MAX_RESPONSE",
    "WITH_MAX_LEN",
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
]


class Category(IntEnum):
    """Notification categories; ``category_name`` gives the API's lower-case names."""

    OTHER = 0
    INCOMING_CALL = 1
    MISSED_CALL = 2
    VOICEMAIL = 3
    SOCIAL = 4
    SCHEDULE = 5
    EMAIL = 6
    NEWS = 7
    HEALTH_AND_FITNESS = 8
    BUSINESS_AND_FINANCE = 9
    LOCATION = 10
    ENTERTAINMENT = 11


class EventId(IntEnum):
    """Notification Source event ids."""

    ADDED = 0
    MODIFIED = 1
    REMOVED = 2


class EventFlags(IntFlag):
    """Notification Source event flags."""

    SILENT = 1
    IMPORTANT = 2
    PRE_EXISTING = 4
    POSITIVE_ACTION = 8
    NEGATIVE_ACTION = 16


class CommandId(IntEnum):
    """Control Point command ids (also the first byte of a Data Source answer)."""

    GET_NOTIFICATION_ATTRIBUTES = 0
    GET_APP_ATTRIBUTES = 1
    PERFORM_NOTIFICATION_ACTION = 2


class NotificationAttribute(IntEnum):
    """Notification attribute ids; TITLE, SUBTITLE and MESSAGE take a max length."""

    APP_IDENTIFIER = 0
    TITLE = 1
    SUBTITLE = 2
    MESSAGE = 3
    MESSAGE_SIZE = 4
    DATE = 5
    POSITIVE_ACTION_LABEL = 6
    NEGATIVE_ACTION_LABEL = 7


class AppAttribute(IntEnum):
    """App attribute ids."""

    DISPLAY_NAME = 0


class ActionId(IntEnum):
    """Perform Notification Action ids."""

    POSITIVE = 0
    NEGATIVE = 1


class ErrorCode(IntEnum):
    """ATT error codes the iPhone answers a Control Point write with."""

    UNKNOWN_COMMAND = 0xA0
    INVALID_COMMAND = 0xA1
    INVALID_PARAMETER = 0xA2
    ACTION_FAILED = 0xA3


# The car keeps the whole answer to one command in memory: this bounds it. The car's own
# request (CAR_NOTIFICATION_ATTRIBUTES) needs under 1 KiB plus the two action labels.
MAX_RESPONSE = 8 * 1024
# Bundle identifiers are short (reverse DNS); a longer app id is refused.
MAX_APP_ID = 255
WITH_MAX_LEN = frozenset(
    {NotificationAttribute.TITLE, NotificationAttribute.SUBTITLE, NotificationAttribute.MESSAGE}
)

# What the car asks of each notification: (attribute id, max length in bytes or None).
CAR_NOTIFICATION_ATTRIBUTES: tuple[tuple[int, int | None], ...] = (
    (NotificationAttribute.APP_IDENTIFIER, None),
    (NotificationAttribute.TITLE, 64),
    (NotificationAttribute.SUBTITLE, 64),
    (NotificationAttribute.MESSAGE, 512),
    (NotificationAttribute.DATE, None),
    (NotificationAttribute.POSITIVE_ACTION_LABEL, None),
    (NotificationAttribute.NEGATIVE_ACTION_LABEL, None),
)
# What the car asks of each app it has not cached yet.
CAR_APP_ATTRIBUTES: tuple[tuple[int, int | None], ...] = ((AppAttribute.DISPLAY_NAME, None),)


@dataclass(frozen=True)
class NotificationEvent:
    """One Notification Source event."""

    event: EventId
    flags: EventFlags
    category: int
    category_count: int
    uid: int


@dataclass(frozen=True)
class GetNotificationAttributes:
    """Control Point: the attributes of notification ``uid``; (id, max length or None)."""

    uid: int
    attributes: tuple[tuple[int, int | None], ...]


@dataclass(frozen=True)
class GetAppAttributes:
    """Control Point: the attributes of the app ``app_id`` (no max lengths in ANCS)."""

    app_id: str
    attributes: tuple[tuple[int, int | None], ...]


@dataclass(frozen=True)
class PerformAction:
    """Control Point: perform the positive or negative action of notification ``uid``."""

    uid: int
    action: ActionId


Command = GetNotificationAttributes | GetAppAttributes | PerformAction


@dataclass(frozen=True)
class NotificationAttributes:
    """A Data Source answer to ``GetNotificationAttributes``: raw text by attribute id."""

    uid: int
    values: dict[int, str]


@dataclass(frozen=True)
class AppAttributes:
    """A Data Source answer to ``GetAppAttributes``."""

    app_id: str
    values: dict[int, str]


Response = NotificationAttributes | AppAttributes
