"""The emulated iPhone's Apple Notification Center Service.

Notification Source (notify): an 8-byte event per notification added (with its category,
the count in that category and the positive/negative action flags) or removed. Control
Point (write): Get Notification Attributes, Get App Attributes and Perform Notification
Action; a bad command is refused with ANCS's ATT errors 0xA0-0xA3. Data Source (notify):
the answer to a Get command, split into notifications of ATT MTU - 3 bytes (a client
waits for every byte). A performed action is reported (``emit``) and the notification is
then removed, as iOS does. Every access needs a secure link (``LinkGuard``).

Notifications are posted ``delay`` seconds after the first car subscribes; a car that
subscribes later first gets the existing ones as ADDED with the PRE_EXISTING flag.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bumble import att
from bumble.gatt import Characteristic, Service

from phone_bridge.ios.guard import LinkGuard
from phone_bridge.ios.notifications import NotificationSpec
from protocol.apple import (
    ANCS_CONTROL_POINT_UUID,
    ANCS_DATA_SOURCE_UUID,
    ANCS_NOTIFICATION_SOURCE_UUID,
    ANCS_SERVICE_UUID,
    AppleDataError,
    utf8,
)
from protocol.apple.ancs import (
    ActionId,
    AppAttribute,
    ErrorCode,
    EventFlags,
    EventId,
    GetAppAttributes,
    GetNotificationAttributes,
    NotificationAttribute,
    NotificationEvent,
    PerformAction,
    category_name,
    decode_command,
    encode_answer,
    encode_notification_source,
    format_date,
    split,
)

__all__ = ["AncsServer", "Posted"]

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]
_KNOWN_COMMANDS = frozenset({0, 1, 2})


@dataclass(frozen=True)
class Posted:
    """A notification on the phone now."""

    uid: int
    spec: NotificationSpec
    date: datetime

    def flags(self) -> EventFlags:
        """The event flags its actions give."""
        flags = EventFlags(0)
        if self.spec.positive_action:
            flags |= EventFlags.POSITIVE_ACTION
        if self.spec.negative_action:
            flags |= EventFlags.NEGATIVE_ACTION
        return flags

    def attribute(self, attribute: int) -> str:
        """The value of one notification attribute, as ANCS sends it."""
        s = self.spec
        values: dict[int, str] = {
            NotificationAttribute.APP_IDENTIFIER: s.app_id,
            NotificationAttribute.TITLE: s.title,
            NotificationAttribute.SUBTITLE: s.subtitle,
            NotificationAttribute.MESSAGE: s.message,
            NotificationAttribute.MESSAGE_SIZE: str(len(utf8(s.message))),
            NotificationAttribute.DATE: format_date(self.date),
            NotificationAttribute.POSITIVE_ACTION_LABEL: s.positive_action or "",
            NotificationAttribute.NEGATIVE_ACTION_LABEL: s.negative_action or "",
        }
        return values.get(attribute, "")


class AncsServer:
    """ANCS on a Bumble device, posting ``NotificationSpec``s.

    Args:
        device: the Bumble device (for notifications).
        guard: which links are secure.
        specs: the notifications to post (each after its delay).
        emit: called with each event (``notification-posted``, ``action``,
            ``notification-removed``) for ``--json``.
    """

    def __init__(
        self, device: Any, guard: LinkGuard, specs: Iterable[NotificationSpec], emit: Emit
    ) -> None:
        self._device = device
        self._specs = list(specs)
        self._emit = emit
        self._uids = itertools.count(1)
        self.posted: dict[int, Posted] = {}
        self._apps: dict[str, str] = {s.app_id: s.app_name or s.app_id for s in self._specs}
        self._tasks: set[asyncio.Task[None]] = set()
        self._schedule_started = False
        self._lock = asyncio.Lock()  # one Data Source answer at a time, in order
        props = Characteristic.Properties
        perms = LinkGuard.PERMISSIONS
        self.notification_source: Characteristic[bytes] = Characteristic(
            ANCS_NOTIFICATION_SOURCE_UUID, props.NOTIFY, perms, guard.value()
        )
        self.control_point: Characteristic[bytes] = Characteristic(
            ANCS_CONTROL_POINT_UUID, props.WRITE, perms, guard.value(write=self._on_command)
        )
        self.data_source: Characteristic[bytes] = Characteristic(
            ANCS_DATA_SOURCE_UUID, props.NOTIFY, perms, guard.value()
        )
        for ch in (self.notification_source, self.data_source):
            guard.cccd(ch)
        self.notification_source.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
        self.service = Service(
            ANCS_SERVICE_UUID, [self.notification_source, self.control_point, self.data_source]
        )

    def attach(self, device: Any) -> None:
        """Serve on ``device`` from now on (a fresh Device after the radio restarted)."""
        self._device = device

    async def stop(self) -> None:
        """Cancel the pending posts and answers."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- posting and removing -----------------------------------------------------------
    def post(self, spec: NotificationSpec) -> int:
        """Post a notification now; returns its uid."""
        uid = next(self._uids)
        self._apps.setdefault(spec.app_id, spec.app_name or spec.app_id)
        item = Posted(uid, spec, datetime.now().replace(microsecond=0))
        self.posted[uid] = item
        log.info("ANCS: posted %d %s %r", uid, spec.app_id, spec.title)
        self._emit({"event": "notification-posted", "uid": uid, "app_id": spec.app_id,
                    "title": spec.title, "category": category_name(spec.category)})
        self._spawn(self._send_event(EventId.ADDED, item, EventFlags(0)))
        if spec.remove_after is not None:
            self._spawn(self._remove_later(uid, spec.remove_after))
        return uid

    def remove(self, uid: int) -> bool:
        """Remove a notification (REMOVED event); False if there is none with ``uid``."""
        item = self.posted.pop(uid, None)
        if item is None:
            return False
        log.info("ANCS: removed %d", uid)
        self._emit({"event": "notification-removed", "uid": uid})
        self._spawn(self._send_event(EventId.REMOVED, item, EventFlags(0)))
        return True

    async def _remove_later(self, uid: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.remove(uid)

    async def _post_later(self, spec: NotificationSpec) -> None:
        await asyncio.sleep(spec.delay)
        self.post(spec)

    def _event(self, event: EventId, item: Posted, extra: EventFlags) -> bytes:
        count = sum(1 for p in self.posted.values() if p.spec.category == item.spec.category)
        flags = item.flags() | extra
        return encode_notification_source(
            NotificationEvent(event, flags, int(item.spec.category), min(count, 255), item.uid)
        )

    async def _send_event(
        self, event: EventId, item: Posted, extra: EventFlags, connection: Any = None
    ) -> None:
        value = self._event(event, item, extra)
        try:
            if connection is None:
                await self._device.notify_subscribers(self.notification_source, value)
            else:
                await self._device.notify_subscriber(connection, self.notification_source, value)
        except Exception as exc:  # the car may be gone
            log.debug("ANCS: event not sent: %s", exc)

    def _on_subscription(self, bearer: Any, notify: bool, _indicate: bool) -> None:
        if not notify:
            return
        connection = bearer.connection if att.is_enhanced_bearer(bearer) else bearer
        for item in list(self.posted.values()):
            self._spawn(self._send_event(EventId.ADDED, item, EventFlags.PRE_EXISTING,
                                         connection))
        if not self._schedule_started:
            self._schedule_started = True
            for spec in self._specs:
                self._spawn(self._post_later(spec))

    # -- Control Point -------------------------------------------------------------------
    def _on_command(self, connection: Any, value: bytes) -> None:
        data = bytes(value)
        try:
            cmd = decode_command(data)
        except AppleDataError as exc:
            unknown = not data or data[0] not in _KNOWN_COMMANDS
            code = ErrorCode.UNKNOWN_COMMAND if unknown else ErrorCode.INVALID_COMMAND
            log.info("ANCS: bad control point command %s: %s", data[:16].hex(), exc)
            raise att.ATT_Error(code) from None
        if isinstance(cmd, PerformAction):
            self._perform(cmd)
        elif isinstance(cmd, GetAppAttributes):
            values: dict[int, str] = {AppAttribute.DISPLAY_NAME: self._apps.get(cmd.app_id, "")}
            body = encode_answer(cmd, values)
            self._spawn(self._answer(connection, body))
        else:
            self._spawn(self._answer(connection, self._notification_answer(cmd)))

    def _notification_answer(self, cmd: GetNotificationAttributes) -> bytes:
        item = self.posted.get(cmd.uid)
        if item is None:
            log.info("ANCS: attributes asked for unknown notification %d", cmd.uid)
            raise att.ATT_Error(ErrorCode.INVALID_PARAMETER)
        return encode_answer(cmd, {a: item.attribute(a) for a, _ in cmd.attributes})

    def _perform(self, cmd: PerformAction) -> None:
        item = self.posted.get(cmd.uid)
        if item is None:
            log.info("ANCS: action on unknown notification %d", cmd.uid)
            raise att.ATT_Error(ErrorCode.INVALID_PARAMETER)
        label = (item.spec.positive_action if cmd.action == ActionId.POSITIVE
                 else item.spec.negative_action)
        if not label:
            log.info("ANCS: notification %d has no %s action", cmd.uid, cmd.action.name.lower())
            raise att.ATT_Error(ErrorCode.ACTION_FAILED)
        action = cmd.action.name.lower()
        log.info("ANCS: car performed %s action %r on %d (%s %r)", action, label, cmd.uid,
                 item.spec.app_id, item.spec.title)
        self._emit({"event": "action", "uid": cmd.uid, "action": action, "label": label,
                    "app_id": item.spec.app_id, "title": item.spec.title})
        self.remove(cmd.uid)

    async def _answer(self, connection: Any, body: bytes) -> None:
        async with self._lock:
            for chunk in split(body, int(connection.att_mtu)):
                try:
                    await self._device.notify_subscriber(connection, self.data_source, chunk)
                except Exception as exc:  # the car went away mid-answer
                    log.info("ANCS: answer cut short: %s", exc)
                    return
