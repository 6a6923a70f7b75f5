"""One connected phone on the car: carry out what ``CarConnection`` decides, nothing more.

``shell.driver.ConnectionDriver`` pumps the bytes; this module handles the events: pin a
key in the store when asked (``PinRequested``), show a code on the dashboard, commit a
contacts batch to SQLite before its ack is released (``ApplyBatch`` → ``batch_stored``, so
an ack always means "durable"), keep now-playing state and artwork. Every pairing rule
(window, rate limits, one at a time, the QR secret) lives in ``protocol.admission``.

The car it serves is any object with the ``CarSide`` shape (the ``Engine``); this module
does not import the engine.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from carhub.events import EventHub
from carhub.store import Store, StoreError
from protocol.admission import PairingAdmission
from protocol.connection import (
    ApplyBatch,
    ArtworkReceived,
    CarConnection,
    Closed,
    ConnectionEvent,
    ConnectionFailed,
    ContactsSynced,
    MessageIgnored,
    MessageReceived,
    NowPlayingChanged,
    PairingCode,
    PeerHello,
    PinRequested,
    SessionEstablished,
)
from protocol.errors import LocalProtocolError, ProtocolError, Reason
from protocol.identity import Identity, fingerprint
from protocol.messages import SUPPORTED_VERSIONS, VERSIONS_ENV, Message, Unpair, parse_versions
from shell.driver import ConnectionDriver
from shell.transport import BaseTransport

__all__ = ["CarSide", "PhoneSession", "peer_key"]

log = logging.getLogger("carhub.session")

# A 100k sync is 200 batches; the dashboard needs a few contact-count updates a second.
PUBLISH_INTERVAL = 0.25


class CarNames(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def model(self) -> str: ...


class CarSide(Protocol):
    """What a session needs of the car (the ``Engine`` provides it)."""

    @property
    def identity(self) -> Identity: ...
    @property
    def store(self) -> Store: ...
    @property
    def hub(self) -> EventHub: ...
    @property
    def admission(self) -> PairingAdmission: ...
    @property
    def config(self) -> CarNames: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...
    def pairing_requested(self, session: PhoneSession, phone_id: str, ev: PairingCode) -> None: ...
    def drop_pending(self, session: PhoneSession) -> None: ...
    def phone_connected(self, phone_id: str, session: PhoneSession) -> None: ...
    def phone_disconnected(self, phone_id: str, session: PhoneSession) -> None: ...
    def now_playing(self, phone_id: str, np: Any, received_at_ms: int) -> None: ...
    def unpair(self, phone_id: str) -> bool: ...
    def phones(self) -> Any: ...
    def media(self) -> Any: ...


def peer_key(link: BaseTransport) -> str:
    """Where a phone connects from, for the rate limits: the LAN host, or the BLE address.

    A device id in a Hello is only a claim until pairing, so the limits key on this too.
    """
    return link.peer if link.name == "ble" else link.peer.rsplit(":", 1)[0]


def _versions() -> tuple[int, ...]:
    """The protocol versions to speak: all, unless ``CARHUB_PROTOCOL_VERSIONS`` narrows them.

    Interop tests set it to make a car that speaks only version 1 (PROTOCOL.md §3.1); a
    bad value is logged and ignored, never a reason to refuse a phone.
    """
    try:
        return parse_versions(os.environ.get(VERSIONS_ENV, ""))
    except LocalProtocolError as exc:
        log.warning("%s ignored: %s", VERSIONS_ENV, exc.detail)
        return SUPPORTED_VERSIONS


class PhoneSession:
    """Serves one phone over one link."""

    def __init__(self, car: CarSide, link: BaseTransport) -> None:
        self.car = car
        self.link = link
        self.transport_name = link.name  # as /api/phones shows it: lan or ble
        self.phone_id = ""
        self._conn = CarConnection(
            car.identity,
            car.config.name,
            lookup_peer=car.store.pinned_key,
            admission=car.admission,
            peer=peer_key(link),
            load_mirror=car.store.mirror_state,
            model=car.config.model,
            versions=_versions(),
            now=time.time(),
        )
        self._driver = ConnectionDriver(link, self._conn, self._handle)
        self._last_publish = 0.0

    @property
    def _closing(self) -> bool:
        return self._driver.closing

    async def run(self) -> None:
        """Pump until the link or the protocol ends."""
        log.info("%s: connection from %s", self.transport_name, self.link.peer)
        try:
            await self._driver.pump()
        finally:
            self._conn.close()  # mid-pairing, this counts as a failed attempt
            self.car.drop_pending(self)
            if self.phone_id:
                self.car.phone_disconnected(self.phone_id, self)
            await self._driver.aclose()
            log.info("%s: %s disconnected", self.transport_name, self.phone_id or self.link.peer)

    # -- called by the engine --------------------------------------------------------------
    def confirm_pairing(self, accepted: bool) -> None:
        """Pass the car user's decision on the code to the connection."""
        try:
            self._conn.confirm_pairing(accepted, time.time())
        except ProtocolError as exc:
            log.info("pairing decision ignored: %s", exc)
            return
        self.car.spawn(self._process())

    async def send(self, msg: Message) -> None:
        """Send an application message (a media command).

        Raises:
            ProtocolError: the session is not established (closing, or replaced).
        """
        self._conn.send(msg)
        await self._process()

    def close(self, reason: str) -> None:
        """End this session (unpaired, replaced, shutting down)."""
        self._driver.closing = True
        self._conn.close(reason)
        self.car.spawn(self._driver.aclose())

    # -- internals ---------------------------------------------------------------------
    async def _process(self) -> None:
        try:
            await self._driver.process()
        except ConnectionError:
            pass  # the link is gone; the reader ends the session

    def _handle(self, ev: ConnectionEvent) -> None:
        if self._closing and not isinstance(ev, ConnectionFailed | Closed):
            return  # queued behind a close (Bye, Unpair, failure): void now
        if isinstance(ev, PeerHello):
            self.phone_id = ev.device_id
            log.info(
                "hello from %r (%s), intent %s, protocol v%d",
                ev.name,
                ev.device_id,
                ev.intent,
                ev.version,
            )
        elif isinstance(ev, PairingCode):
            log.info("pairing request from %r: code %s", ev.peer_name, ev.code)
            self.car.pairing_requested(self, self.phone_id, ev)
        elif isinstance(ev, PinRequested):
            self._pin(ev)
        elif isinstance(ev, SessionEstablished):
            self.car.store.rename_phone(self.phone_id, self._conn.peer_name)
            self.car.phone_connected(self.phone_id, self)
        elif isinstance(ev, ApplyBatch):
            self._apply(ev)
        elif isinstance(ev, ContactsSynced):
            log.info("%s: contacts synced, %d on the car", self.phone_id, ev.total)
            self._publish_contacts(force=True)
        else:
            self._handle_other(ev)

    def _handle_other(self, ev: ConnectionEvent) -> None:
        if isinstance(ev, NowPlayingChanged):
            np = ev.now_playing
            self.car.now_playing(self.phone_id, np, int(time.time() * 1000))
            if np.artwork and not self.car.store.has_artwork(self.phone_id, np.artwork):
                self._conn.request_artwork(np.artwork)
        elif isinstance(ev, ArtworkReceived):
            art = ev.artwork
            self.car.store.put_artwork(self.phone_id, art.hash, art.mime, art.data)
            self.car.hub.publish("media", self.car.media())
        elif isinstance(ev, MessageReceived) and isinstance(ev.message, Unpair):
            log.info("%s asked to be unpaired", self.phone_id)
            self.car.unpair(self.phone_id)
        elif isinstance(ev, MessageReceived | MessageIgnored):
            why = ev.why if isinstance(ev, MessageIgnored) else "not for the car"
            log.info("%s: ignoring %s (%s)", self.phone_id, type(ev.message).__name__, why)
        elif isinstance(ev, ConnectionFailed):
            self._failed(ev.error)
        elif isinstance(ev, Closed):
            self._driver.closing = True

    def _pin(self, ev: PinRequested) -> None:
        """Pin the phone's key; only a stored pin lets ``PairResult(true)`` out."""
        key = ev.peer_public_key
        try:
            self.car.store.add_phone(
                ev.peer_device_id, ev.peer_name, key, fingerprint(key), time.time()
            )
        except StoreError as exc:
            # Not pinned here, so the phone must not pin us either: it is told why instead.
            log.error("%s: could not store the pairing: %s", ev.peer_device_id, exc)
            self._conn.pin_failed(f"car storage: {exc}")
            return
        self._conn.pin_stored(time.time())
        log.info("paired with %r (%s)", ev.peer_name, ev.peer_device_id)
        self.car.hub.publish("phones", self.car.phones())

    def _failed(self, error: ProtocolError) -> None:
        self._driver.closing = True
        who = self.phone_id or "?"
        log.warning("%s %s: connection closed: %s", self.transport_name, who, error)
        # Hang up: the reader may be waiting on a peer that never speaks again (PROTOCOL.md
        # 3.2 promises a silent peer is closed at the setup deadline). The Error goes first.
        self.car.spawn(self._driver.aclose())

    def _apply(self, ev: ApplyBatch) -> None:
        """Commit one batch, then release its ack: an ack always means durable."""
        try:
            self.car.store.apply_synced(self.phone_id, ev, now=time.time())
        except StoreError as exc:
            # Nothing was applied; the phone keeps the batch and resumes later.
            log.error("%s: could not store batch %d: %s", self.phone_id, ev.seq, exc)
            self._conn.abort(Reason.PEER_ERROR, f"car storage: {exc}"[:200])
            return
        self._conn.batch_stored(ev)
        self._publish_contacts()

    def _publish_contacts(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_publish < PUBLISH_INTERVAL:
            return
        self._last_publish = now
        total, _ = self.car.store.contacts(self.phone_id, limit=0)
        self.car.hub.publish("contacts", {"phone_id": self.phone_id, "total": total})
        self.car.hub.publish("phones", self.car.phones())
