"""pcap and pcapng captures of the LAN down to the CarHub byte streams inside them.

Theory of operation. ``dpkt`` reads the file (pcap or pcapng, as ``tcpdump`` and
``dumpcap`` write them) and the link, IP and TCP headers: it is small, pure Python, parses
bytes without touching the network, and reads both file formats (scapy would do too, but
is far larger and slower to import). TCP is reassembled here, per direction, in sequence
order: retransmitted bytes are dropped, early segments wait for the gap to fill.

Each TCP connection is one CarHub link: its client (who sends the HTTP ``GET`` upgrade) is
the phone, its server the car. After the two HTTP headers both directions carry RFC 6455
WebSocket frames, parsed here too: a frame is a 2-byte header, an extended length, a mask
key on client frames and the payload (§5.2), simple enough to read directly, and a reader of
captures must start anywhere and accept what a live endpoint refuses (the ``websockets``
library's sans-I/O protocol validates the handshake as one end of it would, and
``protocol/`` imports no I/O library). Binary message payloads are the CarHub stream (§2:
whole frames per message, but a reader concatenates anyway); control and text frames are
skipped. The project's endpoints turn permessage-deflate off; a compressed frame is refused.
"""

from __future__ import annotations

import io
import ipaddress
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dpkt

from protocol.capture.conversation import Chunk
from protocol.capture.errors import CaptureError

__all__ = ["PCAPNG_MAGIC", "PCAP_MAGICS", "TcpLink", "WebSocketStreams", "read_pcap"]

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
_SEQ = 1 << 32
# A buffered gap of more than this per direction is a capture that lost packets: give up.
_MAX_PENDING = 64 << 20
# An HTTP upgrade header is a few hundred bytes: a "GET " that does not end in this many is
# not a WebSocket upgrade, and searching an ever longer buffer for its end would be O(n^2).
_MAX_HEADER = 64 << 10
_WS_BINARY, _WS_CONT = 0x2, 0x0
_MAX_WS_PAYLOAD = 1 << 31


@dataclass(frozen=True)
class TcpLink:
    """One TCP connection: phone (client) and car (server) endpoints, and which on a reused
    port pair."""

    client: str
    server: str
    generation: int

    def __str__(self) -> str:
        return f"lan {self.client} -> {self.server}"


def read_pcap(data: bytes) -> Iterator[tuple[float, bytes, bytes, int, int, dpkt.tcp.TCP]]:
    """Yield ``(time, src, dst, sport, dport, tcp)`` for each TCP segment of a capture.

    Raises:
        CaptureError: not pcap/pcapng, an unsupported link type, or a cut-short file
            (raised when the reader reaches it).
    """
    try:
        reader: object
        if data.startswith(PCAPNG_MAGIC):
            reader = dpkt.pcapng.Reader(_Exact(data))
        else:
            reader = dpkt.pcap.Reader(_Exact(data))
        decode_link = _link_decoder(reader.datalink())  # type: ignore[attr-defined]
        for stamp, frame in reader:  # type: ignore[attr-defined]
            ip = decode_link(frame)
            tcp = getattr(ip, "data", None)
            if isinstance(tcp, dpkt.tcp.TCP):
                yield float(stamp), ip.src, ip.dst, tcp.sport, tcp.dport, tcp
    except CaptureError:
        raise
    except (dpkt.Error, ValueError, struct.error) as exc:
        raise CaptureError(f"bad or truncated pcap: {exc or type(exc).__name__}") from exc


class _Exact(io.BytesIO):
    """A file whose short read is an error: dpkt would take a cut-off record as the end."""

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if size is not None and size >= 0 and 0 < len(data) < size:
            raise CaptureError("the capture is cut short inside a record (truncated file)")
        return data


def _link_decoder(linktype: int) -> Callable[[bytes], Any]:
    """Return frame bytes -> IP packet (or None) for ``linktype``."""

    def ethernet(frame: bytes) -> Any:
        return dpkt.ethernet.Ethernet(frame).data

    def cooked(frame: bytes) -> Any:
        return dpkt.sll.SLL(frame).data

    def cooked2(frame: bytes) -> Any:
        return dpkt.sll2.SLL2(frame).data

    def loopback(frame: bytes) -> Any:
        return dpkt.loopback.Loopback(frame).data

    def raw(frame: bytes) -> Any:
        return dpkt.ip6.IP6(frame) if frame[:1] and frame[0] >> 4 == 6 else dpkt.ip.IP(frame)

    decoders = {1: ethernet, 113: cooked, 276: cooked2, 0: loopback, 108: loopback,
                101: raw, 228: raw, 229: raw, 12: raw, 14: raw}  # fmt: skip
    if linktype not in decoders:
        raise CaptureError(f"pcap link type {linktype} is not supported (Ethernet, SLL, raw IP)")
    return decoders[linktype]


def _endpoint(addr: bytes, port: int) -> str:
    host = ipaddress.ip_address(addr)
    return f"[{host}]:{port}" if host.version == 6 else f"{host}:{port}"


@dataclass
class _Flow:
    """One direction of a TCP connection: reassembly, then HTTP header, then WebSocket."""

    link: TcpLink
    next_seq: int | None = None  # the sequence number of the next byte to deliver
    pending: dict[int, bytes] = field(default_factory=dict)  # early segments by seq
    pending_bytes: int = 0  # the bytes in ``pending``
    buffer: bytearray = field(default_factory=bytearray)  # delivered, not yet parsed
    in_header: bool = True  # before the end of the HTTP request or response
    to_car: bool | None = None  # known from the header or the masking of frames
    broken: str = ""

    def deliver(self, seq: int, data: bytes) -> None:
        """Take one segment's payload; keep what comes in order in ``buffer``.

        A loop, not recursion: a lost segment retransmitted after thousands of later ones
        must not exhaust the stack; and the buffered bytes are counted as they come, so
        checking the bound costs O(1) per segment.
        """
        if self.next_seq is None:
            self.next_seq = seq
        while True:
            offset = (seq - self.next_seq) % _SEQ
            if offset >= _SEQ // 2:  # starts before next_seq: a retransmission, maybe longer
                data, seq = data[_SEQ - offset :], self.next_seq
                offset = 0
            if offset and data:
                self._hold(seq, data)
                return
            if data:
                self.buffer += data
                self.next_seq = (seq + len(data)) % _SEQ
            held = self.pending.pop(self.next_seq, None)
            if held is None:
                return
            self.pending_bytes -= len(held)
            seq, data = self.next_seq, held

    def _hold(self, seq: int, data: bytes) -> None:
        """Keep an early segment (the longer of two at one seq) until the gap fills."""
        old = self.pending.get(seq, b"")
        if len(data) <= len(old):
            return
        self.pending[seq] = data
        self.pending_bytes += len(data) - len(old)
        if self.pending_bytes > _MAX_PENDING:
            self.broken = "the capture lost TCP segments"


class WebSocketStreams:
    """TCP segments in, the CarHub stream chunks of every WebSocket connection out."""

    def __init__(self) -> None:
        self._flows: dict[tuple[str, str], _Flow] = {}
        self._generation: dict[frozenset[str], int] = {}

    def feed(self, time: float, src: bytes, dst: bytes, sport: int, dport: int,
             tcp: dpkt.tcp.TCP) -> list[Chunk]:  # fmt: skip
        """Take one TCP segment; return the CarHub bytes it completed.

        Raises:
            CaptureError: a compressed (permessage-deflate) WebSocket frame.
        """
        a, b = _endpoint(src, sport), _endpoint(dst, dport)
        syn, ack = bool(tcp.flags & dpkt.tcp.TH_SYN), bool(tcp.flags & dpkt.tcp.TH_ACK)
        flow = self._flow(a, b, new=syn and not ack)
        if syn:
            flow.next_seq, flow.pending = (tcp.seq + 1) % _SEQ, {}
            return []
        if not tcp.data or flow.broken:
            return []
        flow.deliver(tcp.seq, bytes(tcp.data))
        return list(self._parse(time, flow))

    def _flow(self, a: str, b: str, *, new: bool) -> _Flow:
        """The flow a -> b; a SYN from a client starts a new connection on the pair."""
        pair = frozenset((a, b))
        if new or (a, b) not in self._flows:
            gen = self._generation[pair] = self._generation.get(pair, 0) + int(new)
            # The side that sent the SYN is the client; without one, guess from the header.
            link = TcpLink(a, b, gen) if new or (b, a) not in self._flows else (
                self._flows[(b, a)].link)  # fmt: skip
            self._flows[(a, b)] = _Flow(link)
            if new:
                self._flows[(b, a)] = _Flow(link)
        return self._flows[(a, b)]

    def _parse(self, time: float, flow: _Flow) -> Iterator[Chunk]:
        buf = flow.buffer
        if flow.in_header:
            if len(buf) < 4:
                return
            if bytes(buf[:4]) not in (b"GET ", b"HTTP"):
                flow.in_header = False  # started mid-connection: frames already
            else:
                end = buf.find(b"\r\n\r\n", 0, _MAX_HEADER)
                if end < 0:
                    if len(buf) >= _MAX_HEADER:
                        flow.broken = "an HTTP header that never ends"
                        buf.clear()
                    return
                flow.to_car = buf.startswith(b"GET ")
                del buf[: end + 4]
                flow.in_header = False
        while (frame := _ws_frame(buf)) is not None:
            opcode, masked, payload = frame
            if flow.to_car is None:
                flow.to_car = masked  # only a client masks its frames
            if opcode in (_WS_BINARY, _WS_CONT) and payload:
                yield Chunk(time, flow.link, flow.to_car, payload)


def _ws_frame(buf: bytearray) -> tuple[int, bool, bytes] | None:
    """Cut one WebSocket frame off ``buf``: (opcode, masked, unmasked payload), or None.

    Raises:
        CaptureError: a compressed frame (RSV1), or a length no endpoint sends.
    """
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    length, pos = b1 & 0x7F, 2
    if length == 126:
        if len(buf) < 4:
            return None
        length, pos = int.from_bytes(buf[2:4], "big"), 4
    elif length == 127:
        if len(buf) < 10:
            return None
        length, pos = int.from_bytes(buf[2:10], "big"), 10
    if b0 & 0x40:
        raise CaptureError("a compressed WebSocket frame (permessage-deflate): not supported")
    if length > _MAX_WS_PAYLOAD:
        raise CaptureError(f"a WebSocket frame of {length} bytes: not a CarHub connection")
    masked = bool(b1 & 0x80)
    end = pos + (4 if masked else 0) + length
    if len(buf) < end:
        return None
    payload = bytes(buf[end - length : end])
    if masked:
        key = bytes(buf[pos : pos + 4])
        payload = _unmask(payload, key)
    del buf[:end]
    return b0 & 0x0F, masked, payload


def _unmask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte mask (RFC 6455 §5.3), as one big integer."""
    n = len(data)
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")
