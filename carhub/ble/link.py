"""One phone's byte pipe over the car's GATT service: a ``shell.transport.BaseTransport``.

The GATT server (``carhub.ble.server``) creates a ``BleLink`` per connection, routes the
phone's ``channel_in`` writes to ``on_write`` and marks it subscribed once the phone
listens on ``channel_out``. ``send`` notifies on ``channel_out``, cut to the MTU; ``recv``
drains a ``shell.chunks.ChunkQueue``.

Any nearby device can connect and write, so a link holds bounded state only: writes before
the subscription are dropped (nothing would read them: PROTOCOL.md §1.3 starts a link only
after it), and a peer that fills its receive queue past its bound is disconnected: the
small ``PRE_SESSION_QUEUED_BYTES`` until the session is up (PROTOCOL.md §3.2), then the
server's bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bumble import hci
from bumble.core import BaseBumbleError
from bumble.device import Connection

from protocol.framing import segment
from shell.chunks import MAX_QUEUED_BYTES, PRE_SESSION_QUEUED_BYTES, ChunkQueue
from shell.gate import Leave, stay
from shell.transport import BaseTransport, TransportError

__all__ = ["BleLink", "Notify", "Spawn"]

log = logging.getLogger("carhub.ble")

_REMOTE_USER_TERMINATED = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
_CLOSED = "BLE link closed"

Notify = Callable[[Connection, bytes], Awaitable[None]]
"""Send one notification on channel_out to a connection."""
Spawn = Callable[[Awaitable[None]], None]
"""Run a coroutine in a task its owner cancels on stop."""


class BleLink(BaseTransport):
    """One phone's byte pipe over GATT (car side).

    Args:
        connection: the phone's LE connection.
        notify: sends one chunk on channel_out (the server's GATT notify).
        spawn: runs the disconnect after an overflow (a write callback cannot await).
        max_queued_bytes: the bound of the receive queue once the session is up (see
            ``shell.chunks``); before it, the smaller of this and
            ``PRE_SESSION_QUEUED_BYTES``.

    Attributes:
        name: always ``"ble"``.
        peer: the phone's BD address.
        peer_address: the same, the name the car's BLE code used first.
    """

    name = "ble"

    def __init__(
        self,
        connection: Connection,
        *,
        notify: Notify,
        spawn: Spawn,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
    ) -> None:
        self._connection = connection
        self._notify = notify
        self._spawn = spawn
        self._max_queued = max_queued_bytes
        self._chunks = ChunkQueue(
            min(max_queued_bytes, PRE_SESSION_QUEUED_BYTES),
            on_overflow=self._on_overflow,
            closed_message=_CLOSED,
        )
        self.leave: Leave = stay  # set by a server whose gate counts this link
        self._subscribed = asyncio.Event()
        self._closed = False
        self._early_write_logged = False
        self.peer_address = str(connection.peer_address)
        self.peer = self.peer_address

    @property
    def handle(self) -> int:
        """The LE connection handle."""
        return int(self._connection.handle)

    @property
    def mtu(self) -> int:
        """The ATT MTU negotiated on this connection."""
        return int(self._connection.att_mtu)

    @property
    def closed(self) -> bool:
        """Whether the link is gone (disconnected or closed)."""
        return self._closed

    @property
    def subscribed(self) -> bool:
        """Whether the phone listens on channel_out (or the link closed)."""
        return self._subscribed.is_set()

    async def send(self, data: bytes) -> None:
        """Notify ``data`` to the phone, cut to the link's MTU.

        Raises:
            TransportError: the link is gone.
        """
        await self._wait_subscribed()
        for chunk in segment(data, self.mtu):
            if self._closed:
                raise TransportError(_CLOSED)
            try:
                await self._notify(self._connection, chunk)
            except (BaseBumbleError, OSError) as exc:
                raise TransportError(f"BLE notify failed: {exc}") from exc

    async def recv(self) -> bytes:
        """Return the next chunk the phone wrote.

        Raises:
            TransportError: the link is gone and every chunk was read.
        """
        return await self._chunks.get()

    async def close(self) -> None:
        """Disconnect the phone (idempotent)."""
        if self._closed:
            return
        self.mark_closed()
        await self._disconnect()

    async def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the phone subscribed (or the link closed).

        Returns:
            False if ``timeout`` seconds passed first.
        """
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def session_established(self) -> None:
        """Queue up to the full bound from now on, and leave the server's gate."""
        self._chunks.max_bytes = self._max_queued
        self.leave()

    def evict(self) -> None:
        """Disconnect now (an overflow, or the server's gate displaced this link)."""
        # Closed now, not when the disconnect task runs: writes already in flight must not
        # queue again meanwhile.
        self.mark_closed()
        self._spawn(self._disconnect())

    def mark_subscribed(self) -> None:
        """Note that the phone listens on channel_out: its writes are queued from now."""
        self._subscribed.set()

    def mark_closed(self) -> None:
        """End recv() and wake a waiting send() (the connection is gone or going)."""
        if not self._closed:
            self._closed = True
            self._chunks.close()
            self._subscribed.set()
            self.leave()

    def on_write(self, data: bytes) -> None:
        """Queue a chunk written by the phone.

        Writes after close, and writes before the phone subscribed to channel_out (no link
        runs yet to read them), are dropped. A write that would take the queue past its
        bound disconnects the phone.
        """
        if self._closed:
            return
        if not self._subscribed.is_set():
            if not self._early_write_logged:
                self._early_write_logged = True
                log.debug("BLE phone %s wrote before subscribing; dropped", self.peer_address)
            return
        self._chunks.put_nowait(data)

    def _on_overflow(self, queued: int) -> None:
        """Disconnect a phone that overflowed its receive queue."""
        log.warning(
            "BLE phone %s overflowed its receive queue (%d bytes); disconnecting",
            self.peer_address,
            queued,
        )
        self.evict()

    async def _wait_subscribed(self) -> None:
        """Wait until the phone subscribed to channel_out, or the link closed."""
        if self._closed:
            raise TransportError(_CLOSED)
        if not self._subscribed.is_set():
            await self._subscribed.wait()
            if self._closed:
                raise TransportError(_CLOSED)

    async def _disconnect(self) -> None:
        """Drop the ACL connection (the link is already marked closed)."""
        with contextlib.suppress(Exception):  # already gone is fine
            await self._connection.disconnect(_REMOTE_USER_TERMINATED)
