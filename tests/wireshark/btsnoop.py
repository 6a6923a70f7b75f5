"""Write small btsnoop files by hand: ATT writes and notifications on CarHub's handles.

The dissector's tests feed it chunkings and malformed frames no real peer sends; tshark
reads them with ``-d btatt.handle==0x12,carhub`` (no GATT discovery in these files).
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["CHANNEL_IN", "CHANNEL_OUT", "NOTIFICATION", "WRITE_COMMAND", "write_btsnoop"]

WRITE_COMMAND, NOTIFICATION = 0x52, 0x1B
CHANNEL_IN, CHANNEL_OUT = 0x0012, 0x0014
_EPOCH_US = 0x00DCDDB30F2F8000  # btsnoop counts microseconds from year 0
_H4 = 1002  # datalink: HCI UART (H4)


def _acl(opcode: int, handle: int, value: bytes) -> bytes:
    att = bytes((opcode,)) + struct.pack("<H", handle) + value
    l2cap = struct.pack("<HH", len(att), 0x0004) + att
    return b"\x02" + struct.pack("<HH", 0x2001, len(l2cap)) + l2cap  # handle 1, first packet


def write_btsnoop(path: Path, pdus: list[tuple[int, bytes]]) -> Path:
    """Write ``(opcode, value)`` ATT PDUs on connection handle 1 as a btsnoop file.

    Args:
        path: the file to write.
        pdus: write commands go to channel_in, notifications come from channel_out.

    Returns:
        ``path``.
    """
    out = [b"btsnoop\0" + struct.pack(">II", 1, _H4)]
    for i, (opcode, value) in enumerate(pdus):
        handle = CHANNEL_IN if opcode == WRITE_COMMAND else CHANNEL_OUT
        pkt = _acl(opcode, handle, value)
        flags = 0 if opcode == WRITE_COMMAND else 1  # bit 0: received by this host
        out.append(struct.pack(">IIIIq", len(pkt), len(pkt), flags, 0, _EPOCH_US + i * 1000))
        out.append(pkt)
    path.write_bytes(b"".join(out))
    return path
