"""A bounded queue of received byte chunks, between a stack's callback and ``recv()``.

Theory of operation: a BLE stack hands each GATT write or notification to a synchronous
callback, and a transport's ``recv()`` awaits the next chunk. ``ChunkQueue`` sits between
them: ``put_nowait`` never blocks (a callback cannot wait), ``get`` awaits. ``close``
appends an end marker: ``get`` returns every chunk queued before it, then raises
``TransportError``, and so does every later call.

The peer decides how fast chunks arrive and the reader may be slow or stuck, so the queue
is bounded in bytes, counting a fixed overhead per chunk. A chunk that would take it past
the bound drops everything queued, closes the queue and calls ``on_overflow``; the owner
then disconnects the peer. Until the session is up the car's links use the small
``PRE_SESSION_QUEUED_BYTES`` and raise ``max_bytes`` afterwards (PROTOCOL.md §3.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from protocol.connection import PRE_SESSION_MAX_FRAME
from shell.errors import TransportError

__all__ = ["CHUNK_OVERHEAD", "MAX_QUEUED_BYTES", "PRE_SESSION_QUEUED_BYTES", "ChunkQueue"]

# The protocol layer reads every chunk promptly, so only a misbehaving peer queues this
# much (2 MiB is ~20 s of a fast BLE link's traffic).
MAX_QUEUED_BYTES = 2 * 1024 * 1024
# Each queued chunk costs its Python object and queue slot too: counting it keeps a flood
# of 1-byte (or empty) writes under the same bound.
CHUNK_OVERHEAD = 64
# Before the session a phone sends a few small messages (a Hello is < 1 KiB), each waiting
# for the car's answer: an unauthenticated peer gets no more than the pre-session limit.
PRE_SESSION_QUEUED_BYTES = PRE_SESSION_MAX_FRAME


class ChunkQueue:
    """Chunks received from one peer, waiting for ``get``.

    Args:
        max_bytes: the most the queue may hold, counting ``chunk_overhead`` per chunk.
        on_overflow: called (with the bytes queued until then) when a chunk would take
            the queue past ``max_bytes``; the queue is already emptied and closed.
        closed_message: the message of the ``TransportError`` that ``get`` raises at the
            end.
        chunk_overhead: what each chunk costs beyond its length.
    """

    def __init__(
        self,
        max_bytes: int = MAX_QUEUED_BYTES,
        *,
        on_overflow: Callable[[int], None] | None = None,
        closed_message: str = "link closed",
        chunk_overhead: int = CHUNK_OVERHEAD,
    ) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._max_bytes = max_bytes
        self._on_overflow = on_overflow
        self._closed_message = closed_message
        self._overhead = chunk_overhead
        self._queued = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the end marker is queued (no chunk is accepted any more)."""
        return self._closed

    @property
    def max_bytes(self) -> int:
        """The bound; the owner may raise it (once the peer is authenticated)."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        self._max_bytes = value

    @property
    def queued_bytes(self) -> int:
        """What the unread chunks cost against ``max_bytes``."""
        return self._queued

    def qsize(self) -> int:
        """Return how many items wait: unread chunks, plus the end marker once closed."""
        return self._queue.qsize()

    def put_nowait(self, chunk: bytes) -> None:
        """Queue ``chunk`` (a copy); dropped if the queue is closed.

        A chunk that would take the queue past ``max_bytes`` is not queued: the queue drops
        what it holds, closes and calls ``on_overflow``.
        """
        if self._closed:
            return
        cost = len(chunk) + self._overhead
        if self._queued + cost > self._max_bytes:
            queued = self._queued
            self._drop_all()
            self.close()
            if self._on_overflow is not None:
                self._on_overflow(queued)
            return
        self._queued += cost
        self._queue.put_nowait(bytes(chunk))

    async def get(self) -> bytes:
        """Return the next chunk, waiting for one.

        Raises:
            TransportError: the queue is closed and every chunk before the end was read.
        """
        chunk = await self._queue.get()
        if chunk is None:
            self._queue.put_nowait(None)  # later calls raise too
            raise TransportError(self._closed_message)
        self._queued -= len(chunk) + self._overhead
        return chunk

    def close(self) -> None:
        """Queue the end marker (idempotent); chunks already queued stay readable."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    def _drop_all(self) -> None:
        """Free the queued chunks now (a flooding peer's data is not worth reading)."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queued = 0
