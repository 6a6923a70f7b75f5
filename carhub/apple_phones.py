"""The engine's side of Apple-profile (AMS/ANCS) phones: ``AppleEvents``, as a mixin.

``carhub.engine.Engine`` inherits ``AppleEventsMixin``, so the BLE side (``carhub.ble``)
calls the engine itself, and the engine's own module stays about CarHub phones. What is
kept here:

- bonded phones in the store (``apple_phones`` table), listed by ``GET /api/phones``;
- each connected phone's ``AppleHandle`` (``ApplePhones.handles``);
- LE SC numeric-comparison codes as pairing requests (``method`` "le-sc"), answered through
  the same accept/reject as CarHub codes;
- now playing from AMS, in the engine's one media model (``source`` "ams");
- notifications (ANCS), in memory only: they are the phone's, and a reconnect re-reads them.
  At most ``MAX_NOTIFICATIONS`` per phone; the oldest arrival goes first.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from carhub import views
from carhub.apple import AppleHandle, AppleLinkError
from carhub.errors import CarhubError
from carhub.events import EventHub
from carhub.pending import PendingPairing, colon_address, drop_failed_pairing, request_bond_pairing
from carhub.store import Store, StoreError
from protocol.media import NowPlaying, position_at

__all__ = [
    "MAX_NOTIFICATIONS",
    "PEER_TIMEOUT",
    "AppleEventsMixin",
    "ApplePhones",
    "CommandRefused",
    "UnknownNotification",
    "colon_address",
]

log = logging.getLogger("carhub.apple")

MAX_NOTIFICATIONS = 200  # per phone: an iPhone can hold thousands; the car shows the newest
PEER_TIMEOUT = 10.0  # seconds a command to the phone may take, whatever the BLE side does
AMS_NO_SEEK = "an Apple phone's player cannot seek from the car (AMS has no seek command)"


class CommandRefused(CarhubError):
    """The phone cannot take this command now; nothing was sent (the API's 409)."""


class UnknownNotification(CarhubError):
    """No such notification is shown (the API's 404)."""


@dataclass
class ApplePhones:
    """The in-memory part: connected handles, notifications, pairing, unpair listeners."""

    handles: dict[str, AppleHandle] = field(default_factory=dict)
    # phone id -> uid -> (notification, arrival number)
    notes: dict[str, dict[int, tuple[views.Notification, int]]] = field(default_factory=dict)
    unpair_listeners: list[Callable[[str], None]] = field(default_factory=list)
    arrivals: itertools.count[int] = field(default_factory=itertools.count)

    def notifications(self) -> list[views.Notification]:
        """Every phone's notifications, newest ``date`` first, then newest arrival first."""
        every = [pair for per_phone in self.notes.values() for pair in per_phone.values()]
        every.sort(key=lambda pair: (pair[0].date, pair[1]), reverse=True)
        return [n for n, _ in every]

    def put(self, note: views.Notification) -> None:
        """Add or replace one notification (a modified one keeps its place among arrivals)."""
        per_phone = self.notes.setdefault(note.phone_id, {})
        old = per_phone.get(note.uid)
        per_phone[note.uid] = (note, old[1] if old else next(self.arrivals))
        while len(per_phone) > MAX_NOTIFICATIONS:
            oldest = min(per_phone, key=lambda uid: per_phone[uid][1])
            del per_phone[oldest]


class AppleEventsMixin:
    """``carhub.apple.AppleEvents`` for ``Engine`` (see the module docstring)."""

    if TYPE_CHECKING:  # what the mixin uses of Engine
        hub: EventHub
        store: Store
        pending: dict[str, PendingPairing]
        apple_phones: ApplePhones
        _media: dict[str, tuple[NowPlaying, int]]
        _active_media_phone: str | None

        @property
        def pairing_open(self) -> bool: ...
        def add_pending(self, req: PendingPairing) -> None: ...
        def media(self) -> views.Media: ...
        def pairing_requests(self) -> list[views.PairingRequest]: ...
        def phones(self) -> list[views.Phone]: ...

    # -- bonding -------------------------------------------------------------------------
    def apple_may_bond(self) -> bool:
        """Whether a new bond may start now (the pairing window is open)."""
        return self.pairing_open

    def apple_pairing_requested(
        self,
        phone_id: str,
        phone_name: str,
        code: str,
        expires_at: float,
        decide: Callable[[bool], None],
    ) -> Callable[[], None]:
        """Show an LE SC code as a pairing request (``method`` "le-sc"); return ``withdraw``."""
        return request_bond_pairing(
            self, "le-sc", "LE SC", phone_id, phone_name, code, expires_at, decide
        )

    def apple_pairing_failed(self, phone_id: str, reason: str) -> None:
        """Log why a bond did not happen, drop its request, and tell the dashboard."""
        drop_failed_pairing(self, "le-sc", "LE SC", phone_id, reason)

    def apple_bonded(self, phone_id: str, phone_name: str) -> None:
        """Remember a newly bonded phone: ``GET /api/phones`` lists it from now on."""
        try:
            self.store.add_apple_phone(phone_id, phone_name, time.time())
        except StoreError as exc:
            log.error("could not remember bonded phone %s: %s", phone_id, exc)
            return
        log.info("bonded Apple-profile phone %r (%s)", phone_name, colon_address(phone_id))
        self.hub.publish("phones", self.phones())

    def apple_is_bonded(self, phone_id: str) -> bool:
        """Whether the car has this phone as a bonded Apple-profile phone."""
        return any(p.id == phone_id for p in self.store.apple_phones())

    # -- links -----------------------------------------------------------------------------
    def apple_connected(self, phone_id: str, handle: AppleHandle) -> None:
        """A bonded phone's encrypted link is up, or its profiles changed."""
        record = next((p for p in self.store.apple_phones() if p.id == phone_id), None)
        if record is None:
            log.warning("ignoring a link of %s: not a bonded phone", colon_address(phone_id))
            return
        old = self.apple_phones.handles.get(phone_id)
        self.apple_phones.handles[phone_id] = handle
        if old is not None and old is not handle:
            old.close("replaced by a new connection")
        profiles = tuple(handle.profiles)
        if profiles != record.profiles:
            try:
                self.store.set_apple_profiles(phone_id, profiles)
            except StoreError as exc:  # costs only what a later restart shows
                log.warning("could not keep the profiles of %s: %s", phone_id, exc)
        self.hub.publish("phones", self.phones())
        if "ancs" not in profiles:
            # ANCS withdrawn (the user stopped sharing notifications): what it showed goes.
            self.apple_notifications_reset(phone_id)

    def apple_disconnected(self, phone_id: str, handle: AppleHandle) -> None:
        """That link ended; the bond and now playing (paused) stay, notifications go.

        A notification is the phone's live state, and its actions need the link: the car
        shows none it cannot act on, and reads them all again when the phone is back.
        """
        if self.apple_phones.handles.get(phone_id) is not handle:
            return
        del self.apple_phones.handles[phone_id]
        self.apple_notifications_reset(phone_id)
        if (kept := self._media.get(phone_id)) is not None:
            # Stop the dashboard's progress bar where the phone last was.
            np, received = kept
            now_ms = int(time.time() * 1000)
            stopped = msgspec.structs.replace(
                np, state="paused", position_ms=position_at(np, received, now_ms)
            )
            self._media[phone_id] = (stopped, now_ms)
        self.hub.publish("phones", self.phones())
        if self._active_media_phone == phone_id:
            self.hub.publish("media", self.media())

    # -- media -----------------------------------------------------------------------------
    def apple_now_playing(self, phone_id: str, np: NowPlaying, received_at_ms: int) -> None:
        """Record the phone's AMS now playing (in memory: the phone refreshes it on connect)."""
        if phone_id not in self.apple_phones.handles:
            return  # unpaired or gone meanwhile: nothing of it may be kept
        self._media[phone_id] = (np, received_at_ms)
        self._active_media_phone = phone_id
        self.hub.publish("media", self.media())

    async def apple_media_command(self, phone_id: str, action: str) -> None:
        """Send a media action to a connected Apple phone.

        Raises:
            CommandRefused: ``seek``, or an action the phone does not offer now.
            AppleLinkError: the phone could not be asked (or did not answer in time).
        """
        handle = self.apple_phones.handles[phone_id]
        if action == "seek":
            raise CommandRefused(AMS_NO_SEEK)
        if action not in handle.media_commands():
            offered = ", ".join(sorted(handle.media_commands())) or "none"
            raise CommandRefused(f"the phone's player does not offer {action} now ({offered} only)")
        await _bounded(handle.media_command(action))

    # -- notifications -----------------------------------------------------------------
    def apple_notification(self, notification: views.Notification) -> None:
        """A notification was added or modified."""
        if notification.phone_id not in self.apple_phones.handles:
            return
        self.apple_phones.put(notification)
        self.hub.publish("notifications", self.notifications())

    def apple_notification_removed(self, phone_id: str, uid: int) -> None:
        """The phone removed a notification."""
        if self.apple_phones.notes.get(phone_id, {}).pop(uid, None) is not None:
            self.hub.publish("notifications", self.notifications())

    def apple_notifications_reset(self, phone_id: str) -> None:
        """Forget the phone's notifications (a reconnect re-reads them)."""
        if self.apple_phones.notes.pop(phone_id, None):
            self.hub.publish("notifications", self.notifications())

    def notifications(self) -> list[views.Notification]:
        """Return every notification as ``GET /api/notifications`` shows them."""
        return self.apple_phones.notifications()

    async def notification_action(
        self, phone_id: str, uid: int, action: Literal["positive", "negative"]
    ) -> None:
        """Perform a notification's action on its phone.

        Raises:
            UnknownNotification: no such notification is shown.
            CommandRefused: it has no such action, or its phone is not connected.
            AppleLinkError: the phone could not be asked (or did not answer in time).
        """
        found = self.apple_phones.notes.get(phone_id, {}).get(uid)
        if found is None:
            raise UnknownNotification(f"no notification {uid} of phone {phone_id}")
        note = found[0]
        label = note.positive_action if action == "positive" else note.negative_action
        if label is None:
            raise CommandRefused(f"notification {uid} has no {action} action")
        handle = self.apple_phones.handles.get(phone_id)
        if handle is None:
            raise CommandRefused("the notification's phone is not connected")
        log.info("notification %d of %s: %s (%r)", uid, phone_id, action, label)
        await _bounded(handle.notification_action(uid, action))

    # -- unpair ----------------------------------------------------------------------------
    def on_unpair(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(phone_id)`` when a Bluetooth (Apple-profile or Classic) phone is
        unpaired, to erase its bond (``AppleEvents`` and ``ClassicEvents`` share this)."""
        self.apple_phones.unpair_listeners.append(listener)

    def _unpair_apple(self, phone_id: str) -> bool:
        """Erase an Apple phone: its row, notifications, now playing; close its link.

        The bond is erased by ``Engine.unpair`` (the unpair listeners), once for both sides.
        """
        if not self.store.delete_apple_phone(phone_id):
            return False
        if self.apple_phones.notes.pop(phone_id, None):
            self.hub.publish("notifications", self.notifications())
        handle = self.apple_phones.handles.pop(phone_id, None)
        self._media.pop(phone_id, None)
        if handle is not None:
            handle.close("unpaired")
        return True

    def _call_unpair_listeners(self, phone_id: str) -> None:
        """Tell the Bluetooth sides (LE and Classic share the keystore) to erase the bond."""
        for listener in self.apple_phones.unpair_listeners:
            try:
                listener(phone_id)
            except Exception as exc:  # one listener's fault must not keep the rest from erasing
                log.error("unpair listener failed for %s: %r", phone_id, exc)

    def _apple_phones_view(self) -> list[views.Phone]:
        """The bonded Apple phones as ``GET /api/phones`` shows them."""
        return [
            views.Phone(
                id=p.id,
                name=p.name,
                fingerprint=colon_address(p.id),
                connected=(h := self.apple_phones.handles.get(p.id)) is not None,
                transport=h.transport_name if h is not None else None,
                contacts=0,
                last_sync=None,
                profiles=list(h.profiles if h is not None else p.profiles),
            )
            for p in self.store.apple_phones()
        ]


async def _bounded(call: Coroutine[Any, Any, None]) -> None:
    """Await a call on the phone, at most ``PEER_TIMEOUT`` seconds (as ``AppleLinkError``)."""
    try:
        await asyncio.wait_for(call, PEER_TIMEOUT)
    except TimeoutError:
        raise AppleLinkError(f"the phone did not answer within {PEER_TIMEOUT:.0f} s") from None
