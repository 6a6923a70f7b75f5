"""The OBEX client state machine (the car's side of PBAP), with SRM off.

One request is outstanding at a time. The methods that start a request return the bytes to
send; a GET then runs by itself: each Continue response yields its Body chunks and queues
the next GET (final bit) in ``data_to_send()``, until Success with End of Body.

A GET's answer is bounded: its body by ``max_body`` (the client's, or a smaller one given
to ``get``), and its Application Parameters by merging them per tag across the response
packets (the last value of a tag wins; a phone may repeat PhonebookSize in its last
packet) into at most ``MAX_GET_PARAMS`` bytes. A Continue whose body is shorter than its
parameters counts as one with no body, so a response cannot go on forever on 1-byte bodies.
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
    decode_app_params,
    encode_app_params,
    encode_packet,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "MAX_EMPTY_CONTINUES",
    "MAX_GET_PARAMS",
    "Aborted",
    "BodyChunk",
    "ClientEvent",
    "Connected",
    "Disconnected",
    "Failed",
    "GetDone",
    "ObexClient",
    "PathSet",
]

DEFAULT_MAX_BODY = 64 * 1024 * 1024  # one GET's body; 5,000 cards with photos fit
MAX_EMPTY_CONTINUES = 64  # Continue responses in a row with no body: a response that never ends
# One GET's Application Parameters once merged per tag: 256 tags of 255 bytes would just
# exceed it; a PBAP answer carries about 60 bytes.
MAX_GET_PARAMS = 64 * 1024


@dataclass(frozen=True)
class Connected:
    """The CONNECT succeeded."""

    connection_id: int | None
    max_packet: int  # the peer's: no request we send is longer
    app_params: bytes


@dataclass(frozen=True)
class BodyChunk:
    """Part of a GET's body, in order."""

    data: bytes


@dataclass(frozen=True)
class GetDone:
    """The GET ended with Success.

    ``app_params``: the Application Parameters of every response packet as TLVs, merged per
    tag (the last value of a tag wins), in the order each tag first came.
    """

    app_params: bytes


@dataclass(frozen=True)
class Failed:
    """The peer answered ``code`` (an error response) to the request ``op``."""

    code: int
    op: int


@dataclass(frozen=True)
class PathSet:
    """The SETPATH succeeded."""


@dataclass(frozen=True)
class Aborted:
    """The ABORT was answered; the GET is over."""


@dataclass(frozen=True)
class Disconnected:
    """The DISCONNECT was answered; the client is closed."""


ClientEvent = Connected | BodyChunk | GetDone | Failed | PathSet | Aborted | Disconnected


class _State(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    GET = "get"
    SETPATH = "setpath"
    ABORT = "abort"
    DISCONNECT = "disconnect"
    CLOSED = "closed"


class ObexClient:
    """An OBEX client.

    Args:
        max_packet: the longest packet we accept (announced in CONNECT), 255..65535.
        max_body: the most body bytes one GET may bring before it is refused (``get`` may
            give a smaller bound for one GET).
    """

    def __init__(self, *, max_packet: int = MAX_PACKET, max_body: int = DEFAULT_MAX_BODY) -> None:
        if not MIN_PACKET <= max_packet <= MAX_PACKET:
            raise LocalProtocolError(Reason.STATE, f"max packet {max_packet}")
        self.max_packet = max_packet
        self.max_body = max_body
        self.connection_id: int | None = None
        self.peer_max_packet = MIN_PACKET
        self._state = _State.IDLE
        self._decoder = ObexDecoder()
        self._out = bytearray()
        self._target: bytes | None = None
        self._received = 0
        self._empty = 0
        self._get_max_body = max_body
        self._params: dict[int, bytes] = {}
        self._params_size = 0
        self._abort_pending = False

    @property
    def state(self) -> str:
        """``idle``, ``connecting``, ``connected``, ``get``, ``setpath``, ``abort``,
        ``disconnect`` or ``closed``."""
        return self._state.value

    def data_to_send(self) -> bytes:
        """The bytes queued by responses (the next GET of a transfer, a deferred ABORT)."""
        out, self._out = bytes(self._out), bytearray()
        return out

    def _need(self, *states: _State) -> None:
        if self._state not in states:
            raise LocalProtocolError(Reason.STATE, f"not allowed while {self._state.value}")

    def _request(self, code: int, headers: list[Header], **fields: int) -> bytes:
        if self.connection_id is not None:
            headers.insert(0, (HeaderId.CONNECTION_ID, self.connection_id))
        data = encode_packet(Packet(code, tuple(headers), **fields))
        if len(data) > self.peer_max_packet:
            raise LocalProtocolError(
                Reason.FRAME_TOO_LARGE, f"request of {len(data)} bytes over {self.peer_max_packet}"
            )
        return data

    def connect(self, target: bytes | None, app_params: bytes = b"") -> bytes:
        """Start the CONNECT.

        Args:
            target: the service UUID (16 bytes for PBAP), or None for the inbox.
            app_params: Application Parameters TLVs (PBAP: PbapSupportedFeatures).

        Returns:
            The CONNECT packet.

        Raises:
            LocalProtocolError: not idle.
        """
        self._need(_State.IDLE)
        headers: list[Header] = []
        if target is not None:
            headers.append((HeaderId.TARGET, target))
        if app_params:
            headers.append((HeaderId.APP_PARAMS, app_params))
        fields = {"version": OBEX_VERSION, "flags": 0, "max_packet": self.max_packet}
        data = encode_packet(Packet(Opcode.CONNECT, tuple(headers), **fields))
        self._target, self._state = target, _State.CONNECTING
        self._decoder.expect_connect_response()
        return data

    def get(
        self,
        name: str | None,
        type: str | None,
        app_params: bytes = b"",
        *,
        max_body: int | None = None,
    ) -> bytes:
        """Start a GET, in one packet with the final bit.

        Args:
            name: the Name header, or None.
            type: the Type header, or None.
            app_params: Application Parameters TLVs, or b"" for none.
            max_body: the most body bytes this GET may bring; the client's ``max_body``
                when None or larger.

        Returns:
            The GET packet.

        Raises:
            LocalProtocolError: not connected and idle, or the headers do not fit one packet
                of the peer's maximum length.
        """
        self._need(_State.CONNECTED)
        headers: list[Header] = []
        if name is not None:
            headers.append((HeaderId.NAME, name))
        if type is not None:
            headers.append((HeaderId.TYPE, type))
        if app_params:
            headers.append((HeaderId.APP_PARAMS, app_params))
        data = self._request(Opcode.GET_FINAL, headers)
        self._state, self._received, self._empty = _State.GET, 0, 0
        self._get_max_body = self.max_body if max_body is None else min(max_body, self.max_body)
        self._params, self._params_size, self._abort_pending = {}, 0, False
        return data

    def setpath(
        self, name: str | None = None, *, parent: bool = False, create: bool = False
    ) -> bytes:
        """Start a SETPATH: ``name=""`` goes to the root, ``parent=True`` one level up.

        Raises:
            LocalProtocolError: not connected and idle.
        """
        self._need(_State.CONNECTED)
        headers: list[Header] = [] if name is None else [(HeaderId.NAME, name)]
        flags = (0x01 if parent else 0) | (0 if create else 0x02)
        data = self._request(Opcode.SETPATH, headers, flags=flags, constants=0)
        self._state = _State.SETPATH
        return data

    def abort(self) -> bytes:
        """Abort the GET under way.

        Returns:
            The ABORT packet when no GET request is outstanding (a queued next GET is
            dropped instead of sent); else b"", and the ABORT is queued in
            ``data_to_send()`` once the outstanding GET is answered (a Success then ends
            the GET with ``GetDone`` and nothing is sent).

        Raises:
            LocalProtocolError: no GET under way.
        """
        self._need(_State.GET)
        if self._out:  # the next GET was not sent yet: send the ABORT in its place
            self._out.clear()
            self._state = _State.ABORT
            return self._request(Opcode.ABORT, [])
        self._abort_pending = True
        return b""

    def disconnect(self) -> bytes:
        """Start the DISCONNECT.

        Raises:
            LocalProtocolError: not connected and idle.
        """
        self._need(_State.CONNECTED)
        self._state = _State.DISCONNECT
        return self._request(Opcode.DISCONNECT, [])

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        """Feed bytes from the server.

        Returns:
            The events they complete, in order.

        Raises:
            ObexError: malformed or unexpected responses, a body over the GET's bound or
                Application Parameters over ``MAX_GET_PARAMS``; the client is then closed.
        """
        events: list[ClientEvent] = []
        try:
            for packet in self._decoder.feed(data):
                events += self._on_response(packet)
        except ObexError:
            self._state = _State.CLOSED
            raise
        return events

    def _on_response(self, p: Packet) -> list[ClientEvent]:
        code, state = p.code, self._state
        if state in (_State.IDLE, _State.CONNECTED, _State.CLOSED):
            raise ObexError(f"response 0x{code:02x} with no request", Reason.UNEXPECTED_MESSAGE)
        if code >= 0xC0 or (state is _State.DISCONNECT and code & 0x80):
            return self._on_error(p)
        if code == ResponseCode.CONTINUE and state is _State.GET:
            return self._on_body(p, done=False)
        if code != ResponseCode.SUCCESS:
            raise ObexError(f"response 0x{code:02x} while {state.value}", Reason.UNEXPECTED_MESSAGE)
        if state is _State.CONNECTING:
            return [self._on_connected(p)]
        if state is _State.GET:
            return self._on_body(p, done=True)
        self._state = _State.CONNECTED
        return [PathSet() if state is _State.SETPATH else Aborted()]

    def _on_error(self, p: Packet) -> list[ClientEvent]:
        state = self._state
        if state is _State.DISCONNECT:
            self._state = _State.CLOSED
            return [Disconnected()]
        op = {
            _State.CONNECTING: Opcode.CONNECT,
            _State.GET: Opcode.GET_FINAL,
            _State.SETPATH: Opcode.SETPATH,
            _State.ABORT: Opcode.ABORT,
        }[state]
        self._state = _State.IDLE if state is _State.CONNECTING else _State.CONNECTED
        if state is _State.CONNECTING:
            self._decoder = ObexDecoder()  # the next CONNECT starts a fresh stream
        return [Failed(p.code, op)]

    def _on_connected(self, p: Packet) -> Connected:
        if p.max_packet is None or p.max_packet < MIN_PACKET:
            raise ObexError(f"CONNECT response max packet {p.max_packet}")
        if self._target is not None and p.who is not None and p.who != self._target:
            raise ObexError("CONNECT answered by another service (Who)")
        self.connection_id, self.peer_max_packet = p.connection_id, p.max_packet
        self._decoder.max_packet = self.max_packet
        self._state = _State.CONNECTED
        return Connected(p.connection_id, p.max_packet, p.app_params)

    def _on_body(self, p: Packet, *, done: bool) -> list[ClientEvent]:
        chunk, params = p.body, p.app_params
        self._received += len(chunk)
        if self._received > self._get_max_body:
            raise ObexError(f"GET body over {self._get_max_body} bytes", Reason.FRAME_TOO_LARGE)
        # A body shorter than the packet's parameters is no progress either.
        self._empty = self._empty + 1 if len(chunk) <= len(params) else 0
        if self._empty > MAX_EMPTY_CONTINUES:
            raise ObexError("GET answered by Continue after Continue with no body")
        self._merge_params(params)
        events: list[ClientEvent] = [BodyChunk(chunk)] if chunk else []
        if done:
            self._state = _State.CONNECTED
            events.append(GetDone(encode_app_params(list(self._params.items()))))
        elif self._abort_pending:
            self._state = _State.ABORT
            self._out += self._request(Opcode.ABORT, [])
        else:
            self._out += self._request(Opcode.GET_FINAL, [])
        return events

    def _merge_params(self, raw: bytes) -> None:
        """Merge one packet's TLVs into the GET's, per tag; a tag twice in one packet is
        malformed, as ``protocol.pbap.decode_app_params`` has it for a single header."""
        triplets = decode_app_params(raw)
        if len({tag for tag, _ in triplets}) != len(triplets):
            raise ObexError("an application parameter given twice in one packet")
        for tag, value in triplets:
            old = self._params.get(tag)
            # A new tag costs its value and 2 bytes of tag and length.
            self._params_size += len(value) - (len(old) if old is not None else -2)
            self._params[tag] = value
        if self._params_size > MAX_GET_PARAMS:
            raise ObexError(
                f"GET application parameters over {MAX_GET_PARAMS} bytes", Reason.FRAME_TOO_LARGE
            )
