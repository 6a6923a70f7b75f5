"""In-memory CarHub traffic and hand-built capture files of it, for the decoder's unit tests.

``recorded_pairing`` joins a real ``PhoneConnection`` and ``CarConnection`` in memory (as
tests/protocol/test_connection.py does), pairs them, runs a session with two large
``NowPlaying`` messages (so the version-2 zstd stream continues across frames) and records
every byte each side sent. ``btsnoop_of`` and ``pcap_of`` wrap those bytes the way a BLE
host and a LAN capture would: ATT writes/notifications over fragmented L2CAP, and WebSocket
frames in TCP segments.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import dpkt

from protocol.admission import PairingAdmission
from protocol.connection import (
    CarConnection,
    PairingCode,
    PhoneConnection,
    PinRequested,
    SessionEstablished,
    State,
)
from protocol.gatt import CHANNEL_IN_UUID, CHANNEL_OUT_UUID
from protocol.identity import Identity
from protocol.media import NowPlaying
from protocol.messages import Ping
from protocol.session import SessionSecrets

BTSNOOP_EPOCH_US = 0x00DCDDB30F2F8000
IN_HANDLE, OUT_HANDLE, CCCD_HANDLE = 0x0010, 0x0012, 0x0013
T0 = 1_700_000_000.0


@dataclass
class Recording:
    """What crossed the wire, in order: (time, to_car, bytes), and the session's keys."""

    chunks: list[tuple[float, bool, bytes]] = field(default_factory=list)
    secrets: SessionSecrets | None = None


def now_playing(title: str) -> NowPlaying:
    return NowPlaying(title, ["An Artist"], "An Album", 180_000, 1_000, 1.0, "playing", b"", "t1")


def recorded_pairing(versions: tuple[int, ...] = (2, 1)) -> Recording:
    """Pair a phone and a car in memory, then send two big NowPlaying and a Ping.

    ``versions`` are the phone's: ``(1,)`` makes a version-1 session (codec 01 frames).
    """
    car = CarConnection(Identity.generate(), "Car", lookup_peer=lambda _: None,
                        admission=PairingAdmission(open_=True))  # fmt: skip
    phone = PhoneConnection(Identity.generate(), "Pixel", versions=versions)
    rec = Recording()
    clock = [T0]

    def pump() -> None:
        for _ in range(30):
            moved = False
            for to_car, src, dst in ((True, phone, car), (False, car, phone)):
                data = src.data_to_send()
                if data and dst.state is not State.CLOSED:
                    clock[0] += 0.001
                    rec.chunks.append((clock[0], to_car, data))
                    dst.receive_data(data, clock[0])
                    moved = True
            for conn in (phone, car):
                while (ev := conn.next_event()) is not None:
                    if isinstance(ev, PairingCode):
                        conn.confirm_pairing(True, clock[0])
                    elif isinstance(ev, PinRequested):
                        car.pin_stored(clock[0])
                    elif isinstance(ev, SessionEstablished) and conn is phone:
                        rec.secrets = ev.secrets
                    moved = True
            if not moved:
                return

    pump()
    assert phone.state is State.ESTABLISHED, phone.state
    phone.send(now_playing("A long title " * 30))
    phone.send(now_playing("A long title, again " * 30))
    phone.send(Ping(nonce=7))
    pump()
    return rec


# -- btsnoop ----------------------------------------------------------------------------
def _record(time: float, received: bool, packet: bytes) -> bytes:
    stamp = int(time * 1e6) + BTSNOOP_EPOCH_US
    flags = int(received) | (0x02 if packet[0] in (0x01, 0x04) else 0)
    return struct.pack(">IIIIq", len(packet), len(packet), flags, 0, stamp) + packet


def _acl(handle: int, l2cap: bytes, fragment: int) -> list[bytes]:
    """An L2CAP PDU cut into ACL packets of ``fragment`` bytes: a start, then continuations."""
    out = []
    for i in range(0, len(l2cap), fragment):
        pb = 0x2 if i == 0 else 0x1
        piece = l2cap[i : i + fragment]
        out.append(b"\x02" + struct.pack("<HH", handle | pb << 12, len(piece)) + piece)
    return out


def _att(pdu: bytes) -> bytes:
    return struct.pack("<HH", len(pdu), 0x0004) + pdu


def _declaration(decl: int, props: int, uuid: str) -> bytes:
    return struct.pack("<HBH", decl, props, decl + 1) + bytes.fromhex(uuid.replace("-", ""))[::-1]


def btsnoop_of(rec: Recording, *, view: str = "car", mtu: int = 23, fragment: int = 27,
               handle: int = 0x0040) -> bytes:  # fmt: skip
    """The recording as one host's btsnoop: discovery, CCCD write, then the stream in chunks.

    ``view`` is whose host the capture is of: the car's (it receives the writes and sends
    the notifications) or the phone's (the other way round).
    """
    car = view == "car"
    records = [b"btsnoop\x00" + struct.pack(">II", 1, 1002)]
    conn = bytes((0x04, 0x3E, 0x13, 0x01, 0x00)) + struct.pack("<H", handle) + bytes(16)
    records.append(_record(T0, True, conn))
    decls = _declaration(IN_HANDLE - 1, 0x04, CHANNEL_IN_UUID) + _declaration(
        OUT_HANDLE - 1, 0x10, CHANNEL_OUT_UUID)  # fmt: skip
    rsp = _att(bytes((0x09, 21)) + decls)
    cccd = _att(bytes((0x12,)) + struct.pack("<H", CCCD_HANDLE) + b"\x01\x00")
    for packet in _acl(handle, rsp, fragment):
        records.append(_record(T0, not car, packet))
    for packet in _acl(handle, cccd, fragment):
        records.append(_record(T0, car, packet))
    size = mtu - 3
    for time, to_car, data in rec.chunks:
        op, value_handle = (0x52, IN_HANDLE) if to_car else (0x1B, OUT_HANDLE)
        for i in range(0, len(data), size):
            pdu = _att(bytes((op,)) + struct.pack("<H", value_handle) + data[i : i + size])
            # The car's host receives what the phone writes and sends its notifications.
            received = to_car if car else not to_car
            for packet in _acl(handle, pdu, fragment):
                records.append(_record(time, received, packet))
    return b"".join(records)


# -- pcap -------------------------------------------------------------------------------
def _ws(payload: bytes, masked: bool) -> bytes:
    """One binary WebSocket frame (RFC 6455), masked as a client sends it."""
    n = len(payload)
    head = bytes((0x82,))
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes((bit | n,))
    elif n < 65536:
        head += bytes((bit | 126,)) + struct.pack(">H", n)
    else:
        head += bytes((bit | 127,)) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    key = b"\x11\x22\x33\x44"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def pcap_of(rec: Recording, *, segment: int = 100, reorder: bool = False) -> bytes:
    """The recording as a pcap of one TCP connection carrying the WebSocket session.

    Each side's bytes go in TCP segments of ``segment`` bytes; with ``reorder`` each pair of
    segments is swapped and the first is sent again (a retransmission).
    """
    import io

    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB)
    phone, car = (b"\x7f\x00\x00\x01", 50000), (b"\x7f\x00\x00\x01", 7800)
    seq = {True: 1000, False: 5000}

    def send(time: float, to_car: bool, data: bytes, flags: int = dpkt.tcp.TH_ACK) -> None:
        (src, sport), (dst, dport) = (phone, car) if to_car else (car, phone)
        pieces = [data[i : i + segment] for i in range(0, len(data), segment)] or [b""]
        sent: list[tuple[int, bytes]] = []
        for piece in pieces:
            sent.append((seq[to_car], piece))
            seq[to_car] += len(piece) + (1 if flags & dpkt.tcp.TH_SYN else 0)
        if reorder and len(sent) > 1:
            sent = [sent[1], sent[0], *sent[2:], sent[0]]
        for number, piece in sent:
            tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=number, flags=flags, data=piece)
            ip = dpkt.ip.IP(src=src, dst=dst, p=dpkt.ip.IP_PROTO_TCP, data=tcp)
            ip.len = len(bytes(ip))
            eth = dpkt.ethernet.Ethernet(data=ip, type=dpkt.ethernet.ETH_TYPE_IP)
            writer.writepkt(bytes(eth), ts=time)

    send(T0, True, b"", dpkt.tcp.TH_SYN)
    send(T0, False, b"", dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
    send(T0, True, b"GET / HTTP/1.1\r\nHost: car\r\nUpgrade: websocket\r\n\r\n")
    send(T0, False, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    for time, to_car, data in rec.chunks:
        send(time, to_car, _ws(data, masked=to_car))
    return out.getvalue()
