"""OBEX packets and headers (IrOBEX 1.5 as GOEP and PBAP use it), and a stream decoder.

A packet is ``opcode | length (u16 BE, the whole packet) | [fields] | headers``. CONNECT
requests and their responses carry ``version, flags, max packet length (u16)``; SETPATH
requests carry ``flags, constants``. The top two bits of a header id give its encoding:
0x00 UTF-16BE text with a NUL and a u16 length, 0x40 bytes with a u16 length, 0x80 one byte,
0xC0 four bytes. Every length is checked against what contains it before it is used.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from protocol.errors import LocalProtocolError, MessageError, Reason

__all__ = [
    "MAX_PACKET",
    "MIN_PACKET",
    "OBEX_VERSION",
    "Header",
    "HeaderId",
    "HeaderValue",
    "ObexDecoder",
    "ObexError",
    "Opcode",
    "Packet",
    "ResponseCode",
    "decode_app_params",
    "decode_packet",
    "encode_app_params",
    "encode_packet",
]

OBEX_VERSION = 0x10  # 1.0 in the CONNECT field (IrOBEX 1.5 keeps this value)
MAX_PACKET = 0xFFFF  # the u16 length field's ceiling, and the bound before CONNECT
MIN_PACKET = 255  # IrOBEX: no side may announce a smaller maximum packet length


class Opcode(enum.IntEnum):
    """Request opcodes; the high bit (0x80) is the final bit."""

    CONNECT = 0x80
    DISCONNECT = 0x81
    PUT = 0x02
    PUT_FINAL = 0x82
    GET = 0x03
    GET_FINAL = 0x83
    SETPATH = 0x85
    ABORT = 0xFF


class ResponseCode(enum.IntEnum):
    """Response codes (always with the final bit)."""

    CONTINUE = 0x90
    SUCCESS = 0xA0
    BAD_REQUEST = 0xC0
    UNAUTHORIZED = 0xC1
    FORBIDDEN = 0xC3
    NOT_FOUND = 0xC4
    NOT_ACCEPTABLE = 0xC6
    PRECONDITION_FAILED = 0xCC
    NOT_IMPLEMENTED = 0xD1
    SERVICE_UNAVAILABLE = 0xD3


class HeaderId(enum.IntEnum):
    """The headers GOEP/PBAP use; others that are well-formed are kept as they came."""

    NAME = 0x01
    TYPE = 0x42
    LENGTH = 0xC3
    TARGET = 0x46
    WHO = 0x4A
    BODY = 0x48
    END_OF_BODY = 0x49
    APP_PARAMS = 0x4C
    CONNECTION_ID = 0xCB


HeaderValue = str | bytes | int
Header = tuple[int, HeaderValue]
_UNICODE, _BYTES, _BYTE, _INT = 0x00, 0x40, 0x80, 0xC0


class ObexError(MessageError):
    """Bytes from an OBEX peer that we refuse; the only error the decoders raise.

    Args:
        detail: what was wrong, in one line.
        reason: ``Reason.MALFORMED`` (default), ``FRAME_TOO_LARGE`` or ``UNEXPECTED_MESSAGE``.
    """

    def __init__(self, detail: str, reason: Reason = Reason.MALFORMED) -> None:
        super().__init__(reason, detail)


@dataclass(frozen=True)
class Packet:
    """One OBEX request or response.

    ``version``/``max_packet`` are set only on CONNECT requests and responses, ``constants``
    only on SETPATH requests; ``flags`` belongs to both. Text headers (Name, and Type which
    is ASCII) are ``str``, byte sequences ``bytes``, 1- and 4-byte headers ``int``.
    """

    code: int
    headers: tuple[Header, ...] = ()
    version: int | None = None
    flags: int = 0
    max_packet: int | None = None
    constants: int | None = None

    @property
    def final(self) -> bool:
        """The final bit (always set on responses)."""
        return bool(self.code & 0x80)

    def get(self, hid: int) -> HeaderValue | None:
        """The first header ``hid``, or None."""
        return next((v for h, v in self.headers if h == hid), None)

    def _bytes(self, hid: int) -> bytes | None:
        v = self.get(hid)
        return v if isinstance(v, bytes) else None

    @property
    def name(self) -> str | None:
        """The Name header."""
        v = self.get(HeaderId.NAME)
        return v if isinstance(v, str) else None

    @property
    def type(self) -> str | None:
        """The Type header, without its NUL."""
        v = self.get(HeaderId.TYPE)
        return v if isinstance(v, str) else None

    @property
    def connection_id(self) -> int | None:
        """The Connection Id header."""
        v = self.get(HeaderId.CONNECTION_ID)
        return v if isinstance(v, int) else None

    @property
    def target(self) -> bytes | None:
        """The Target header."""
        return self._bytes(HeaderId.TARGET)

    @property
    def who(self) -> bytes | None:
        """The Who header."""
        return self._bytes(HeaderId.WHO)

    @property
    def app_params(self) -> bytes:
        """Every Application Parameters header, concatenated (TLVs stay TLVs)."""
        return b"".join(
            v for h, v in self.headers if h == HeaderId.APP_PARAMS and isinstance(v, bytes)
        )

    @property
    def body(self) -> bytes:
        """Body and End of Body data, in order."""
        ids = (HeaderId.BODY, HeaderId.END_OF_BODY)
        return b"".join(v for h, v in self.headers if h in ids and isinstance(v, bytes))

    @property
    def end_of_body(self) -> bool:
        """An End of Body header is present."""
        return any(h == HeaderId.END_OF_BODY for h, _ in self.headers)


def _encode_header(hid: int, value: HeaderValue) -> bytes:
    kind = hid & 0xC0
    if not 0 <= hid <= 0xFF:
        raise LocalProtocolError(Reason.MALFORMED, f"header id {hid}")
    if kind == _UNICODE and isinstance(value, str):
        raw = (value + "\0").encode("utf-16-be") if value else b""
    elif kind == _BYTES and hid == HeaderId.TYPE and isinstance(value, str):
        if not value.isascii() or "\0" in value:
            raise LocalProtocolError(Reason.MALFORMED, f"type {value!r} is not plain ASCII")
        raw = value.encode("ascii") + b"\0"
    elif kind == _BYTES and isinstance(value, bytes):
        raw = value
    elif kind in (_BYTE, _INT) and isinstance(value, int) and not isinstance(value, bool):
        size = 1 if kind == _BYTE else 4
        if not 0 <= value < 1 << (8 * size):
            raise LocalProtocolError(Reason.MALFORMED, f"header 0x{hid:02x} value {value}")
        return bytes([hid]) + value.to_bytes(size, "big")
    else:
        raise LocalProtocolError(Reason.MALFORMED, f"header 0x{hid:02x} cannot hold {value!r}")
    if len(raw) + 3 > MAX_PACKET:
        raise LocalProtocolError(Reason.FRAME_TOO_LARGE, f"header 0x{hid:02x} too long")
    return struct.pack(">BH", hid, len(raw) + 3) + raw


def encode_packet(packet: Packet) -> bytes:
    """Serialize a packet.

    Returns:
        The bytes, length field included.

    Raises:
        LocalProtocolError: a header value of the wrong kind, or over 65535 bytes in all.
    """
    head = b""
    if packet.version is not None or packet.max_packet is not None:
        head = struct.pack(">BBH", packet.version or 0, packet.flags, packet.max_packet or 0)
    elif packet.constants is not None:
        head = bytes([packet.flags, packet.constants])
    rest = head + b"".join(_encode_header(h, v) for h, v in packet.headers)
    if len(rest) + 3 > MAX_PACKET:
        raise LocalProtocolError(Reason.FRAME_TOO_LARGE, f"packet of {len(rest) + 3} bytes")
    return struct.pack(">BH", packet.code, len(rest) + 3) + rest


def _decode_header(data: bytes, pos: int) -> tuple[Header, int]:
    hid = data[pos]
    kind = hid & 0xC0
    if kind in (_BYTE, _INT):
        end = pos + (2 if kind == _BYTE else 5)
        if end > len(data):
            raise ObexError(f"header 0x{hid:02x} runs past the packet")
        return (hid, int.from_bytes(data[pos + 1 : end], "big")), end
    if pos + 3 > len(data):
        raise ObexError(f"header 0x{hid:02x} length runs past the packet")
    (length,) = struct.unpack_from(">H", data, pos + 1)
    if length < 3 or pos + length > len(data):
        raise ObexError(f"header 0x{hid:02x} of length {length} does not fit the packet")
    raw = data[pos + 3 : pos + length]
    value: HeaderValue = raw
    if kind == _UNICODE:
        if raw and (len(raw) % 2 or raw[-2:] != b"\0\0"):
            raise ObexError(f"text header 0x{hid:02x} is not NUL-terminated UTF-16")
        try:
            value = raw[:-2].decode("utf-16-be")
        except UnicodeDecodeError:
            raise ObexError(f"text header 0x{hid:02x} is not valid UTF-16") from None
    elif hid == HeaderId.TYPE:
        if not raw.endswith(b"\0") or b"\0" in raw[:-1] or not raw.isascii():
            raise ObexError("type header is not NUL-terminated ASCII")
        value = raw[:-1].decode("ascii")
    return (hid, value), pos + length


def decode_packet(data: bytes, *, connect_fields: bool = False) -> Packet:
    """Parse one whole packet.

    Args:
        data: exactly one packet.
        connect_fields: it is a CONNECT response (only the request they answer says so).

    Returns:
        The packet.

    Raises:
        ObexError: a length that does not match, a field or header that does not fit.
    """
    if len(data) < 3 or struct.unpack_from(">H", data, 1)[0] != len(data):
        raise ObexError("packet length does not match its bytes")
    code, pos = data[0], 3
    version = max_packet = constants = None
    flags = 0
    # A CONNECT error answered by a bare 3-byte response is seen in the field: accept it.
    if code == Opcode.CONNECT or (connect_fields and len(data) > 3):
        if len(data) < 7:
            raise ObexError("CONNECT packet shorter than its fields")
        version, flags, max_packet = struct.unpack_from(">BBH", data, 3)
        pos = 7
    elif code == Opcode.SETPATH:
        if len(data) < 5:
            raise ObexError("SETPATH packet shorter than its fields")
        flags, constants, pos = data[3], data[4], 5
    headers: list[Header] = []
    while pos < len(data):
        header, pos = _decode_header(data, pos)
        headers.append(header)
    return Packet(code, tuple(headers), version, flags, max_packet, constants)


class ObexDecoder:
    """Splits a byte stream into packets, whatever the chunks it arrives in.

    Args:
        max_packet: the longest packet accepted: 65535 before CONNECT, then the maximum
            this side announced. Settable.

    After an ``ObexError`` the stream is lost: every later ``feed`` raises again.
    """

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._buf = bytearray()
        self._connect_response = False
        self._failed = False

    def expect_connect_response(self) -> None:
        """The next packet answers a CONNECT, so it carries version, flags and max length."""
        self._connect_response = True

    def feed(self, data: bytes) -> list[Packet]:
        """Add bytes from the peer.

        Returns:
            Every packet completed by them, in order (the rest waits for more bytes).

        Raises:
            ObexError: a length under 3 or over ``max_packet``, or a malformed packet.
        """
        if self._failed:
            raise ObexError("OBEX stream already failed")
        self._buf += data
        out: list[Packet] = []
        try:
            while len(self._buf) >= 3:
                (length,) = struct.unpack_from(">H", self._buf, 1)
                if length < 3:
                    raise ObexError(f"packet length {length}")
                if length > self.max_packet:
                    raise ObexError(
                        f"packet of {length} bytes over {self.max_packet}", Reason.FRAME_TOO_LARGE
                    )
                if len(self._buf) < length:
                    break
                raw = bytes(self._buf[:length])
                del self._buf[:length]
                out.append(decode_packet(raw, connect_fields=self._connect_response))
                self._connect_response = False
        except ObexError:
            self._failed = True
            self._buf.clear()
            raise
        return out


def encode_app_params(params: list[tuple[int, bytes]]) -> bytes:
    """Application Parameters as tag (u8), length (u8), value triplets.

    Raises:
        LocalProtocolError: a tag or a value length over 255.
    """
    out = bytearray()
    for tag, value in params:
        if not 0 <= tag <= 0xFF or len(value) > 0xFF:
            raise LocalProtocolError(Reason.MALFORMED, f"app parameter {tag} does not fit a TLV")
        out += bytes([tag, len(value)]) + value
    return bytes(out)


def decode_app_params(data: bytes) -> list[tuple[int, bytes]]:
    """Split Application Parameters into (tag, value) pairs, in order.

    Raises:
        ObexError: a triplet that runs past the end.
    """
    out, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data) or pos + 2 + data[pos + 1] > len(data):
            raise ObexError("application parameter runs past its header")
        out.append((data[pos], data[pos + 2 : pos + 2 + data[pos + 1]]))
        pos += 2 + data[pos + 1]
    return out
