"""Length-prefixed frames and BLE segmentation.

Theory of operation: every protocol unit travels as a *frame*: a 4-byte big-endian length
followed by that many payload bytes. The length is checked against ``MAX_FRAME_SIZE``
as soon as its 4 bytes arrive, so a hostile peer cannot make us buffer more than that.

The same byte stream is used on every transport. A WebSocket message carries whole frames
(``pack_messages`` groups them under the receiver's bound);
a BLE GATT channel carries the stream cut into ATT-sized segments (``segment``) and the
receiver simply feeds the segments back into a ``FrameDecoder``: GATT writes and
notifications on one connection are delivered in order, so no segment header is needed.

Like wsproto's buffer, the decoder consumes input only when a whole frame is present:
partial input is kept, never half-consumed, so feeding one byte at a time gives exactly the
same frames as feeding everything at once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from protocol.errors import FramingError, LocalProtocolError, Reason

__all__ = [
    "ATT_HEADER_SIZE",
    "HEADER_SIZE",
    "MAX_ATT_MTU",
    "MAX_FRAME_SIZE",
    "MIN_ATT_MTU",
    "FrameDecoder",
    "encode_frame",
    "pack_messages",
    "segment",
]

HEADER_SIZE = 4
# 1 MiB: big enough for a 500-contact batch or a cover image, small enough that a
# lying length prefix cannot exhaust a head unit's memory.
MAX_FRAME_SIZE = 1 << 20
MIN_ATT_MTU = 23  # the BLE default
MAX_ATT_MTU = 517  # the largest MTU ATT allows
ATT_HEADER_SIZE = 3  # opcode + handle in a write command / notification

_LEN = struct.Struct(">I")


def encode_frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its length.

    Raises:
        LocalProtocolError: the payload is over ``MAX_FRAME_SIZE``.
    """
    if len(payload) > MAX_FRAME_SIZE:
        raise LocalProtocolError(Reason.FRAME_TOO_LARGE, f"{len(payload)} bytes")
    return _LEN.pack(len(payload)) + payload


def segment(data: bytes, mtu: int) -> Iterator[bytes]:
    """Cut a byte stream into ATT payloads for a link with ``mtu``.

    Args:
        data: encoded frames (one or more).
        mtu: the negotiated ATT MTU, 23 to 517.

    Returns:
        An iterator of chunks of at most ``mtu - 3`` bytes.
    """
    if not MIN_ATT_MTU <= mtu <= MAX_ATT_MTU:
        raise LocalProtocolError(Reason.STATE, f"ATT MTU {mtu} outside 23..517")
    size = mtu - ATT_HEADER_SIZE
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def pack_messages(data: bytes, limit: int) -> Iterator[bytes]:
    """Cut encoded frames into messages of at most ``limit`` bytes, each of whole frames.

    A WebSocket message carries whole frames (PROTOCOL.md §2), and a receiver bounds its
    messages; several frames queued at once (a sync's batches) may exceed that bound.
    Bytes that are not whole frames (a frame longer than ``limit``, a cut-off tail) are
    cut at ``limit``: a receiver reads the stream across messages anyway.

    Args:
        data: encoded frames (one or more).
        limit: the most one message may hold; at least ``HEADER_SIZE + MAX_FRAME_SIZE``
            keeps every frame whole.

    Returns:
        An iterator of messages; a single empty one for empty ``data``.
    """
    if len(data) <= limit:
        yield data
        return
    view, end = memoryview(data), len(data)
    start = pos = 0  # the message being built is view[start:pos]
    while pos < end:
        size = HEADER_SIZE + _LEN.unpack_from(view, pos)[0] if end - pos >= HEADER_SIZE else 0
        unit_end = min(pos + max(size, HEADER_SIZE), end)
        if unit_end - start <= limit:
            pos = unit_end  # the next frame fits in this message
        elif pos > start:
            yield bytes(view[start:pos])  # the next frame starts the next message
            start = pos
        else:
            for cut in range(pos, unit_end, limit):  # over the limit on its own
                yield bytes(view[cut : min(cut + limit, unit_end)])
            start = pos = unit_end
    if start < end:
        yield bytes(view[start:])


class FrameDecoder:
    """Reassembles frames from arbitrary chunks of a byte stream."""

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self._max = max_frame_size
        self._failed = False

    def receive_data(self, data: bytes) -> None:
        """Append received bytes; call ``next_frame`` until it returns ``None``."""
        self._buf += data

    def next_frame(self) -> bytes | None:
        """Return the next whole frame's payload, or ``None`` if more input is needed.

        Raises:
            FramingError: the length prefix exceeds the maximum. The decoder stays failed.
        """
        if self._failed:
            raise FramingError(Reason.FRAME_TOO_LARGE, "decoder already failed")
        if len(self._buf) < HEADER_SIZE:
            return None
        (length,) = _LEN.unpack_from(self._buf)
        if length > self._max:
            self._failed = True
            raise FramingError(Reason.FRAME_TOO_LARGE, f"length prefix {length} > {self._max}")
        end = HEADER_SIZE + length
        if len(self._buf) < end:
            return None
        payload = bytes(self._buf[HEADER_SIZE:end])
        del self._buf[:end]
        return payload

    def frames(self, data: bytes = b"") -> list[bytes]:
        """Feed ``data`` and return every frame that is now complete."""
        self.receive_data(data)
        out: list[bytes] = []
        while (frame := self.next_frame()) is not None:
            out.append(frame)
        return out

    @property
    def max_frame_size(self) -> int:
        """The largest payload accepted; a connection raises it once the peer is trusted."""
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        self._max = min(value, MAX_FRAME_SIZE)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf)
