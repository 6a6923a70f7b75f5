"""The one connection driver: pump a sans-I/O connection over a ``BaseTransport``.

Like aioesphomeapi's frame helpers, and the same on both sides: read bytes, feed
``protocol.connection``, hand each event to the owner's ``on_event``, write what the
connection produced. A ticker calls ``tick`` every second so timeouts fire on a quiet link,
until the session is up: every timeout of ``protocol.connection`` (setup, pairing) is
before it, so an established session has nothing to tick, and an idle link costs no
wake-ups (a dead one is found by the transport: WebSocket pings, the BLE link's loss).
Writes are serialised by one lock, since the reader, the ticker and the owner all flush.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

from protocol.connection import ConnectionEvent, SessionEstablished
from protocol.errors import ProtocolError
from shell import keylog
from shell.transport import BaseTransport

__all__ = ["TICK_SECONDS", "ConnectionDriver", "SansIOConnection"]

log = logging.getLogger("shell.driver")

# Timeouts in protocol/ are seconds long (10 s setup, 60 s pairing): 1 s is precise enough.
TICK_SECONDS = 1.0


class SansIOConnection(Protocol):
    """What the driver needs of ``CarConnection`` / ``PhoneConnection``."""

    def receive_data(self, data: bytes, now: float) -> None: ...
    def tick(self, now: float) -> None: ...
    def next_event(self) -> ConnectionEvent | None: ...
    def data_to_send(self) -> bytes: ...
    def close(self, reason: str = "") -> None: ...


class ConnectionDriver:
    """Pumps one connection over one transport.

    Args:
        transport: the open link.
        conn: the protocol connection for it.
        on_event: called with every event, in order, before what it caused is written.
        clock: the time source passed to the connection as ``now``.
        tick: seconds between ``tick`` calls.
    """

    def __init__(
        self,
        transport: BaseTransport,
        conn: SansIOConnection,
        on_event: Callable[[ConnectionEvent], None],
        *,
        clock: Callable[[], float] = time.time,
        tick: float = TICK_SECONDS,
    ) -> None:
        self.transport = transport
        self.conn = conn
        self._on_event = on_event
        self._clock = clock
        self._tick_seconds = tick
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._established = False
        self.closing = False  # set to stop reading (the owner's close, a dead link)
        self.bytes_sent = 0
        self.bytes_received = 0

    async def pump(self) -> BaseException | None:
        """Read and dispatch until the link ends, the connection fails or ``closing`` is set.

        Returns:
            What ended it: the transport's ``ConnectionError``, the ``ProtocolError`` of a
            connection that had already failed (its ``ConnectionFailed`` was dispatched),
            or None when ``closing`` was set.
        """
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        try:
            while not self.closing:
                try:
                    data = await self.transport.recv()
                except ConnectionError as exc:
                    return exc
                if self.closing:
                    break
                self.bytes_received += len(data)
                try:
                    self.conn.receive_data(data, self._clock())
                except ProtocolError as exc:
                    return exc  # already failed and reported; the peer kept talking
                try:
                    await self.process()
                except ConnectionError as exc:
                    return exc
            return None
        finally:
            self._ticker.cancel()

    def dispatch(self) -> None:
        """Hand every pending event to ``on_event``, in order.

        A ``SessionEstablished`` first lifts the transport's pre-session limits. A
        ``ProtocolError`` from ``on_event`` (an answer to a connection that failed in the
        meantime) is logged and the rest are still handed out: its ``ConnectionFailed`` is
        among them, and the owner must see it.
        """
        while (ev := self.conn.next_event()) is not None:
            if isinstance(ev, SessionEstablished):
                # Before anything is written back: the peer can send a full frame only once
                # it has our answer, and by then the transport takes one.
                self.transport.session_established()
                self._established = True  # the ticker ends after its current sleep
                keylog.record(ev.secrets)  # only with --keylog (emulation, debugging)
            try:
                self._on_event(ev)
            except ProtocolError as exc:
                log.warning("%s: %s while handling %s", self.transport.peer, exc, type(ev).__name__)

    async def process(self) -> None:
        """Dispatch pending events, then write what they produced.

        Raises:
            ConnectionError: the transport is gone (``closing`` is set too).
        """
        self.dispatch()
        await self.flush()

    async def flush(self) -> None:
        """Write whatever the connection produced.

        Raises:
            ConnectionError: the transport is gone (``closing`` is set too).
        """
        data = self.conn.data_to_send()
        if not data:
            return
        async with self._lock:
            try:
                await self.transport.send(data)
            except ConnectionError:
                self.closing = True
                raise
        self.bytes_sent += len(data)

    async def aclose(self, reason: str | None = None) -> None:
        """Stop, say goodbye when ``reason`` is given, write what is left, close the link."""
        self.closing = True
        if self._ticker is not None:
            # Under the write lock, so a tick is never cut off halfway through a write (a
            # BLE write is several chunks, and half a frame would corrupt the peer's stream).
            async with self._lock:
                self._ticker.cancel()
        # Best effort: a closing link may fail in a backend's own way; nothing is left to do.
        with suppress(Exception):
            if reason is not None:
                self.conn.close(reason)
            await self.flush()
        with suppress(Exception):
            await self.transport.close()

    async def _tick(self) -> None:
        while not self._established:
            await asyncio.sleep(self._tick_seconds)
            try:
                self.conn.tick(self._clock())
                await self.process()
            except ConnectionError:
                continue  # the link is gone: the reader ends the pump
            except Exception:
                # A dead ticker would stop every timeout on this link: end the link instead.
                log.exception("%s: connection ticker failed; closing the link", self.transport.peer)
                self.closing = True
                with suppress(Exception):
                    await self.transport.close()
                return
