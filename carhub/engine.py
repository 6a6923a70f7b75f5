"""The car's core: pairing window, pending requests, connected phones, media, live events.

The engine owns the state that the REST API, the dashboard and the transports share. It
makes no protocol decisions itself: who may pair is ``protocol.admission``'s (the engine
holds the one ``PairingAdmission`` and announces its changes), and each connected phone is
a ``PhoneSession`` (``carhub.phone_session``) carrying out what its ``CarConnection``
decides; the engine only keeps the car-level bookkeeping they report into. Apple-profile
(AMS/ANCS) phones report in through ``AppleEvents``, implemented in ``carhub.apple_phones``;
Bluetooth Classic (PBAP) phones through ``ClassicEvents``, in ``carhub.classic_phones``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from carhub import views
from carhub.apple_phones import AppleEventsMixin, ApplePhones
from carhub.classic_phones import ClassicEventsMixin, ClassicPhones
from carhub.errors import CarhubError
from carhub.events import EventHub
from carhub.pending import PendingPairing, new_request_id
from carhub.phone_session import PhoneSession
from carhub.store import Store, StoreError
from carhub.store_classic import ClassicStore
from protocol.admission import OOB_LIFETIME, PairingAdmission
from protocol.connection import PairingCode
from protocol.errors import ProtocolError
from protocol.identity import Identity, PairingUri
from protocol.media import MediaCommand, NowPlaying, position_at
from protocol.messages import PROTOCOL_VERSION, Message, decode, encode
from shell.transport import BaseTransport

if TYPE_CHECKING:
    from carhub.apple import AppleEvents
    from carhub.classic import ClassicEvents

__all__ = [
    "OOB_LIFETIME",
    "CarConfig",
    "Engine",
    "NoPhoneError",
    "PendingPairing",
    "SessionHandle",
]

log = logging.getLogger("carhub")


@dataclass
class CarConfig:
    """Everything ``carhub run`` was told."""

    name: str = "CarHub"
    model: str = "CarHub Emulated Head Unit"
    state_dir: Path = Path(".carhub")
    pairing_open: bool = False
    pairing_window: float = 120.0  # seconds a window opened from the dashboard stays open
    auto_confirm: bool = False  # emulation only: accept every pairing code without a human
    lan_endpoint: str | None = None  # host:port phones use, for /api/status and BLE info


class SessionHandle(Protocol):
    """What the engine needs of a connected phone's session (``carhub.phone_session``)."""

    transport_name: str

    def confirm_pairing(self, accepted: bool) -> None: ...
    async def send(self, msg: Message) -> None: ...
    def close(self, reason: str) -> None: ...


class NoPhoneError(CarhubError):
    """A media command was given while no phone is connected."""


class Engine(AppleEventsMixin, ClassicEventsMixin):
    """The car's shared state, and ``AppleEvents`` and ``ClassicEvents`` (see the mixins).

    Args:
        config: the run configuration.
        identity: the car's static key pair.
        store: the open SQLite store.
    """

    def __init__(self, config: CarConfig, identity: Identity, store: Store) -> None:
        self.config = config
        self.identity = identity
        self.store = store
        self.hub = EventHub()
        self.pending: dict[str, PendingPairing] = {}
        self.connected: dict[str, SessionHandle] = {}
        self.ble_address: str | None = None
        self.apple_enabled = False  # AMS/ANCS support on: the runner sets it with BLE
        self.apple_phones = ApplePhones()
        self.classic = ClassicPhones(ClassicStore(store))
        # Who may pair, and when: every pairing rule is there, none here.
        self._admission = PairingAdmission()
        if config.pairing_open:
            # --pairing open opens the usual window too; a window of 0 stays open (the lab).
            self._admission.open(time.time(), config.pairing_window)
        self._announced: tuple[bool, PairingUri | None] = (config.pairing_open, None)
        self._media: dict[str, tuple[NowPlaying, int]] = {}
        self._active_media_phone: str | None = None
        self._restore_media()
        self._pairing_listeners: list[Callable[[bool], None]] = []
        self._sessions: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()

    # -- pairing window ----------------------------------------------------------------
    @property
    def admission(self) -> PairingAdmission:
        """The car's pairing policy (``protocol.admission``), shared by every connection."""
        return self._admission

    @property
    def pairing_open(self) -> bool:
        """Whether new phones may pair now (closes itself after the window)."""
        open_ = self._admission.is_open(time.time())
        self._announce()
        return open_

    @property
    def _oob(self) -> tuple[PairingUri, float] | None:
        """The pairing URI on show and its expiry (read by ``status``)."""
        return self._admission.shown_uri(time.time())

    def on_pairing_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(open)`` whenever the pairing state changes (mDNS, BLE adverts)."""
        self._pairing_listeners.append(listener)

    def open_pairing(self, window: float | None = None) -> None:
        """Open the pairing window for ``window`` seconds (the configured default if None)."""
        seconds = self.config.pairing_window if window is None else window
        self._admission.open(time.time(), seconds)
        self._announce()

    def close_pairing(self) -> None:
        """Close the pairing window; pending requests are rejected."""
        self._admission.close()
        self._announce()
        for req in list(self.pending.values()):
            self.decide(req.id, accepted=False)

    def _announce(self) -> None:
        """Tell listeners and the dashboard when the window or the QR code changed."""
        now = time.time()
        open_ = self._admission.is_open(now)
        shown = self._admission.shown_uri(now)
        state = (open_, shown[0] if shown is not None else None)
        was_open, was_shown = self._announced
        if state[0] == was_open and state[1] is was_shown:
            return
        self._announced = state
        if open_ != was_open:
            log.info("pairing window %s", "open" if open_ else "closed")
            for listener in self._pairing_listeners:
                listener(open_)
        self.hub.publish("status", self.status())

    # -- pairing by QR code (OOB) ---------------------------------------------------------
    def new_pairing_uri(self) -> tuple[PairingUri, float]:
        """Show a fresh pairing URI (QR code), opening the pairing window if it is closed.

        The URI's secret is the proof a scanning phone presents instead of a compared code,
        so it is one-time: this call replaces any earlier one, the first OOB pairing
        consumes it, and it expires with the window (or after ``OOB_LIFETIME`` seconds when
        the window has no end).

        Returns:
            The URI and when it expires (``time.time()`` clock).
        """
        now = time.time()
        uri = PairingUri.create(self.identity, host=self.config.lan_endpoint or "")
        expires_at = self._admission.show_uri(uri, now, self.config.pairing_window)
        log.info("pairing QR code shown (valid %.0f s)", expires_at - now)
        self._announce()  # one status event, already carrying the code
        return uri, expires_at

    def pairing_uri(self) -> tuple[PairingUri, float] | None:
        """Return the pairing URI on show and its expiry, or None (none, used or expired)."""
        shown = self._admission.shown_uri(time.time())
        self._announce()
        return shown

    def pairing_requested(self, session: SessionHandle, phone_id: str, ev: PairingCode) -> None:
        """Show a session's pairing code on the dashboard (see ``add_pending``)."""
        request = views.PairingRequest(
            id=self.new_request_id(),
            phone_id=phone_id,
            phone_name=ev.peer_name,
            phone_fingerprint=ev.peer_fingerprint,
            code=ev.code,
            expires_at=ev.expires_at,
        )
        self.add_pending(PendingPairing(request, session))

    def add_pending(self, req: PendingPairing) -> None:
        """Show a request on the dashboard (or accept it at once in auto-confirm mode)."""
        self.pending[req.id] = req
        self.hub.publish("pairing", self.pairing_requests())
        if self.config.auto_confirm:
            log.warning(
                "AUTO-CONFIRM (emulation only): accepting pairing code %s from %r",
                req.request.code,
                req.request.phone_name,
            )
            self.decide(req.id, accepted=True)

    def drop_pending(self, session: SessionHandle) -> None:
        """Forget requests of a session that ended."""
        for rid in [r.id for r in self.pending.values() if r.session is session]:
            del self.pending[rid]
        self.hub.publish("pairing", self.pairing_requests())

    def pairing_requests(self) -> list[views.PairingRequest]:
        """Return the pending requests as the API shows them."""
        return [r.request for r in self.pending.values()]

    def decide(self, request_id: str, *, accepted: bool) -> bool:
        """Pass the car user's decision to the waiting session. Returns False if unknown."""
        req = self.pending.pop(request_id, None)
        if req is None:
            return False
        req.session.confirm_pairing(accepted)
        self.hub.publish("pairing", self.pairing_requests())
        return True

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task failed: %r", exc, exc_info=exc)

    new_request_id = staticmethod(new_request_id)

    # -- phones ------------------------------------------------------------------------
    def phones(self) -> list[views.Phone]:
        """Return paired phones as the API shows them."""
        out = []
        for p in self.store.phones():
            sess = self.connected.get(p.id)
            out.append(
                views.Phone(
                    id=p.id,
                    name=p.name,
                    fingerprint=p.fingerprint,
                    connected=sess is not None,
                    transport=sess.transport_name if sess else None,
                    contacts=p.contacts,
                    last_sync=p.last_sync,
                    profiles=["carhub"],
                )
            )
        return out + self._with_classic_phones(self._apple_phones_view())

    def phone_connected(self, phone_id: str, session: SessionHandle) -> None:
        old = self.connected.get(phone_id)
        self.connected[phone_id] = session
        if old is not None and old is not session:
            old.close("replaced by a new connection")
        self.hub.publish("phones", self.phones())

    def phone_disconnected(self, phone_id: str, session: SessionHandle) -> None:
        if self.connected.get(phone_id) is session:
            del self.connected[phone_id]
            self.hub.publish("phones", self.phones())
            if self._active_media_phone == phone_id:
                self.hub.publish("media", self.media())

    def unpair(self, phone_id: str) -> bool:
        """Erase a phone: keys, contacts, media, artwork (a Bluetooth one's bond); drop its link."""
        classic = self._unpair_classic(phone_id)
        existed = self.store.delete_phone(phone_id)
        apple = self._unpair_apple(phone_id)
        if classic or apple:  # one keystore for LE and Classic: its bond is erased once
            self._call_unpair_listeners(phone_id)
        existed |= classic | apple
        self._media.pop(phone_id, None)
        sess = self.connected.pop(phone_id, None)
        if sess is not None:
            sess.close("unpaired")
        if existed:
            log.info("unpaired phone %s and erased its data", phone_id)
            self.hub.publish("phones", self.phones())
            self.hub.publish("media", self.media())
        return existed

    # -- media -------------------------------------------------------------------------
    def now_playing(self, phone_id: str, np: NowPlaying, received_at_ms: int) -> None:
        """Record a phone's now-playing state and tell the dashboard."""
        if phone_id not in self.connected:
            return  # unpaired or replaced meanwhile: nothing of it may be kept
        self._media[phone_id] = (np, received_at_ms)
        # Kept so a restarted car still shows the last track (paused where it was).
        try:
            self.store.set_media(phone_id, encode(np), received_at_ms)
        except StoreError as exc:  # a full disk costs the restart memory, nothing else
            log.warning("could not keep now-playing for %s: %s", phone_id, exc)
        self._active_media_phone = phone_id
        self.hub.publish("media", self.media())

    def media(self) -> views.Media:
        """Return the now-playing state of the active phone, position extrapolated."""
        pid = self._active_media_phone
        if pid is None or pid not in self._media:
            return _EMPTY_MEDIA.model_copy(deep=True)
        np, received = self._media[pid]
        now_ms = int(time.time() * 1000)
        return views.Media(
            phone_id=pid,
            title=np.title,
            artists=list(np.artists),
            album=np.album,
            state=np.state,
            position_ms=position_at(np, received, now_ms),
            duration_ms=np.duration_ms,
            rate=np.rate,
            track_id=np.track_id,
            # Only once the image is stored: a URL that 404s would make the page give up on it.
            artwork_url=f"/api/phones/{pid}/artwork/{np.artwork.hex()}"
            if np.artwork and self.store.has_artwork(pid, np.artwork)
            else None,
            connected=pid in self.connected or pid in self.apple_phones.handles,
            source="ams" if any(p.id == pid for p in self.store.apple_phones()) else "carhub",
        )

    def _restore_media(self) -> None:
        """Reload the last now-playing state of every phone; nothing plays until it reconnects."""
        for phone_id, data, received_at_ms in self.store.all_media():
            try:
                np = decode(data)
            except ProtocolError:
                continue
            if isinstance(np, NowPlaying):
                # The last position the phone reported: the car cannot know more.
                stopped = msgspec.structs.replace(np, state="paused")
                self._media[phone_id] = (stopped, received_at_ms)
                self._active_media_phone = phone_id

    async def command(self, action: str, position_ms: int = 0) -> str:
        """Send a media command to the active (or only) connected phone.

        Returns:
            The phone id the command went to.

        Raises:
            NoPhoneError: no phone is connected.
            CommandRefused: an Apple phone's player cannot take it (seek, or not offered).
            AppleLinkError: an Apple phone could not be asked.
        """
        pid = self._active_media_phone
        apple = self.apple_phones.handles
        if pid not in self.connected and pid not in apple:
            pid = next(iter(self.connected), None) or next(iter(apple), None)
        if pid is None:
            raise NoPhoneError("no phone is connected")
        if pid in apple:
            await self.apple_media_command(pid, action)
            return pid
        try:
            # app.py validated ``action`` against the same Literal.
            cmd = MediaCommand(action=action, position_ms=position_ms)  # type: ignore[arg-type]
            await self.connected[pid].send(cmd)
        except ProtocolError as exc:  # the session is closing or being replaced
            raise NoPhoneError(f"the phone's session is closing ({exc.reason.value})") from exc
        return pid

    # -- status ------------------------------------------------------------------------
    def status(self) -> views.Status:
        """Return the car's status as ``GET /api/status`` shows it."""
        return views.Status(
            id=self.identity.device_id,
            name=self.config.name,
            model=self.config.model,
            fingerprint=self.identity.fingerprint,
            protocol_version=PROTOCOL_VERSION,
            pairing_open=self.pairing_open,
            pairing_uri_expires_at=self._oob[1] if self._oob is not None else None,
            ble={"address": self.ble_address} if self.ble_address else None,
            lan={"endpoint": self.config.lan_endpoint} if self.config.lan_endpoint else None,
            apple=self.apple_enabled,
            classic=self.classic.address,
        )

    # -- transports --------------------------------------------------------------------
    async def serve_link(self, link: BaseTransport) -> None:
        """Run one phone connection until it ends (any transport)."""
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            await PhoneSession(self, link).run()
        finally:
            if task is not None:
                self._sessions.discard(task)

    async def shutdown(self) -> None:
        """Close every phone connection."""
        for sess in list(self.connected.values()):
            sess.close("car shutting down")
        for handle in list(self.apple_phones.handles.values()):
            handle.close("car shutting down")
        self._close_classic_links("car shutting down")
        # Let the goodbyes go out, then stop whatever is left before the store closes.
        if self._background:
            await asyncio.wait(self._background, timeout=1)
        pending = self._sessions | self._background
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)


# What /api/media shows while no phone has reported a track.
_EMPTY_MEDIA = views.Media(
    phone_id=None,
    title=None,
    artists=[],
    album=None,
    state="stopped",
    position_ms=0,
    duration_ms=0,
    rate=0.0,
    track_id=None,
    artwork_url=None,
    connected=False,
    source=None,
)


if TYPE_CHECKING:

    def _engine_is_apple_events(engine: Engine) -> AppleEvents:
        return engine  # mypy checks that Engine implements every AppleEvents method

    def _engine_is_classic_events(engine: Engine) -> ClassicEvents:
        return engine
