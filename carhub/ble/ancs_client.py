"""The car as ANCS (Apple Notification Center Service) client on one bonded iPhone's link.

Theory of operation: the car subscribes to Data Source first (answers must not be lost),
forgets the phone's notifications (``apple_notifications_reset``), then subscribes to
Notification Source, on which the iPhone replays every notification it holds (flag
PRE_EXISTING) and then each new one. For each ADDED or MODIFIED event the car writes Get
Notification Attributes to the Control Point and reassembles the Data Source answer with a
``ResponseReader``, then asks the app's display name the same way (cached per app id, per
phone), and reports a ``carhub.views.Notification``. REMOVED goes to
``apple_notification_removed``. Commands go one at a time, each with a timeout: an
answer that never completes costs ``COMMAND_TIMEOUT_S`` and that one notification.

Bumble's ``AncsClient`` is not used: it has no timeouts, and it decodes Notification
Source values in the notification callback, where a malformed one would raise. Here every
malformed value is logged in one line and dropped, and the event queue is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from bumble.core import UUID
from bumble.gatt_client import CharacteristicProxy, ProfileServiceProxy, ServiceProxy
from bumble.profiles.ancs import Ancs

from carhub.apple import AppleEvents, AppleLinkError
from carhub.ble.ams_client import att
from carhub.views import Notification
from protocol.apple import (
    ANCS_CONTROL_POINT_UUID,
    ANCS_DATA_SOURCE_UUID,
    ANCS_NOTIFICATION_SOURCE_UUID,
    AppleDataError,
)
from protocol.apple.ancs import (
    CAR_NOTIFICATION_ATTRIBUTES,
    MAX_APP_ID,
    ActionId,
    AppAttribute,
    AppAttributes,
    EventFlags,
    EventId,
    GetAppAttributes,
    GetNotificationAttributes,
    NotificationAttribute,
    NotificationAttributes,
    NotificationEvent,
    PerformAction,
    ResponseReader,
    category_name,
    decode_notification_source,
    encode_command,
    parse_date,
)

__all__ = ["COMMAND_TIMEOUT_S", "MAX_PENDING_EVENTS", "AncsChars", "AncsLink", "AncsProxy"]

log = logging.getLogger("carhub.ble.apple")

# A full answer is at most 8 KiB (MAX_RESPONSE): ~40 notifications at MTU 247, a few
# hundred at MTU 23, each a connection interval or so.
COMMAND_TIMEOUT_S = 10.0
# An iPhone replays every notification it holds on subscribe; more than this are dropped.
MAX_PENDING_EVENTS = 1024
# Labels for an action the event flags offer but whose label attribute came back empty.
_DEFAULT_LABELS = {ActionId.POSITIVE: "Accept", ActionId.NEGATIVE: "Dismiss"}
# The most bytes the car keeps of each text (the lengths it asks for; a phone may send more).
_ASKED = {attr: size or 64 for attr, size in CAR_NOTIFICATION_ATTRIBUTES}
MAX_NAME = 64  # an app's display name, an action label
# App display names kept per phone (a hostile phone could invent app ids without end).
MAX_APP_NAMES = 128
Answer = NotificationAttributes | AppAttributes
_Get = GetNotificationAttributes | GetAppAttributes


class AncsChars:
    """The three ANCS characteristics of a discovered service (raw values, no adapters)."""

    def __init__(
        self,
        notification_source: CharacteristicProxy[bytes],
        control_point: CharacteristicProxy[bytes],
        data_source: CharacteristicProxy[bytes],
    ) -> None:
        self.notification_source = notification_source
        self.control_point = control_point
        self.data_source = data_source

    def all(self) -> tuple[CharacteristicProxy[bytes], ...]:
        """The three characteristics (their subscriptions are renewed on a restart)."""
        return (self.notification_source, self.control_point, self.data_source)


class AncsProxy(ProfileServiceProxy):
    """ANCS with raw characteristics (Bumble's proxy decodes Notification Source itself)."""

    SERVICE_CLASS = Ancs

    def __init__(self, service_proxy: ServiceProxy) -> None:
        uuids = (ANCS_NOTIFICATION_SOURCE_UUID, ANCS_CONTROL_POINT_UUID, ANCS_DATA_SOURCE_UUID)
        get = service_proxy.get_required_characteristic_by_uuid
        self.chars = AncsChars(*(get(UUID(u)) for u in uuids))


class AncsLink:
    """ANCS on one phone: notifications in, actions out.

    Args:
        chars: the phone's ANCS characteristics.
        phone_id: the phone's id (identity address, 12 hex digits).
        events: where notifications go.
        spawn: runs a task its owner cancels when the link ends.
        app_names: this phone's cache of app display names, kept across reconnects.
        command_timeout: seconds one Control Point command may take, answer included.
    """

    def __init__(
        self,
        chars: AncsChars,
        phone_id: str,
        events: AppleEvents,
        spawn: Callable[[Awaitable[None]], None],
        app_names: dict[str, str],
        command_timeout: float = COMMAND_TIMEOUT_S,
    ) -> None:
        self._chars = chars
        self.phone_id = phone_id
        self._events = events
        self._spawn = spawn
        self._app_names = app_names
        self._timeout = command_timeout
        self._events_queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_PENDING_EVENTS)
        self._lock = asyncio.Lock()  # one Control Point command at a time
        self._reader: ResponseReader | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self._overflow_logged = False
        self._stopped = False

    async def start(self) -> None:
        """Subscribe to Data Source, reset the phone's notifications, subscribe to events.

        Raises:
            AppleLinkError: a subscription failed.
        """
        self._spawn(self._fetch_all())
        await att(self._chars.data_source.subscribe(self._on_data), "ANCS Data Source")
        self._events.apple_notifications_reset(self.phone_id)
        await att(
            self._chars.notification_source.subscribe(self._on_event), "ANCS Notification Source"
        )

    def stop(self) -> None:
        """Stop fetching (the link ended or the service went away)."""
        self._stopped = True
        with contextlib.suppress(asyncio.QueueFull):
            self._events_queue.put_nowait(b"")

    async def notification_action(self, uid: int, action: Literal["positive", "negative"]) -> None:
        """Write Perform Notification Action.

        Raises:
            AppleLinkError: an ATT error (the phone refused it) or no answer in time.
        """
        action_id = ActionId.POSITIVE if action == "positive" else ActionId.NEGATIVE
        value = encode_command(PerformAction(uid, action_id))
        write = self._chars.control_point.write_value(value, with_response=True)
        await att(write, f"ANCS {action} action on {uid}", self._timeout)

    def _on_event(self, data: bytes) -> None:
        """Notification Source notified: queue the event (bounded)."""
        if self._stopped:
            return
        try:
            self._events_queue.put_nowait(bytes(data) or b"\xff")
        except asyncio.QueueFull:
            if not self._overflow_logged:
                self._overflow_logged = True
                log.warning(
                    "ANCS %s: too many pending notification events; dropping", self.phone_id
                )

    def _on_data(self, chunk: bytes) -> None:
        """Data Source notified: feed the answer being read (or drop a stray chunk)."""
        reader, answer = self._reader, self._answer
        if reader is None or answer is None or answer.done():
            log.debug("ANCS %s: Data Source chunk with no command pending; dropped", self.phone_id)
            return
        try:
            done = reader.feed(bytes(chunk))
        except AppleDataError as exc:
            answer.set_exception(exc)
            return
        if done is not None:
            answer.set_result(done)

    async def _fetch_all(self) -> None:
        """Handle queued events in order until ``stop``."""
        while not self._stopped:
            data = await self._events_queue.get()
            if self._stopped:
                return
            try:
                await self._handle(decode_notification_source(data))
            except AppleDataError as exc:
                log.warning("ANCS %s: dropped notification data: %s", self.phone_id, exc)
            except AppleLinkError as exc:
                log.warning("ANCS %s: could not fetch a notification: %s", self.phone_id, exc)
            except Exception:  # a bug must not end every later notification of the phone
                log.exception("ANCS %s: failed to handle a notification", self.phone_id)

    async def _handle(self, event: NotificationEvent) -> None:
        """Report one event (fetching its attributes and app name first)."""
        if event.event == EventId.REMOVED:
            self._events.apple_notification_removed(self.phone_id, event.uid)
            return
        answer = await self._ask(GetNotificationAttributes(event.uid, CAR_NOTIFICATION_ATTRIBUTES))
        assert isinstance(answer, NotificationAttributes)
        values = answer.values

        def text(attribute: NotificationAttribute) -> str:
            # Cut to what the car asked for, whatever the phone sent.
            return _cut(values.get(attribute, ""), _ASKED[attribute])

        app_id = values.get(NotificationAttribute.APP_IDENTIFIER, "")
        self._events.apple_notification(
            Notification(
                phone_id=self.phone_id,
                uid=event.uid,
                app_id=_cut(app_id, MAX_APP_ID),
                app_name=await self._app_name(app_id),
                title=text(NotificationAttribute.TITLE),
                subtitle=text(NotificationAttribute.SUBTITLE),
                message=text(NotificationAttribute.MESSAGE),
                date=self._date(values.get(NotificationAttribute.DATE, "")),
                category=category_name(event.category),
                positive_action=_label(event, values, ActionId.POSITIVE),
                negative_action=_label(event, values, ActionId.NEGATIVE),
            )
        )

    async def _app_name(self, app_id: str) -> str:
        """The app's display name, asked once per app id (the app id if it cannot be had)."""
        if not app_id or "\x00" in app_id or len(app_id.encode()) > MAX_APP_ID:
            return _cut(app_id, MAX_NAME)  # not an id the phone could be asked about
        if app_id not in self._app_names:
            try:
                answer = await self._ask(
                    GetAppAttributes(app_id, ((AppAttribute.DISPLAY_NAME, None),))
                )
            except (AppleLinkError, AppleDataError) as exc:
                log.info("ANCS %s: no display name for %r: %s", self.phone_id, app_id[:64], exc)
                return _cut(app_id, MAX_NAME)
            if len(self._app_names) >= MAX_APP_NAMES:  # bounded: the oldest name goes
                del self._app_names[next(iter(self._app_names))]
            name = answer.values.get(AppAttribute.DISPLAY_NAME, "") or app_id
            self._app_names[app_id] = _cut(name, MAX_NAME)
        return self._app_names[app_id]

    def _date(self, text: str) -> str:
        """The ISO 8601 date; for a missing or malformed one, the car's time of arrival."""
        try:
            return parse_date(text)
        except AppleDataError as exc:
            if text:
                log.warning("ANCS %s: dropped a notification date: %s", self.phone_id, exc)
            return time.strftime("%Y-%m-%dT%H:%M:%S")

    async def _ask(self, command: _Get) -> Answer:
        """Write one Get command and wait for its reassembled answer.

        Raises:
            AppleLinkError: the write failed, or no complete answer in time.
            AppleDataError: the answer was malformed.
        """
        async with self._lock:
            loop = asyncio.get_running_loop()
            self._reader = ResponseReader(command)
            self._answer = answer = loop.create_future()
            try:
                write = self._chars.control_point.write_value(
                    encode_command(command), with_response=True
                )
                await att(write, "ANCS Control Point", self._timeout)
                try:
                    return await asyncio.wait_for(answer, self._timeout)
                except TimeoutError as exc:
                    raise AppleLinkError(
                        f"no complete ANCS answer in {self._timeout:.0f} s"
                    ) from exc
            finally:
                self._reader = None
                self._answer = None


def _label(event: NotificationEvent, values: dict[int, str], action: ActionId) -> str | None:
    """The action's label if the event offers it, else None."""
    flag = EventFlags.POSITIVE_ACTION if action == ActionId.POSITIVE else EventFlags.NEGATIVE_ACTION
    if not event.flags & flag:
        return None
    key = (
        NotificationAttribute.POSITIVE_ACTION_LABEL
        if action == ActionId.POSITIVE
        else NotificationAttribute.NEGATIVE_ACTION_LABEL
    )
    return _cut(values.get(key) or _DEFAULT_LABELS[action], MAX_NAME)


def _cut(text: str, size: int) -> str:
    """``text`` cut to at most ``size`` UTF-8 bytes, at a character boundary."""
    return text.encode()[:size].decode(errors="ignore")
