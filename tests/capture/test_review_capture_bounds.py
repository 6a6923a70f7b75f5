"""The LAN capture reader on hostile or unlucky captures: bounded, and never a traceback."""

from __future__ import annotations

import dpkt

from protocol.capture import pcap
from protocol.capture.pcap import WebSocketStreams

PHONE, CAR = b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x02"


def _segment(seq: int, data: bytes, flags: int = dpkt.tcp.TH_ACK) -> dpkt.tcp.TCP:
    return dpkt.tcp.TCP(sport=50000, dport=7800, seq=seq, flags=flags, data=data)


def _feed(streams: WebSocketStreams, tcp: dpkt.tcp.TCP) -> list[bytes]:
    return [c.data for c in streams.feed(0.0, PHONE, CAR, 50000, 7800, tcp)]


def _ws(payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes((0x82, len(payload))) + payload  # unmasked binary frame


def test_a_long_run_of_early_segments_is_reassembled_without_recursion() -> None:
    # The first data segment is lost and retransmitted after 5000 later ones: a real
    # capture of a lossy link. Every byte must come out, in order (no RecursionError).
    streams = WebSocketStreams()
    _feed(streams, _segment(999, b"", dpkt.tcp.TH_SYN))
    frames = [_ws(bytes([i % 256]) * 3) for i in range(5000)]
    header = b"GET / HTTP/1.1\r\n\r\n"
    seqs, seq = [], 1000 + len(header)
    for frame in frames:
        seqs.append(seq)
        seq += len(frame)
    for s, frame in reversed(list(zip(seqs, frames, strict=True))):
        assert _feed(streams, _segment(s, frame)) == []
    out = _feed(streams, _segment(1000, header))
    assert out == [bytes([i % 256]) * 3 for i in range(5000)]


def test_an_http_header_that_never_ends_is_not_buffered_without_bound() -> None:
    streams = WebSocketStreams()
    _feed(streams, _segment(999, b"", dpkt.tcp.TH_SYN))
    seq = 1000
    for piece in [b"GET / HTTP/1.1\r\n", *([b"X-Pad: " + b"a" * 1000 + b"\r\n"] * 200)]:
        _feed(streams, _segment(seq, piece))
        seq += len(piece)
    # 200 KiB of header and no end: not a WebSocket upgrade; nothing more is kept.
    assert all(len(f.buffer) <= pcap._MAX_HEADER for f in streams._flows.values())
