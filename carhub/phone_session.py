"""One connected phone on the car: a thin pump between a ``Link`` and the protocol.

Like aioesphomeapi's frame helpers: read bytes, feed ``protocol.connection.CarConnection``,
write what it returns, and hand each event to the store or the engine. Contacts batches go
to ``protocol.sync.ContactsReceiver``; every batch is committed to SQLite before its
acknowledgement is sent, so an ack always means "durable".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from carhub.store import StoreError
from protocol.connection import (
    CarConnection,
    Closed,
    ConnectionEvent,
    ConnectionFailed,
    MessageReceived,
    PairingCode,
    PairingComplete,
    PeerHello,
    SessionEstablished,
)
from protocol.errors import PairingError, ProtocolError, Reason
from protocol.identity import device_id, fingerprint
from protocol.media import Artwork, ArtworkRequest, NowPlaying
from protocol.messages import Message, Unpair
from protocol.sync import (
    ApplyBatch,
    ContactsBatch,
    ContactsDone,
    ContactsReceiver,
    ContactsSynced,
    ManifestRequest,
)

if TYPE_CHECKING:
    from carhub.engine import Engine
    from shell.transport import BaseTransport as Link

__all__ = ["PhoneSession"]

log = logging.getLogger("carhub.session")

_SYNC_MESSAGES = (ContactsBatch, ContactsDone, ManifestRequest)
TICK_SECONDS = 1.0


class PhoneSession:
    """Serves one phone over one link."""

    def __init__(self, engine: Engine, link: Link) -> None:
        self.engine = engine
        self.link = link
        self.transport_name = link.transport_name
        self.phone_id = ""
        # Copied now: the connection refuses an "oob" PairRequest without it. Whether it is
        # still the one on show (one-time, replaceable) is checked again when pairing ends.
        self._oob_secret = engine.oob_secret()
        self._code_shown = False  # a numeric code was shown; no code means OOB (QR) pairing
        self._conn = CarConnection(
            engine.identity,
            engine.config.name,
            lookup_peer=engine.store.pinned_key,
            pairing_gate=lambda phone_id, now: engine.pairing_gate(
                phone_id, now, peer=self._peer_host, session=self
            ),
            oob_secret=self._oob_secret,
            model=engine.config.model,
            now=time.time(),
        )
        self._receiver: ContactsReceiver | None = None
        # The rate limit also keys on where the phone connects from (the LAN host, or the
        # BLE address), since a device id in a Hello is only a claim until pairing.
        self._peer_host = str(getattr(link, "peer", "?")).rsplit(":", 1)[0]
        if link.transport_name == "ble":
            self._peer_host = str(getattr(link, "peer", "?"))
        self._pairing = False  # a pairing is in progress on this session
        self._send_lock = asyncio.Lock()
        self._established = False
        self._closing = False
        self._last_publish = 0.0
        self._requested_art: set[bytes] = set()

    async def run(self) -> None:
        """Pump until the link or the protocol ends."""
        log.info("%s: connection from %s", self.transport_name, self.link.peer)
        ticker = asyncio.create_task(self._tick())
        try:
            while not self._closing:
                try:
                    data = await self.link.recv()
                except ConnectionError:
                    break
                if self._closing:
                    break
                try:
                    self._conn.receive_data(data, time.time())
                except ProtocolError:
                    break  # already failed and reported; the peer kept talking
                await self._process()
        finally:
            ticker.cancel()
            if self._pairing:  # walked away mid-pairing: counts as a failed attempt
                self.engine.pairing_failed(self.phone_id, time.time(), peer=self._peer_host)
            self.engine.pairing_ended(self)
            self.engine.drop_pending(self)
            if self.phone_id:
                self.engine.phone_disconnected(self.phone_id, self)
            await self._flush()
            await self.link.close()
            log.info("%s: %s disconnected", self.transport_name, self.phone_id or self.link.peer)

    # -- called by the engine --------------------------------------------------------------
    def confirm_pairing(self, accepted: bool) -> None:
        """Pass the car user's decision on the code to the connection."""
        try:
            self._conn.confirm_pairing(accepted, time.time())
        except ProtocolError as exc:
            log.info("pairing decision ignored: %s", exc)
            return
        self.engine.spawn(self._process())

    async def send(self, msg: Message) -> None:
        """Send an application message (a media command)."""
        self._conn.send(msg)
        await self._flush()

    def close(self, reason: str) -> None:
        """End this session (unpaired, replaced, shutting down)."""
        self._closing = True
        self._conn.close(reason)
        self.engine.spawn(self._close_soon())

    async def _close_soon(self) -> None:
        await self._flush()
        await self.link.close()

    # -- internals ---------------------------------------------------------------------
    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._conn.tick(time.time())
            await self._process()

    async def _flush(self) -> None:
        data = self._conn.data_to_send()
        if not data:
            return
        async with self._send_lock:
            try:
                await self.link.send(data)
            except ConnectionError:
                self._closing = True

    async def _process(self) -> None:
        """Handle every pending connection event, then write what they produced."""
        while (ev := self._conn.next_event()) is not None:
            if self._closing and not isinstance(ev, ConnectionFailed | Closed):
                continue  # queued behind a close (Bye, Unpair, failure): void now
            self._handle(ev)
        await self._flush()

    def _handle(self, ev: ConnectionEvent) -> None:
        if isinstance(ev, PeerHello):
            self.phone_id = ev.device_id
            self._pairing = ev.intent == "pair"
            log.info("hello from %r (%s), intent %s", ev.name, ev.device_id, ev.intent)
        elif isinstance(ev, PairingCode):
            self._pairing_code(ev)
        elif isinstance(ev, PairingComplete):
            self._paired(ev)
        elif isinstance(ev, SessionEstablished):
            self._established = True
            self.engine.store.rename_phone(self.phone_id, self._conn.peer_name)
            self.engine.phone_connected(self.phone_id, self)
            self._receiver = ContactsReceiver(self.engine.store.mirror_state(self.phone_id))
            self._send_all(self._receiver.hello())
        elif isinstance(ev, MessageReceived):
            self._message(ev.message)
        elif isinstance(ev, ConnectionFailed):
            self._failed(ev.error)
        elif isinstance(ev, Closed):
            self._closing = True

    def _paired(self, ev: PairingComplete) -> None:
        refused = self._refuse_pairing(ev)
        if refused is not None:
            # Drop the queued PairResult(true) and handshake so the phone pins nothing.
            self._conn.data_to_send()
            self._conn.abort(*refused)
            log.warning("%s: pairing refused: %s", ev.peer_device_id, refused[1])
            return  # the ConnectionFailed that follows counts the failed attempt
        self._pairing = False
        self.engine.pairing_ended(self)
        try:
            self.engine.store.add_phone(
                ev.peer_device_id,
                ev.peer_name,
                ev.peer_public_key,
                fingerprint(ev.peer_public_key),
                time.time(),
            )
        except StoreError as exc:
            # Not pinned here, so the phone must not pin us either: drop the queued
            # PairResult(true) and handshake, and tell it why instead.
            self._conn.data_to_send()
            self._conn.abort(Reason.PEER_ERROR, f"car storage: {exc}"[:200])
            log.error("%s: could not store the pairing: %s", ev.peer_device_id, exc)
            return
        self.engine.pairing_succeeded(ev.peer_device_id, peer=self._peer_host)
        log.info("paired with %r (%s)", ev.peer_name, ev.peer_device_id)
        self.engine.hub.publish("phones", self.engine.phones())

    def _refuse_pairing(self, ev: PairingComplete) -> tuple[Reason, str] | None:
        """Return why a completed pairing must not be pinned after all, or None."""
        # In OOB mode the protocol emits no code, and with it skips its id-vs-key check:
        # without this a QR pairing could claim a paired phone's id and replace its key.
        if device_id(ev.peer_public_key) != ev.peer_device_id:
            return Reason.ID_MISMATCH, "the phone's device id is not its key's id"
        if not self._code_shown and not self.engine.consume_oob_secret(self._oob_secret):
            return Reason.OOB_MISMATCH, "the pairing QR code was already used, replaced or expired"
        return None

    def _pairing_code(self, ev: PairingCode) -> None:
        self._code_shown = True
        log.info("pairing request from %r: code %s", ev.peer_name, ev.code)
        from carhub.engine import PendingPairing

        self.engine.add_pending(
            PendingPairing(
                id=self.engine.new_request_id(),
                phone_id=self.phone_id,
                phone_name=ev.peer_name,
                phone_fingerprint=ev.peer_fingerprint,
                code=ev.code,
                expires_at=ev.expires_at,
                session=self,
            )
        )

    def _failed(self, error: ProtocolError) -> None:
        self._closing = True
        if self._pairing or isinstance(error, PairingError):
            self._pairing = False
            self.engine.pairing_failed(self.phone_id or "?", time.time(), peer=self._peer_host)
        log.warning(
            "%s %s: connection closed: %s", self.transport_name, self.phone_id or "?", error
        )

    def _send_all(self, msgs: list[Message]) -> None:
        for m in msgs:
            self._conn.send(m)

    def _message(self, msg: Message) -> None:
        if isinstance(msg, _SYNC_MESSAGES):
            assert self._receiver is not None
            try:
                self._send_all(self._receiver.receive(msg))
                self._drain_sync()
            except ProtocolError as exc:
                log.warning("%s: sync refused: %s", self.phone_id, exc)
                self._conn.abort(exc.reason, exc.detail[:200])
        elif isinstance(msg, NowPlaying):
            self.engine.now_playing(self.phone_id, msg, int(time.time() * 1000))
            if msg.artwork and not self.engine.store.has_artwork(self.phone_id, msg.artwork):
                self._requested_art.add(msg.artwork)
                self._conn.send(ArtworkRequest(hash=msg.artwork))
        elif isinstance(msg, Unpair):
            log.info("%s asked to be unpaired", self.phone_id)
            self.engine.unpair(self.phone_id)
        elif isinstance(msg, Artwork):
            # Only images we asked for: a phone cannot fill the disk or plant other types.
            if msg.hash not in self._requested_art or not msg.mime.startswith("image/"):
                log.warning("%s: unrequested or non-image artwork dropped", self.phone_id)
                return
            self._requested_art.discard(msg.hash)
            self.engine.store.put_artwork(self.phone_id, msg.hash, msg.mime, msg.data)
            self.engine.hub.publish("media", self.engine.media())
        else:
            log.info("%s: ignoring %s", self.phone_id, type(msg).__name__)

    def _drain_sync(self) -> None:
        assert self._receiver is not None
        while (ev := self._receiver.next_event()) is not None:
            if isinstance(ev, ApplyBatch):
                self._apply(ev)
            elif isinstance(ev, ContactsSynced):
                log.info("%s: contacts synced, %d on the car", self.phone_id, ev.total)
                self._publish_contacts(force=True)

    def _apply(self, ev: ApplyBatch) -> None:
        digests = dict(ev.digests)
        try:
            self.engine.store.apply_batch(
                self.phone_id,
                upserts=[(c, digests[c.uid]) for c in ev.upserts],
                deletes=ev.deletes,
                photos=ev.photos,
                anchor=ev.new_anchor,
                now=time.time(),
            )
        except StoreError as exc:
            # Nothing was applied; the phone keeps the batch and resumes later.
            log.error("%s: could not store batch %d: %s", self.phone_id, ev.seq, exc)
            self._conn.abort(Reason.PEER_ERROR, f"car storage: {exc}"[:200])
            return
        assert self._receiver is not None
        self._send_all(self._receiver.applied(ev))
        self._publish_contacts()

    def _publish_contacts(self, force: bool = False) -> None:
        # Throttled: a 100k sync is 200 batches; the dashboard needs a few updates a second.
        now = time.monotonic()
        if not force and now - self._last_publish < 0.25:
            return
        self._last_publish = now
        total, _ = self.engine.store.contacts(self.phone_id, limit=0)
        self.engine.hub.publish("contacts", {"phone_id": self.phone_id, "total": total})
        self.engine.hub.publish("phones", self.engine.phones())
