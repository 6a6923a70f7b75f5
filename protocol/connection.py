"""One connection between a phone and a car, as a sans-I/O state machine.

Theory of operation: a ``Connection`` takes the raw byte stream of one transport
(WebSocket or BLE GATT, they carry the same frames) and returns bytes to write and events to
act on, like h11's ``Connection``. It owns framing, the ``Hello`` exchange and version
negotiation, then either first-contact pairing (``protocol.pairing``) followed at once by
the secure session, or the secure session alone (``protocol.session``) between pinned keys.
Once the session is up every frame is encrypted and application messages (contacts sync,
media) come out as ``MessageReceived`` events; the shell routes them to
``protocol.sync`` / ``protocol.media`` machines and sends replies with ``send``.

    phone (initiator)                         car (responder)
    Hello(intent) ───────────────────────────▶ lookup peer / pairing gate
                  ◀─────────────────────────── Hello(selected)
    [pair]  PairRequest ... PairResult  (see protocol.pairing)
    NoiseHandshake ──────────────────────────▶
                  ◀─────────────────────────── NoiseHandshake
    ═══════════ encrypted application messages both ways ═══════════

Any ``ProtocolError`` moves the connection to CLOSED: an ``Error`` message is queued for the
peer (encrypted once the session is up), a ``ConnectionFailed`` event carries the typed
error, and every later call raises the same error. The car decides nothing about unknown
peers before the handshake: a ``session`` Hello from a device id that has no pinned key is
refused before any application message is read.

Time is passed in as ``now`` (seconds); nothing here reads a clock.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from protocol.errors import (
    LocalProtocolError,
    PairingError,
    ProtocolError,
    Reason,
    RemoteProtocolError,
    SessionError,
)
from protocol.framing import MAX_FRAME_SIZE, FrameDecoder, encode_frame
from protocol.identity import Identity, PairingUri, device_id, fingerprint
from protocol.messages import (
    SUPPORTED_VERSIONS,
    Bye,
    Error,
    Hello,
    Message,
    Ping,
    Pong,
    check_selected,
    decode,
    decode_app,
    encode,
    encode_app,
    negotiate_version,
)
from protocol.pairing import CarPairing, CodeReady, Paired, PairingFailed, PhonePairing
from protocol.session import NoiseHandshake, SecureSession

__all__ = [
    "CarConnection",
    "Closed",
    "ConnectionEvent",
    "ConnectionFailed",
    "MessageReceived",
    "PairingCode",
    "PairingComplete",
    "PeerHello",
    "PhoneConnection",
    "SessionEstablished",
    "State",
]

PAIRING_TIMEOUT = 60.0  # seconds for the whole pairing, human confirmation included
# A peer must say Hello, and finish the Noise handshake, within this many seconds: an
# unauthenticated connection must not hold the car's memory or a BLE slot for long.
SETUP_TIMEOUT = 10.0
# Until the session is up only small messages are legal (a Hello is < 1 KiB), so an
# unauthenticated peer cannot make the car buffer 1 MiB frames.
PRE_SESSION_MAX_FRAME = 16 * 1024


class State(enum.Enum):
    HELLO = "hello"
    PAIRING = "pairing"
    HANDSHAKE = "handshake"
    ESTABLISHED = "established"
    CLOSED = "closed"


@dataclass(frozen=True)
class PeerHello:
    """The peer introduced itself (before any trust decision)."""

    device_id: str
    name: str
    model: str
    intent: str
    version: int


@dataclass(frozen=True)
class PairingCode:
    """Show ``code`` to the user and call ``confirm_pairing`` with their decision."""

    code: str
    peer_name: str
    peer_fingerprint: str
    expires_at: float  # when the pairing times out (same clock as ``now``)


@dataclass(frozen=True)
class PairingComplete:
    """Both users confirmed: pin ``peer_public_key`` now."""

    peer_device_id: str
    peer_name: str
    peer_public_key: bytes


@dataclass(frozen=True)
class SessionEstablished:
    """The secure session is up; application messages may flow."""

    peer_device_id: str
    peer_public_key: bytes


@dataclass(frozen=True)
class MessageReceived:
    """An application message arrived over the secure session."""

    message: Message


@dataclass(frozen=True)
class ConnectionFailed:
    """The connection is dead because of ``error``; close the transport."""

    error: ProtocolError


@dataclass(frozen=True)
class Closed:
    """The peer said goodbye (``Bye``)."""

    reason: str


ConnectionEvent = (
    PeerHello
    | PairingCode
    | PairingComplete
    | SessionEstablished
    | MessageReceived
    | ConnectionFailed
    | Closed
)

PeerLookup = Callable[[str], bytes | None]
"""Return the pinned public key of a device id, or None if it is not paired."""

PairingGate = Callable[[str, float], None]
"""Raise ``PairingError`` (closed, rate limited) if this device may not pair now."""


class _Connection:
    """What both roles share: framing, the outbox, encryption, the error path."""

    role = ""

    def __init__(self, identity: Identity, name: str, model: str, now: float) -> None:
        self._identity = identity
        self._name = name
        self._model = model
        self._decoder = FrameDecoder(PRE_SESSION_MAX_FRAME)
        self._now = now
        self._deadline: float | None = now + SETUP_TIMEOUT
        self._pairing_started = now
        self._out = bytearray()
        self._events: deque[ConnectionEvent] = deque()
        self._session: SecureSession | None = None
        self._pairing: CarPairing | PhonePairing | None = None
        self._error: ProtocolError | None = None
        self.state = State.HELLO
        self.peer_device_id = ""
        self.peer_name = ""
        self.peer_public_key: bytes | None = None
        self.version = 0
        self._transcript = b""

    # -- public API -------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the transport; then drain ``next_event`` and ``data_to_send``.

        Raises:
            ProtocolError: only if called again after the connection failed.
        """
        self._check_alive()
        self._now = now
        try:
            self._decoder.receive_data(data)
            while self.state is not State.CLOSED:
                payload = self._decoder.next_frame()
                if payload is None:
                    break
                self._handle_payload(payload, now)
        except ProtocolError as exc:
            self._fail(exc)

    def send(self, msg: Message) -> None:
        """Queue an application message over the established session.

        Raises:
            LocalProtocolError: the session is not established.
        """
        self._check_alive()
        if self.state is not State.ESTABLISHED or self._session is None:
            raise LocalProtocolError(Reason.STATE, f"cannot send in state {self.state.value}")
        self._out += encode_frame(self._session.encrypt(encode_app(msg)))

    def close(self, reason: str = "") -> None:
        """Say goodbye (if the session is up) and close."""
        if self.state is State.ESTABLISHED and self._session is not None:
            self._out += encode_frame(self._session.encrypt(encode_app(Bye(reason=reason))))
        self.state = State.CLOSED

    def abort(self, reason: Reason, detail: str = "") -> None:
        """Close for a local reason (storage failed, a refused batch), telling the peer why.

        The ``Error`` goes out (sealed once the session is up) and a ``ConnectionFailed``
        event follows; the shell then closes the transport.
        """
        if self._error is None:
            self._fail(RemoteProtocolError(reason, detail))

    def tick(self, now: float) -> None:
        """Check timeouts (setup, pairing); call it every second or so."""
        self._now = now
        if self.state in (State.HELLO, State.HANDSHAKE) and self._deadline is not None:
            if now > self._deadline:
                what = "no Hello" if self.state is State.HELLO else "handshake not finished"
                self._fail(
                    RemoteProtocolError(Reason.TIMEOUT, f"{what} within {SETUP_TIMEOUT:g} s")
                )
            return
        if self.state is State.PAIRING and self._pairing is not None:
            try:
                self._queue_plain(self._pairing.tick(now))
                self._drain_pairing(now)
            except ProtocolError as exc:
                self._fail(exc)

    def confirm_pairing(self, accepted: bool, now: float) -> None:
        """Pass on the local user's decision about the displayed code."""
        self._check_alive()
        if self.state is not State.PAIRING or self._pairing is None:
            raise LocalProtocolError(Reason.STATE, "no pairing in progress")
        try:
            self._queue_plain(self._pairing.confirm(accepted, now))
            self._drain_pairing(now)
        except ProtocolError as exc:
            self._fail(exc)

    def next_event(self) -> ConnectionEvent | None:
        """Return the next event, or None."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Return (and forget) the bytes to write to the transport."""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def pairing_code(self) -> str | None:
        """The 6-digit code, once both nonces are known."""
        return self._pairing.code if self._pairing is not None else None

    # -- shared internals ---------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, exc: ProtocolError) -> None:
        if self._error is not None:
            return
        self._error = exc
        # Tell the peer why, unless the error is the peer's own Error coming back.
        if isinstance(exc, RemoteProtocolError) and not exc.from_peer:
            err = Error(reason=exc.reason.value, detail=exc.detail[:200])
            try:
                if self.state is State.ESTABLISHED and self._session is not None:
                    self._out += encode_frame(self._session.encrypt(encode_app(err)))
                elif self.state is not State.ESTABLISHED:
                    self._out += encode_frame(encode(err))
            except ProtocolError:
                pass  # the session itself is broken; the transport close says enough
        self.state = State.CLOSED
        self._events.append(ConnectionFailed(exc))

    def _queue_plain(self, msgs: list[Message]) -> None:
        for m in msgs:
            self._out += encode_frame(encode(m))

    def _handle_payload(self, payload: bytes, now: float) -> None:
        """Dispatch one frame; a Hello keeps its raw bytes for the transcript."""
        if self.state is State.ESTABLISHED:
            assert self._session is not None
            msg = decode_app(self._session.decrypt(payload))
            self._handle_app(msg)
            return
        msg = decode(payload)
        if isinstance(msg, Error):
            raise _peer_error(msg)
        if self.state is State.HELLO:
            if not isinstance(msg, Hello):
                raise _unexpected(msg, self.state)
            self._handle_hello(msg, payload, now)
        elif self.state is State.PAIRING:
            assert self._pairing is not None
            self._queue_plain(self._pairing.receive(msg, now))
            self._drain_pairing(now)
        elif self.state is State.HANDSHAKE:
            if not isinstance(msg, NoiseHandshake):
                raise _unexpected(msg, self.state)
            assert self._session is not None
            self._queue_plain(self._session.receive_handshake(msg))
            self._after_handshake_step()

    def _handle_app(self, msg: Message) -> None:
        if isinstance(msg, Ping):
            assert self._session is not None
            self._out += encode_frame(self._session.encrypt(encode_app(Pong(nonce=msg.nonce))))
        elif isinstance(msg, Bye):
            self.state = State.CLOSED
            self._events.append(Closed(msg.reason))
        elif isinstance(msg, Error):
            raise _peer_error(msg)
        else:
            self._events.append(MessageReceived(msg))

    def _drain_pairing(self, now: float) -> None:
        assert self._pairing is not None
        while (ev := self._pairing.next_event()) is not None:
            if isinstance(ev, CodeReady):
                peer_key = self._pairing.peer_public_key or b""
                # The id in the Hello must be the one this key derives: otherwise a
                # newcomer could pair under a paired phone's id and replace its key.
                if device_id(peer_key) != self.peer_device_id:
                    raise PairingError(Reason.ID_MISMATCH, "device id is not the key's id")
                self._events.append(
                    PairingCode(
                        ev.code,
                        self.peer_name,
                        fingerprint(peer_key),
                        self._pairing_started + PAIRING_TIMEOUT,
                    )
                )
            elif isinstance(ev, Paired):
                # OOB pairing shows no code, so check the id here too (see CodeReady).
                if device_id(ev.peer_public_key) != self.peer_device_id:
                    raise PairingError(Reason.ID_MISMATCH, "device id is not the key's id")
                self.peer_public_key = ev.peer_public_key
                self._events.append(
                    PairingComplete(self.peer_device_id, self.peer_name, ev.peer_public_key)
                )
                self._begin_session()
            elif isinstance(ev, PairingFailed):
                raise PairingError(ev.reason, ev.detail)

    def _begin_session(self) -> None:
        """Start the Noise handshake with the (now) pinned peer key."""
        assert self.peer_public_key is not None
        self._session = SecureSession(
            self._identity,
            self.peer_public_key,
            initiator=self.role == "phone",
            prologue=b"carhub/1 session\x00" + self._transcript,
        )
        self.state = State.HANDSHAKE
        self._deadline = self._now + SETUP_TIMEOUT
        self._queue_plain(self._session.start())
        self._after_handshake_step()

    def _after_handshake_step(self) -> None:
        assert self._session is not None and self.peer_public_key is not None
        if self._session.established:
            self.state = State.ESTABLISHED
            self._deadline = None
            self._decoder.max_frame_size = MAX_FRAME_SIZE
            self._events.append(SessionEstablished(self.peer_device_id, self.peer_public_key))

    def _handle_hello(self, msg: Hello, raw: bytes, now: float) -> None:
        raise NotImplementedError


class PhoneConnection(_Connection):
    """The phone's side: it speaks first.

    Args:
        identity: the phone's static key pair.
        name: the phone's display name (shown on the car).
        car_public_key: the car's pinned key, or None to pair first.
        oob: a scanned pairing URI (QR) to pair without comparing a code.
        now: the current time in seconds.
    """

    role = "phone"

    def __init__(
        self,
        identity: Identity,
        name: str,
        *,
        car_public_key: bytes | None = None,
        oob: PairingUri | None = None,
        model: str = "phone-bridge",
        now: float = 0.0,
    ) -> None:
        super().__init__(identity, name, model, now)
        self.peer_public_key = car_public_key
        self._oob = oob
        self._intent = "session" if car_public_key is not None else "pair"
        self._hello = Hello(
            versions=list(SUPPORTED_VERSIONS),
            role="phone",
            device_id=identity.device_id,
            name=name,
            model=model,
            intent=self._intent,
        )
        self._hello_raw = encode(self._hello)
        self._out += encode_frame(self._hello_raw)

    def _handle_hello(self, msg: Hello, raw: bytes, now: float) -> None:
        if msg.role != "car":
            raise RemoteProtocolError(Reason.UNEXPECTED_MESSAGE, f"peer role {msg.role!r}")
        check_selected(SUPPORTED_VERSIONS, msg.versions, msg.selected)
        self.version = msg.selected
        self.peer_device_id, self.peer_name = msg.device_id, msg.name
        # Both Hellos exactly as they crossed the wire.
        self._transcript = self._hello_raw + raw
        self._events.append(PeerHello(msg.device_id, msg.name, msg.model, msg.intent, msg.selected))
        if self._intent == "session":
            self._begin_session()
            return
        self.state = State.PAIRING
        self._pairing_started = now
        self._pairing = PhonePairing(
            self._identity,
            self._name,
            transcript=self._transcript,
            now=now,
            timeout=PAIRING_TIMEOUT,
            oob=self._oob,
        )
        self._queue_plain(self._pairing.start())


class CarConnection(_Connection):
    """The car's side: it answers a phone's Hello.

    Args:
        identity: the car's static key pair.
        name: the car's display name.
        lookup_peer: returns a paired phone's pinned key by device id.
        pairing_gate: raises ``PairingError`` when this phone may not pair now.
        oob_secret: the secret of the pairing URI currently shown, if any.
        now: the current time in seconds.
    """

    role = "car"

    def __init__(
        self,
        identity: Identity,
        name: str,
        *,
        lookup_peer: PeerLookup,
        pairing_gate: PairingGate,
        oob_secret: bytes | None = None,
        model: str = "carhub",
        now: float = 0.0,
    ) -> None:
        super().__init__(identity, name, model, now)
        self._lookup_peer = lookup_peer
        self._pairing_gate = pairing_gate
        self._oob_secret = oob_secret

    def _handle_hello(self, msg: Hello, raw: bytes, now: float) -> None:
        if msg.role != "phone" or msg.intent not in ("pair", "session"):
            raise RemoteProtocolError(Reason.UNEXPECTED_MESSAGE, "bad hello")
        selected = negotiate_version(SUPPORTED_VERSIONS, msg.versions)
        self.version = selected
        self.peer_device_id, self.peer_name = msg.device_id, msg.name
        self._events.append(PeerHello(msg.device_id, msg.name, msg.model, msg.intent, selected))
        if msg.intent == "session":
            # Refuse unknown and revoked phones before any handshake or application data.
            pinned = self._lookup_peer(msg.device_id)
            if pinned is None:
                raise SessionError(Reason.UNKNOWN_PEER, f"device {msg.device_id} is not paired")
            self.peer_public_key = pinned
        else:
            self._pairing_gate(msg.device_id, now)
        reply = Hello(
            versions=list(SUPPORTED_VERSIONS),
            role="car",
            device_id=self._identity.device_id,
            name=self._name,
            model=self._model,
            intent=msg.intent,
            selected=selected,
        )
        reply_raw = encode(reply)
        self._transcript = raw + reply_raw  # both Hellos exactly as they crossed the wire
        self._out += encode_frame(reply_raw)
        if msg.intent == "session":
            self._begin_session()
            return
        self.state = State.PAIRING
        self._pairing_started = now
        self._pairing = CarPairing(
            self._identity,
            transcript=self._transcript,
            now=now,
            timeout=PAIRING_TIMEOUT,
            oob_secret=self._oob_secret,
        )


def _peer_error(msg: Error) -> RemoteProtocolError:
    """Turn a peer's ``Error`` into the matching typed error."""
    try:
        reason = Reason(msg.reason)
    except ValueError:
        reason = Reason.PEER_ERROR
    cls: type[RemoteProtocolError] = RemoteProtocolError
    if reason in _PAIRING_REASONS:
        cls = PairingError
    elif reason in _SESSION_REASONS:
        cls = SessionError
    return cls(reason, f"peer: {msg.detail}" if msg.detail else "peer closed", from_peer=True)


def _unexpected(msg: Message, state: State) -> RemoteProtocolError:
    return RemoteProtocolError(
        Reason.UNEXPECTED_MESSAGE, f"{type(msg).__name__} in state {state.value}"
    )


_PAIRING_REASONS = {
    Reason.REJECTED,
    Reason.PAIRING_CLOSED,
    Reason.PAIRING_BUSY,
    Reason.COMMITMENT_MISMATCH,
    Reason.CODE_MISMATCH,
    Reason.CONFIRMATION_FAILED,
    Reason.TIMEOUT,
    Reason.RATE_LIMITED,
    Reason.OOB_MISMATCH,
    Reason.ID_MISMATCH,
}
_SESSION_REASONS = {
    Reason.UNKNOWN_PEER,
    Reason.HANDSHAKE_FAILED,
    Reason.REPLAY,
    Reason.REORDER,
    Reason.TAMPERED,
}
