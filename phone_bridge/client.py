"""Running the protocol to one car over one transport: pair, sync contacts, media.

``CarLink`` is the thin pump (aioesphomeapi style): a reader task feeds the transport's
bytes into ``protocol.connection.PhoneConnection`` and queues its events; the flows below
consume those events and call into ``protocol.sync`` / ``protocol.media``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
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
)
from protocol.contacts import Contact, Photo
from protocol.errors import ProtocolError
from protocol.messages import Message
from protocol.sync import (
    ContactsAck,
    ContactsSender,
    ContactsState,
    DigestCache,
    Manifest,
    SnapshotEdit,
    SyncCompleted,
    SyncProgress,
    SyncSnapshot,
    SyncSummary,
)
from shell.transport import BaseTransport, TransportError

__all__ = ["CarLink", "LinkClosed", "pair", "sync_contacts"]

log = logging.getLogger("phone_bridge")
E = TypeVar("E")
_SYNC_REPLIES = (ContactsState, Manifest, ContactsAck)


class CarLink:
    """One connection to a car. Use ``async with``."""

    def __init__(self, transport: BaseTransport, conn: PhoneConnection) -> None:
        self.transport = transport
        self.conn = conn
        self.events: asyncio.Queue[ConnectionEvent | BaseException] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self.car_name = ""
        self.car_id = ""
        self.mirror = (bytes(16), 0)  # the car's anchor and count after the last sync here
        self.bytes_sent = 0
        self.bytes_received = 0

    async def __aenter__(self) -> CarLink:
        self._reader = asyncio.create_task(self._read())
        self._ticker = asyncio.create_task(self._tick())
        await self.flush()  # the Hello
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self, reason: str = "") -> None:
        """Say goodbye if the session is up, then close the transport."""
        for task in (self._reader, self._ticker):
            if task is not None:
                task.cancel()
        with suppress(Exception):
            self.conn.close(reason)
            await self.flush()
        with suppress(Exception):
            await self.transport.close()

    async def flush(self) -> None:
        """Write whatever the connection produced."""
        data = self.conn.data_to_send()
        if data:
            async with self._send_lock:
                await self.transport.send(data)
            self.bytes_sent += len(data)

    async def send(self, msg: Message) -> None:
        """Send one application message over the session."""
        self.conn.send(msg)
        await self.flush()

    async def next_event(self, timeout: float | None = None) -> ConnectionEvent:
        """Return the next connection event.

        Raises:
            ProtocolError: the connection failed (typed reason).
            LinkClosed: the car said goodbye or the transport dropped.
            TimeoutError: nothing arrived within ``timeout``.
        """
        item = await asyncio.wait_for(self.events.get(), timeout)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, ConnectionFailed):
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
            while True:
                data = await self.transport.recv()
                self.bytes_received += len(data)
                self.conn.receive_data(data, time.time())
                while (ev := self.conn.next_event()) is not None:
                    self.events.put_nowait(ev)
                await self.flush()
        except ConnectionError as exc:  # TransportError, or a BLE backend's own
            self.events.put_nowait(LinkClosed(str(exc) or "the link to the car was lost"))
        except ProtocolError as exc:
            self.events.put_nowait(exc)
        except Exception as exc:  # never leave a waiter hanging on a dead reader
            self.events.put_nowait(exc)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.conn.tick(time.time())
            while (ev := self.conn.next_event()) is not None:
                self.events.put_nowait(ev)
            with suppress(TransportError):
                await self.flush()


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
    await link.flush()
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
) -> SyncSummary:
    """Sync contacts over an established session.

    The car opens each session with ``ContactsState``; for a later sync in the same session
    pass ``opening`` (the state of the last ack) instead of waiting for one. The sender's
    journal is recorded after every message from the car, before replying, so a cut at any
    point resumes without duplicates or losses. Other application messages (media commands that
    arrive meanwhile) go to ``other``.

    Raises:
        SyncError, ProtocolError, LinkClosed, TimeoutError.
    """
    sender = ContactsSender(contacts, photos, snapshot, cache=cache)
    pending: list[Message] = [opening] if opening is not None else []
    while True:
        if pending:
            msg = pending.pop()
        else:
            ev = await link.wait_for(MessageReceived, timeout)
            msg = ev.message
        if not isinstance(msg, _SYNC_REPLIES):
            if other is not None:
                await other(msg)
            continue
        replies = sender.receive(msg)
        record(sender.journal())  # write-ahead: persist before replying
        for msg in replies:
            link.conn.send(msg)
        await link.flush()
        while (sev := sender.next_event()) is not None:
            if isinstance(sev, SyncProgress):
                on_progress(sev.done, sev.total)
            elif isinstance(sev, SyncCompleted):
                link.mirror = (sev.anchor, len(contacts))
                return sev.summary
