"""The OBEX server state machine (the emulated phones' side of PBAP), with SRM off.

It answers CONNECT itself (checking Target, giving Connection Id and Who), ABORT and
DISCONNECT; GET and SETPATH become events the application answers with ``respond_get`` or
``respond``. A body is split into responses that fit the client's maximum packet length:
Continue with Body until the last, which is Success with End of Body.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.errors import LocalProtocolError, Reason
from protocol.obex.packets import (
    MAX_PACKET,
    MIN_PACKET,
    OBEX_VERSION,
    Header,
    HeaderId,
    ObexDecoder,
    ObexError,
    Opcode,
    Packet,
    ResponseCode,
    encode_packet,
)

__all__ = [
    "ClientAborted",
    "ClientConnected",
    "ClientDisconnected",
    "GetRequest",
    "ObexServer",
    "ServerEvent",
    "SetPathRequest",
]

MAX_REQUEST_HEADERS = 64 * 1024  # header bytes of one GET spread over non-final packets


@dataclass(frozen=True)
class ClientConnected:
    """A client connected to our target."""

    max_packet: int
    app_params: bytes


@dataclass(frozen=True)
class GetRequest:
    """A GET to answer with ``respond_get`` or ``respond``."""

    name: str | None
    type: str | None
    app_params: bytes


@dataclass(frozen=True)
class SetPathRequest:
    """A SETPATH to answer with ``respond``: ``name`` None or "" with ``parent`` False is
    the root."""

    name: str | None
    parent: bool
    create: bool


@dataclass(frozen=True)
class ClientAborted:
    """The client aborted the GET under way (already answered Success)."""


@dataclass(frozen=True)
class ClientDisconnected:
    """The client disconnected (already answered Success)."""


ServerEvent = ClientConnected | GetRequest | SetPathRequest | ClientAborted | ClientDisconnected


class _State(enum.Enum):
    IDLE = "idle"
    CONNECTED = "connected"
    ANSWER = "answer"  # a GET or SETPATH waits for the application
    SENDING = "sending"  # a GET body goes out, one response per GET packet
    CLOSED = "closed"


class ObexServer:
    """An OBEX server for one target.

    Args:
        target: the Target a CONNECT must carry (PBAP's 16-byte UUID); also sent as Who.
        max_packet: the longest packet we accept (announced in the CONNECT response).
        connection_id: the Connection Id given to the client.
    """

    def __init__(
        self, target: bytes, *, max_packet: int = MAX_PACKET, connection_id: int = 1
    ) -> None:
        if not MIN_PACKET <= max_packet <= MAX_PACKET:
            raise LocalProtocolError(Reason.STATE, f"max packet {max_packet}")
        self.target = target
        self.max_packet = max_packet
        self.connection_id = connection_id
        self.client_max_packet = MIN_PACKET
        self._state = _State.IDLE
        self._decoder = ObexDecoder()
        self._out = bytearray()
        self._headers: list[Header] = []
        self._header_bytes = 0
        self._body = b""
        self._params = b""

    @property
    def state(self) -> str:
        """``idle``, ``connected``, ``answer``, ``sending`` or ``closed``."""
        return self._state.value

    def data_to_send(self) -> bytes:
        """The responses queued so far."""
        out, self._out = bytes(self._out), bytearray()
        return out

    def _send(self, code: int, headers: tuple[Header, ...] = (), **fields: int) -> None:
        self._out += encode_packet(Packet(code, headers, **fields))

    def receive_data(self, data: bytes) -> list[ServerEvent]:
        """Feed bytes from the client; responses it needs go to ``data_to_send()``.

        Returns:
            The events they complete, in order.

        Raises:
            ObexError: malformed packets, or a request while another waits for its answer;
                the server is then closed.
        """
        events: list[ServerEvent] = []
        try:
            for packet in self._decoder.feed(data):
                events += self._on_request(packet)
        except ObexError:
            self._state = _State.CLOSED
            raise
        return events

    def _on_request(self, p: Packet) -> list[ServerEvent]:
        op, state = p.code, self._state
        if state in (_State.ANSWER, _State.CLOSED):
            raise ObexError(f"request 0x{op:02x} while {state.value}", Reason.UNEXPECTED_MESSAGE)
        if op == Opcode.CONNECT:
            return self._on_connect(p)
        if state is _State.IDLE:
            self._send(ResponseCode.BAD_REQUEST)  # nothing but CONNECT before CONNECT
            return []
        if p.connection_id is not None and p.connection_id != self.connection_id:
            self._send(ResponseCode.SERVICE_UNAVAILABLE)
            return []
        if op == Opcode.ABORT:
            was_sending, self._state = state is _State.SENDING, _State.CONNECTED
            self._headers, self._header_bytes, self._body = [], 0, b""
            self._send(ResponseCode.SUCCESS)
            return [ClientAborted()] if was_sending else []
        if op == Opcode.DISCONNECT:
            self._state = _State.CLOSED
            self._send(ResponseCode.SUCCESS)
            return [ClientDisconnected()]
        if state is _State.SENDING:
            if op != Opcode.GET_FINAL:
                raise ObexError(
                    f"request 0x{op:02x} in the middle of a GET", Reason.UNEXPECTED_MESSAGE
                )
            self._send_next()
            return []
        if op in (Opcode.GET, Opcode.GET_FINAL):
            return self._on_get(p)
        if op == Opcode.SETPATH:
            self._state = _State.ANSWER
            return [SetPathRequest(p.name, bool(p.flags & 0x01), not p.flags & 0x02)]
        self._send(
            ResponseCode.NOT_IMPLEMENTED
            if op in (Opcode.PUT, Opcode.PUT_FINAL)
            else ResponseCode.BAD_REQUEST
        )
        return []

    def _on_connect(self, p: Packet) -> list[ServerEvent]:
        if self._state is not _State.IDLE:
            raise ObexError("CONNECT on a connected session", Reason.UNEXPECTED_MESSAGE)
        fields = {"version": OBEX_VERSION, "flags": 0, "max_packet": self.max_packet}
        if p.target != self.target or p.max_packet is None or p.max_packet < MIN_PACKET:
            self._send(ResponseCode.SERVICE_UNAVAILABLE, (), **fields)
            return []
        self.client_max_packet = p.max_packet
        self._decoder.max_packet = self.max_packet
        self._state = _State.CONNECTED
        headers: tuple[Header, ...] = (
            (HeaderId.CONNECTION_ID, self.connection_id),
            (HeaderId.WHO, self.target),
        )
        self._send(ResponseCode.SUCCESS, headers, **fields)
        return [ClientConnected(p.max_packet, p.app_params)]

    def _on_get(self, p: Packet) -> list[ServerEvent]:
        self._headers += [(h, v) for h, v in p.headers if h != HeaderId.CONNECTION_ID]
        self._header_bytes += len(encode_packet(p))
        if self._header_bytes > MAX_REQUEST_HEADERS:
            raise ObexError("GET request headers over 64 KiB", Reason.FRAME_TOO_LARGE)
        if not p.final:  # the request goes on in the next packet
            self._send(ResponseCode.CONTINUE)
            return []
        req = Packet(p.code, tuple(self._headers))
        self._headers, self._header_bytes = [], 0
        self._state = _State.ANSWER
        return [GetRequest(req.name, req.type, req.app_params)]

    def respond(self, code: int) -> None:
        """Answer the waiting GET or SETPATH with ``code`` (Success or an error).

        Raises:
            LocalProtocolError: nothing waits for an answer, or ``code`` is not final.
        """
        if self._state is not _State.ANSWER or not code & 0x80 or code == ResponseCode.CONTINUE:
            raise LocalProtocolError(
                Reason.STATE, f"cannot respond 0x{code:02x} while {self._state.value}"
            )
        self._state = _State.CONNECTED
        self._send(code)

    def respond_get(self, body: bytes, app_params: bytes = b"") -> None:
        """Answer the waiting GET with ``body``; the first response carries ``app_params``.

        Raises:
            LocalProtocolError: no GET waits, or ``app_params`` leave no room for a body.
        """
        if self._state is not _State.ANSWER:
            raise LocalProtocolError(Reason.STATE, f"no GET to answer while {self._state.value}")
        if len(app_params) + 12 > self.client_max_packet:
            raise LocalProtocolError(Reason.FRAME_TOO_LARGE, "app params do not fit a response")
        self._body, self._params = body, app_params
        self._state = _State.SENDING
        self._send_next()

    def _send_next(self) -> None:
        """One response: as much body as fits; the last is Success with End of Body."""
        headers: list[Header] = [(HeaderId.APP_PARAMS, self._params)] if self._params else []
        room = self.client_max_packet - 3 - (3 + len(self._params) if self._params else 0) - 3
        self._params = b""
        chunk, self._body = self._body[:room], self._body[room:]
        if self._body:
            self._send(ResponseCode.CONTINUE, (*headers, (HeaderId.BODY, chunk)))
            return
        self._state = _State.CONNECTED
        self._send(ResponseCode.SUCCESS, (*headers, (HeaderId.END_OF_BODY, chunk)))
