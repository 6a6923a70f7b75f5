"""btsnoop files down to the CarHub byte streams inside them.

Theory of operation. A btsnoop file (RFC 1761 style, as Bumble, Android and ``carhub-radio``
write it) is a 16-byte header, then records of ``orig_len, incl_len, flags, drops`` (4
bytes each, big-endian) and a timestamp (8 bytes, microseconds since year 0), then the
HCI packet. Flags bit 0 is the direction (0 host -> controller, 1 controller -> host).

HCI ACL packets carry L2CAP, whose PDUs may be fragmented over several ACL packets (a
"start" then "continuation" packets on the same handle); ATT is the L2CAP channel 0x0004.
CarHub's stream (PROTOCOL.md §2) rides on two characteristics: ATT Write Commands (or
Requests) to ``channel_in`` are phone -> car, Handle Value Notifications (or Indications) on
``channel_out`` are car -> phone. Their handles come from the GATT discovery in the
capture (the Read By Type responses that declare characteristics).

A capture may hold one host's side (the car's or the phone's) or every controller's (the
radio's, where each PDU appears twice: sent by one host, received by the other). So each
connection is read from one host's point of view: a PDU the server sent or received is
the *car's view*, one the client sent or received the *phone's view*, and each view of a
connection is its own ``Link``. ``decode`` keeps the car's views when a capture has any.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from protocol.capture.conversation import Chunk
from protocol.capture.errors import CaptureError
from protocol.gatt import CHANNEL_IN_UUID, CHANNEL_OUT_UUID

__all__ = ["BTSNOOP_MAGIC", "AttStreams", "HciRecord", "LinkId", "read_btsnoop"]

BTSNOOP_MAGIC = b"btsnoop\x00"
_HEADER = struct.Struct(">8sII")
_RECORD = struct.Struct(">IIIIq")
# Microseconds from year 0 (the btsnoop epoch) to 1970-01-01.
_EPOCH_DELTA_US = 0x00DCDDB30F2F8000
_H1, _H4 = 1001, 1002  # HCI without / with the UART packet-type byte
_CMD, _ACL, _EVT = 0x01, 0x02, 0x04
# A record longer than this is garbage, not HCI (an ACL packet is at most 64 KiB).
_MAX_RECORD = 1 << 17
_ATT_CID = 0x0004
_WRITE_REQ, _WRITE_CMD, _NOTIFY, _INDICATE, _READ_BY_TYPE_RSP = 0x12, 0x52, 0x1B, 0x1D, 0x09
_LE_META, _LE_CONN_COMPLETE, _LE_ENH_CONN_COMPLETE = 0x3E, 0x01, 0x0A


@dataclass(frozen=True)
class HciRecord:
    """One HCI packet of a btsnoop file."""

    time: float  # Unix time, seconds
    received: bool  # controller -> host
    packet: bytes  # with its H4 packet-type byte


@dataclass(frozen=True)
class LinkId:
    """One view of one LE connection: its handle, whose host saw it, and which connection
    on that handle (handles are reused after a disconnection)."""

    handle: int
    view: str  # "car" (the GATT server's host) or "phone" (the client's)
    generation: int

    def __str__(self) -> str:
        return f"ble 0x{self.handle:04x} ({self.view}'s view)"


def read_btsnoop(data: bytes) -> Iterator[HciRecord]:
    """Yield the HCI packets of a btsnoop file.

    Raises:
        CaptureError: not btsnoop version 1 of H1/H4 packets, or a record is cut short
            (raised when the reader reaches it, after the records before it).
    """
    if len(data) < _HEADER.size or not data.startswith(BTSNOOP_MAGIC):
        raise CaptureError("not a btsnoop file (no btsnoop header)")
    _, version, datalink = _HEADER.unpack_from(data)
    if version != 1 or datalink not in (_H1, _H4):
        raise CaptureError(f"btsnoop version {version}, link type {datalink}: only v1 H1/H4")
    pos, number = _HEADER.size, 0
    while pos < len(data):
        number += 1
        if len(data) - pos < _RECORD.size:
            raise CaptureError(f"btsnoop record {number} is cut short (truncated file)")
        _, incl, flags, _, stamp = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        if incl > _MAX_RECORD or len(data) - pos < incl:
            raise CaptureError(f"btsnoop record {number} is cut short or corrupt (truncated file?)")
        packet = data[pos : pos + incl]
        pos += incl
        received = bool(flags & 1)
        if datalink == _H1:  # no type byte: flags bit 1 tells command/event from data
            kind = (_EVT if received else _CMD) if flags & 2 else _ACL
            packet = bytes((kind,)) + packet
        yield HciRecord((stamp - _EPOCH_DELTA_US) / 1e6, received, bytes(packet))


@dataclass
class _View:
    """What one host's view of a connection has learnt: its characteristics' handles."""

    uuids: dict[int, str] = field(default_factory=dict)  # value handle -> UUID

    def carries(self, handle: int, uuid: str) -> bool:
        # No discovery in the capture (it started late, or the client cached handles): take
        # every write/notification, and let the frame decoder make what it can of them.
        return self.uuids.get(handle) == uuid if self.uuids else True


class AttStreams:
    """HCI packets in, the CarHub stream chunks of every link out."""

    def __init__(self) -> None:
        self._l2cap: dict[tuple[int, bool], bytearray] = {}  # (handle, received) -> PDU so far
        self._generation: dict[int, int] = {}
        self._views: dict[LinkId, _View] = {}

    def feed(self, record: HciRecord) -> list[Chunk]:
        """Take one HCI packet; return the CarHub bytes it completed (usually 0 or 1)."""
        packet = record.packet
        if len(packet) >= 6 and packet[0] == _EVT:
            self._event(packet)
        if len(packet) < 5 or packet[0] != _ACL:
            return []
        (head, length) = struct.unpack_from("<HH", packet, 1)
        handle, start = head & 0x0FFF, (head >> 12) & 0x3 != 0x1
        key = (handle, record.received)
        if start:
            self._l2cap[key] = bytearray(packet[5 : 5 + length])
        elif key in self._l2cap:
            self._l2cap[key] += packet[5 : 5 + length]
        else:
            return []  # a continuation of a PDU the capture began after
        pdu = self._l2cap[key]
        if len(pdu) < 4 or len(pdu) < 4 + int.from_bytes(pdu[:2], "little"):
            return []
        del self._l2cap[key]
        size, cid = struct.unpack_from("<HH", pdu)
        if cid != _ATT_CID or size == 0:
            return []
        return self._att(record, handle, bytes(pdu[4 : 4 + size]))

    def _event(self, packet: bytes) -> None:
        """A new LE connection on a handle starts new links (the handle may be reused)."""
        complete = (_LE_CONN_COMPLETE, _LE_ENH_CONN_COMPLETE)
        # packet[4] is the status: only a successful connection makes a new link.
        if packet[1] == _LE_META and packet[3] in complete and len(packet) >= 7 and not packet[4]:
            handle = int.from_bytes(packet[5:7], "little") & 0x0FFF
            self._generation[handle] = self._generation.get(handle, 0) + 1
            for key in [k for k in self._l2cap if k[0] == handle]:
                del self._l2cap[key]

    def _link(self, handle: int, view: str) -> tuple[LinkId, _View]:
        link = LinkId(handle, view, self._generation.get(handle, 0))
        return link, self._views.setdefault(link, _View())

    def _att(self, record: HciRecord, handle: int, pdu: bytes) -> list[Chunk]:
        """Dispatch one ATT PDU: learn handles, or pass on a CarHub write/notification."""
        op = pdu[0]
        from_server = op in (_NOTIFY, _INDICATE, _READ_BY_TYPE_RSP)
        # The server's host sends what the server sends and receives what the client sends.
        view = "car" if from_server != record.received else "phone"
        link, seen = self._link(handle, view)
        if op == _READ_BY_TYPE_RSP:
            seen.uuids.update(_declarations(pdu))
            return []
        if op not in (_WRITE_CMD, _WRITE_REQ, _NOTIFY, _INDICATE) or len(pdu) < 3:
            return []
        value_handle = int.from_bytes(pdu[1:3], "little")
        uuid = CHANNEL_OUT_UUID if from_server else CHANNEL_IN_UUID
        if not seen.carries(value_handle, uuid) or len(pdu) == 3:
            return []
        return [Chunk(record.time, link, not from_server, pdu[3:])]


def _declarations(pdu: bytes) -> dict[int, str]:
    """Value handle -> UUID of the characteristic declarations in a Read By Type response."""
    out: dict[int, str] = {}
    if len(pdu) < 2 or pdu[1] not in (7, 21):
        return out  # not characteristic declarations (16- or 128-bit UUIDs)
    size = pdu[1]
    for pos in range(2, len(pdu) - size + 1, size):
        entry = pdu[pos : pos + size]
        decl, value = int.from_bytes(entry[0:2], "little"), int.from_bytes(entry[3:5], "little")
        if value != decl + 1:
            continue  # a value handle follows its declaration: not a declaration
        out[value] = _uuid(entry[5:][::-1])
    return out


def _uuid(big_endian: bytes) -> str:
    """The text form of a 16- or 128-bit UUID (16-bit on the Bluetooth base UUID)."""
    if len(big_endian) == 2:
        big_endian = b"\x00\x00" + big_endian + bytes.fromhex("00001000800000805f9b34fb")
    h = big_endian.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
