"""Running the protocol to one car over one transport: pair, sync contacts, media.

``CarLink`` is the thin pump (aioesphomeapi style): ``shell.driver.ConnectionDriver`` feeds
the transport's bytes into ``protocol.connection.PhoneConnection`` and queues its events;
the flows below consume them. The connection runs the contacts sync itself; a flow only
records the journal it is handed and reports progress.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from phone_bridge.errors import LinkClosed
from protocol.connection import (
    Closed,
    ConnectionEvent,
    ConnectionFailed,
    MessageReceived,
    PairingCode,
    PairingComplete,
    PeerHello,
    PhoneConnection,
    SessionEstablished,
    SyncCompleted,
    SyncFailed,
    SyncJournal,
    SyncProgress,
)
from protocol.contacts import Contact, Photo
from protocol.errors import ProtocolError
from protocol.messages import Message
from protocol.sync import (
    ContactsSender,
    ContactsState,
    DigestCache,
    SnapshotEdit,
    SyncSnapshot,
    SyncSummary,
)
from shell.driver import ConnectionDriver
from shell.transport import BaseTransport

__all__ = ["CarLink", "LinkClosed", "lost", "pair", "sync_contacts"]

log = logging.getLogger("phone_bridge")
E = TypeVar("E")


class CarLink:
    """One connection to a car. Use ``async with``.

    ``shell.driver.ConnectionDriver`` pumps the transport; every event lands in ``events``
    for the flows below to consume.
    """

    def __init__(self, transport: BaseTransport, conn: PhoneConnection) -> None:
        self.transport = transport
        self.conn = conn
        self.events: asyncio.Queue[ConnectionEvent | BaseException] = asyncio.Queue()
        self._driver = ConnectionDriver(transport, conn, self.events.put_nowait)
        self._reader: asyncio.Task[None] | None = None
        self.car_name = ""
        self.car_id = ""
        self.mirror = (bytes(16), 0)  # the car's anchor and count after the last sync here

    @property
    def bytes_sent(self) -> int:
        """Bytes written to the transport so far."""
        return self._driver.bytes_sent

    @property
    def bytes_received(self) -> int:
        """Bytes read from the transport so far."""
        return self._driver.bytes_received

    async def __aenter__(self) -> CarLink:
        await self.flush()  # the Hello
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self, reason: str = "") -> None:
        """Say goodbye if the session is up, then close the transport."""
        if self._reader is not None:
            self._reader.cancel()
        await self._driver.aclose(reason)

    async def flush(self) -> None:
        """Write whatever the connection produced.

        Raises:
            LinkClosed: the link is gone (the car was reached: it is lost, not unreachable).
        """
        try:
            await self._driver.flush()
        except ConnectionError as exc:
            raise lost(exc) from exc

    async def process(self) -> None:
        """Queue the events a direct call on ``conn`` made, then write what it produced.

        Raises:
            LinkClosed: the link is gone.
        """
        try:
            await self._driver.process()
        except ConnectionError as exc:
            raise lost(exc) from exc

    async def send(self, msg: Message) -> None:
        """Send one application message over the session."""
        self.conn.send(msg)
        await self.flush()

    async def next_event(self, timeout: float | None = None) -> ConnectionEvent:
        """Return the next connection event.

        Raises:
            ProtocolError: the connection failed (typed reason), or a sync failed.
            LinkClosed: the car said goodbye or the transport dropped.
            TimeoutError: nothing arrived within ``timeout``.
        """
        item = await asyncio.wait_for(self.events.get(), timeout)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, ConnectionFailed | SyncFailed):
            raise item.error
        if isinstance(item, Closed):
            raise LinkClosed(f"the car closed the session: {item.reason or 'bye'}")
        if isinstance(item, PeerHello):
            self.car_name, self.car_id = item.name, item.device_id
        return item

    async def wait_for(self, cls: type[E], timeout: float | None = None) -> E:
        """Skip events until one of type ``cls`` arrives."""
        while True:
            ev = await self.next_event(timeout)
            if isinstance(ev, cls):
                return ev
            self._unhandled(ev)

    def _unhandled(self, ev: ConnectionEvent) -> None:
        if isinstance(ev, MessageReceived):
            log.debug("ignoring %s", type(ev.message).__name__)

    async def _read(self) -> None:
        try:
            ended = await self._driver.pump()
        except Exception as exc:  # never leave a waiter hanging on a dead reader
            self.events.put_nowait(exc)
            return
        if isinstance(ended, ProtocolError):
            self.events.put_nowait(ended)
        else:  # TransportError, or a BLE backend's own ConnectionError
            self.events.put_nowait(lost(ended))


def lost(exc: BaseException | None) -> LinkClosed:
    """The error for a link that dropped once open, whichever side of it noticed first.

    A write and the reader race to see a dead car: both must tell the user the same thing
    (exit 1, connection lost), never "unreachable" (exit 3), which is for a failed dial.
    """
    why = str(exc or "") or "the link dropped"
    return LinkClosed(f"connection to the car lost: {why}")


async def pair(
    link: CarLink, decide: Callable[[str], Awaitable[bool]], timeout: float = 90.0
) -> PairingComplete:
    """Run first-contact pairing on a fresh link.

    Args:
        link: a link opened with a ``PhoneConnection`` that has no pinned car key.
        decide: shown the 6-digit code, returns the user's yes/no.
        timeout: overall seconds, the car user's decision included.

    Raises:
        PairingError: rejected, mismatch, closed, rate limited or timed out (typed reason).
    """
    code_ev = await link.wait_for(PairingCode, timeout)
    accepted = await decide(code_ev.code)
    link.conn.confirm_pairing(accepted, time.time())
    await link.process()
    # After a "no" the connection fails with a typed error, raised from here.
    done = await link.wait_for(PairingComplete, timeout)
    await link.wait_for(SessionEstablished, 10.0)
    return done


async def sync_contacts(
    link: CarLink,
    contacts: list[Contact],
    photos: dict[bytes, Photo],
    snapshot: SyncSnapshot | None,
    record: Callable[[list[SnapshotEdit]], None],
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    timeout: float = 30.0,
    *,
    opening: ContactsState | None = None,
    other: Callable[[Message], Awaitable[None]] | None = None,
    cache: DigestCache | None = None,
    allow_deletes: bool = False,
) -> SyncSummary:
    """Sync contacts over an established session.

    The car opens each session with ``ContactsState``; for a later sync in the same session
    pass ``opening`` (the state of the last ack) instead of waiting for one. The sender's
    journal is recorded after every message from the car, before replying, so a cut at any
    point resumes without duplicates or losses. Other application messages (media commands that
    arrive meanwhile) go to ``other``.

    Unless ``allow_deletes``, a sync that would delete more than half of the car's mirror
    (and more than 20 contacts) stops before its first batch (``protocol.sync.guard``).

    Raises:
        DeletesRefused: that guard stopped the sync; the session is still usable.
        SyncError, ProtocolError, LinkClosed, TimeoutError.
    """
    sender = ContactsSender(contacts, photos, snapshot, cache=cache, allow_deletes=allow_deletes)
    for uid, why in sender.skipped:  # the car would refuse it (PROTOCOL.md section 7)
        log.warning("not syncing contact %s: %s", uid[:80], why)
    # The connection feeds the car's replies to the sender and holds the answers until
    # the journal is recorded (write-ahead): here we only record, report and wait.
    link.conn.start_sync(sender, opening)
    await link.process()
    while True:
        ev = await link.next_event(timeout)
        if isinstance(ev, SyncJournal):
            record(ev.edits)
            link.conn.journal_recorded()
            await link.process()
        elif isinstance(ev, SyncProgress):
            on_progress(ev.done, ev.total)
        elif isinstance(ev, SyncCompleted):
            link.mirror = (ev.anchor, len(contacts) - len(sender.skipped))
            return ev.summary
        elif isinstance(ev, MessageReceived) and other is not None:
            await other(ev.message)
        else:
            link._unhandled(ev)
