"""A capture's bytes in, its CarHub messages out: the whole of ``carhub-capture decode``.

The format is told by the file's first bytes (btsnoop, pcap, pcapng). Each link of the
capture gets a ``Conversation``; the messages of all links come out in time order, with
times in seconds since the capture's first packet. A capture that holds every side of a
BLE link (the radio's) shows each message twice, once per host: only the car's view is
kept then (``protocol.capture.btsnoop``).

A file cut short is common (a capture of a process that was killed): what was decoded
before the cut is returned with the error, so a user still sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from protocol.capture.conversation import Chunk, Conversation, Decoded
from protocol.capture.errors import CaptureError
from protocol.capture.keylog import KeyLog

__all__ = ["MAX_INFLATED", "Decoding", "decode_capture"]

# Each session message inflates to at most 8 MiB (``AppCodec``), but a version-2 stream
# makes that from a few KiB: a capture (with its key log) of many such messages would take
# thousands of times its size in memory. Decoding stops, with an error, past this total.
MAX_INFLATED = 1 << 30


@dataclass
class Decoding:
    """What a capture held: its messages in time order, and why reading stopped early."""

    messages: list[Decoded] = field(default_factory=list)
    error: CaptureError | None = None
    format: str = ""  # "btsnoop", "pcap" or "pcapng"


def decode_capture(data: bytes, keylog: KeyLog | None = None) -> Decoding:
    """Decode every CarHub message of a btsnoop, pcap or pcapng capture.

    Args:
        data: the capture file's bytes.
        keylog: the key log, to decrypt the sessions it names.

    Returns:
        The messages, and the error that stopped the reader early (a truncated file), if
        any. A file that is no capture at all gives no messages and that error.
    """
    result = Decoding()
    chunks: list[Chunk] = []
    first: list[float] = []  # the time of the capture's first packet, once read
    try:
        result.format, source = _chunks(data, first)
        for chunk in source:
            chunks.append(chunk)
    except CaptureError as exc:
        result.error = exc
    result.messages, inflated = _messages(chunks, keylog, first[0] if first else 0.0)
    if inflated is not None:
        result.error = inflated
    return result


def _chunks(data: bytes, first: list[float]) -> tuple[str, Iterable[Chunk]]:
    """Name the format and return its chunk source.

    Raises:
        CaptureError: no known format.
    """
    from protocol.capture import btsnoop, pcap

    if data.startswith(btsnoop.BTSNOOP_MAGIC):
        return "btsnoop", _btsnoop_chunks(data, first)
    if data.startswith(pcap.PCAPNG_MAGIC) or data[:4] in pcap.PCAP_MAGICS:
        name = "pcapng" if data.startswith(pcap.PCAPNG_MAGIC) else "pcap"
        return name, _pcap_chunks(data, first)
    raise CaptureError("not a capture: expected a btsnoop, pcap or pcapng file")


def _btsnoop_chunks(data: bytes, first: list[float]) -> Iterable[Chunk]:
    from protocol.capture.btsnoop import AttStreams, read_btsnoop

    streams = AttStreams()
    for record in read_btsnoop(data):
        first[:] = first or [record.time]
        yield from streams.feed(record)


def _pcap_chunks(data: bytes, first: list[float]) -> Iterable[Chunk]:
    from protocol.capture.pcap import WebSocketStreams, read_pcap

    streams = WebSocketStreams()
    for segment in read_pcap(data):
        first[:] = first or [segment[0]]
        yield from streams.feed(*segment)


def _messages(
    chunks: list[Chunk], keylog: KeyLog | None, start: float
) -> tuple[list[Decoded], CaptureError | None]:
    """Run each link's conversation; keep the car's views if any; sort; relative times.

    Returns:
        The messages, and the error that stopped decoding past ``MAX_INFLATED``, if any.
    """
    if any(getattr(c.link, "view", "car") == "car" for c in chunks):
        chunks = [c for c in chunks if getattr(c.link, "view", "car") == "car"]
    conversations: dict[object, Conversation] = {}
    out: list[Decoded] = []
    inflated, error = 0, None
    for chunk in chunks:
        conv = conversations.get(chunk.link)
        if conv is None:
            conv = conversations[chunk.link] = Conversation(str(chunk.link), keylog)
        before = conv.inflated
        out.extend(conv.feed(chunk))
        inflated += conv.inflated - before
        if inflated > MAX_INFLATED:
            error = CaptureError(f"the session messages inflate past {MAX_INFLATED:,} bytes")
            break
    out.sort(key=lambda m: m.time)  # stable: each link's order is kept
    return [_relative(m, start) for m in out], error


def _relative(msg: Decoded, start: float) -> Decoded:
    return Decoded(round(msg.time - start, 6), msg.link, msg.direction, msg.message,
                   msg.fields, msg.counter)  # fmt: skip
