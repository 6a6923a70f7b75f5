"""What both roles of a connection share: framing, the outbox, encryption, the error path.

``protocol.connection`` tells the whole story; this module is the common machine that
``CarConnection`` (``protocol.connection.car``) and ``PhoneConnection``
(``protocol.connection.phone``) extend through a few hooks: ``_handle_hello``, ``_paired``,
``_pairing_out``, ``_on_established``, ``_route`` and ``_on_end``.
"""

from __future__ import annotations

from collections import deque

from protocol.connection.events import (
    Closed,
    ConnectionEvent,
    ConnectionFailed,
    MessageReceived,
    PairingCode,
    PairingComplete,
    SessionEstablished,
    State,
)
from protocol.errors import (
    LocalProtocolError,
    PairingError,
    ProtocolError,
    Reason,
    RemoteProtocolError,
    SessionError,
)
from protocol.framing import MAX_FRAME_SIZE, FrameDecoder, encode_frame
from protocol.identity import Identity, device_id, fingerprint
from protocol.messages import (
    SUPPORTED_VERSIONS,
    AppCodec,
    Bye,
    Error,
    Hello,
    Message,
    Ping,
    Pong,
    decode,
    encode,
)
from protocol.pairing import CarPairing, CodeReady, Paired, PairingFailed, PhonePairing
from protocol.session import NoiseHandshake, SecureSession

__all__ = ["PAIRING_TIMEOUT", "PRE_SESSION_MAX_FRAME", "SETUP_TIMEOUT", "BaseConnection"]

PAIRING_TIMEOUT = 60.0  # seconds for the whole pairing, human confirmation included
# A peer must say Hello, and finish the Noise handshake, within this many seconds: an
# unauthenticated connection must not hold the car's memory or a BLE slot for long.
SETUP_TIMEOUT = 10.0
# Until the session is up only small messages are legal (a Hello is < 1 KiB), so an
# unauthenticated peer cannot make the car buffer 1 MiB frames.
PRE_SESSION_MAX_FRAME = 16 * 1024


class BaseConnection:
    """What both roles share; use ``CarConnection`` or ``PhoneConnection``."""

    role = ""
    # Events that ask the shell to act and answer (pin, commit): dropped once failed.
    _OWED: tuple[type, ...] = ()

    def __init__(
        self,
        identity: Identity,
        name: str,
        model: str,
        now: float,
        versions: tuple[int, ...] = SUPPORTED_VERSIONS,
    ) -> None:
        if not versions or not set(versions) <= set(SUPPORTED_VERSIONS):
            raise LocalProtocolError(Reason.STATE, f"cannot speak versions {list(versions)}")
        self._versions = tuple(versions)
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
        self._codec: AppCodec | None = None  # made with the session, for self.version
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
        self._send_all([msg])

    def close(self, reason: str = "") -> None:
        """Say goodbye (if the session is up) and close."""
        if self.state is State.ESTABLISHED and self._session is not None:
            self._send_all([Bye(reason=reason)])
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self._on_end()

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
                self._pairing_out(self._pairing.tick(now))
                self._drain_pairing(now)
                self._tick_pairing(now)
            except ProtocolError as exc:
                self._fail(exc)

    def confirm_pairing(self, accepted: bool, now: float) -> None:
        """Pass on the local user's decision about the displayed code.

        Raises:
            LocalProtocolError: no pairing is in progress.
            ProtocolError: the connection already failed.
        """
        self._check_alive()
        if self.state is not State.PAIRING or self._pairing is None:
            raise LocalProtocolError(Reason.STATE, "no pairing in progress")
        try:
            self._pairing_out(self._pairing.confirm(accepted, now))
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

    # -- role hooks -------------------------------------------------------------------
    def _handle_hello(self, msg: Hello, raw: bytes, now: float) -> None:
        raise NotImplementedError

    def _paired(self, peer_public_key: bytes) -> None:
        """The pairing machine succeeded: pin and start the session (the phone's way)."""
        self._pinned(peer_public_key)

    def _pairing_out(self, msgs: list[Message]) -> None:
        """Queue what the pairing machine returned (the car holds back its verdict)."""
        self._queue_plain(msgs)

    def _tick_pairing(self, now: float) -> None:
        """Check role-specific pairing deadlines."""

    def _on_established(self) -> None:
        """The session just came up (the car opens the contacts sync here)."""

    def _route(self, msg: Message) -> None:
        """Hand an application message to the machine that owns it."""
        self._events.append(MessageReceived(msg))

    def _on_end(self) -> None:
        """The connection closed or failed (the car ends its pairing attempt here)."""

    # -- shared internals ---------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, exc: ProtocolError) -> None:
        if self._error is not None:
            return
        self._error = exc
        # Tell the peer why, unless the error is the peer's own Error coming back. Before
        # the session the peer is a stranger: it gets the reason only, since a detail (a
        # decoder's path into the message layout) would map the protocol for it; the
        # detail stays in the ConnectionFailed event, for the log.
        if isinstance(exc, RemoteProtocolError) and not exc.from_peer:
            try:
                if self.state is State.ESTABLISHED and self._session is not None:
                    err = Error(reason=exc.reason.value, detail=exc.detail[:200])
                    self._send_all([err])
                elif self.state is not State.ESTABLISHED:
                    self._out += encode_frame(encode(Error(reason=exc.reason.value)))
            except ProtocolError:
                pass  # the session itself is broken; the transport close says enough
        ended = self.state is not State.CLOSED
        self.state = State.CLOSED
        # Decisions the shell has not been handed yet are void: a key must not be pinned,
        # nor a batch committed, for a connection that has failed (its verdict or ack can
        # never go out, so the two sides would disagree).
        self._events = deque(e for e in self._events if not isinstance(e, self._OWED))
        self._events.append(ConnectionFailed(exc))
        if ended:
            self._on_end()

    def _queue_plain(self, msgs: list[Message]) -> None:
        for m in msgs:
            self._out += encode_frame(encode(m))

    def _send_all(self, msgs: list[Message]) -> None:
        assert self._session is not None and self._codec is not None
        for m in msgs:
            plain = self._codec.encode(m, end=self._ends_burst(m))
            self._out += encode_frame(self._session.encrypt(plain))

    def _ends_burst(self, msg: Message) -> bool:
        """Hook: ``msg`` is the last of a burst, so the codec may end its zstd frame."""
        return False

    def _handle_payload(self, payload: bytes, now: float) -> None:
        """Dispatch one frame; a Hello keeps its raw bytes for the transcript."""
        if self.state is State.ESTABLISHED:
            assert self._session is not None
            self._handle_app(self._decode_app(self._session.decrypt(payload)))
            return
        msg = decode(payload)
        if isinstance(msg, Error):
            raise peer_error(msg)
        if self.state is State.HELLO:
            if not isinstance(msg, Hello):
                raise unexpected(msg, self.state)
            self._handle_hello(msg, payload, now)
        elif self.state is State.PAIRING:
            if self._pairing is None:
                raise unexpected(msg, self.state)
            self._pairing_out(self._pairing.receive(msg, now))
            self._drain_pairing(now)
        elif self.state is State.HANDSHAKE:
            if not isinstance(msg, NoiseHandshake):
                raise unexpected(msg, self.state)
            assert self._session is not None
            self._queue_plain(self._session.receive_handshake(msg))
            self._after_handshake_step()

    def _decode_app(self, plaintext: bytes) -> Message:
        """Decode one session plaintext (the car keeps a batch's raw contact bytes)."""
        assert self._codec is not None
        return self._codec.decode(plaintext)

    def _handle_app(self, msg: Message) -> None:
        if isinstance(msg, Ping):
            self._send_all([Pong(nonce=msg.nonce)])
        elif isinstance(msg, Bye):
            self.state = State.CLOSED
            self._events.append(Closed(msg.reason))
            self._on_end()
        elif isinstance(msg, Error):
            raise peer_error(msg)
        else:
            self._route(msg)

    def _drain_pairing(self, now: float) -> None:
        assert self._pairing is not None
        while (ev := self._pairing.next_event()) is not None:
            if isinstance(ev, CodeReady):
                peer_key = self._pairing.peer_public_key or b""
                self._check_id(peer_key)
                self._code_ready(now)
                self._events.append(
                    PairingCode(
                        ev.code,
                        self.peer_name,
                        fingerprint(peer_key),
                        self._pairing_started + PAIRING_TIMEOUT,
                    )
                )
            elif isinstance(ev, Paired):
                # OOB pairing shows no code, so the id is checked here too (see CodeReady).
                self._check_id(ev.peer_public_key)
                self._paired(ev.peer_public_key)
            elif isinstance(ev, PairingFailed):
                raise PairingError(ev.reason, ev.detail)

    def _code_ready(self, now: float) -> None:
        """Hook: a code is about to be shown (the car's policy may still refuse)."""

    def _check_id(self, peer_key: bytes) -> None:
        # The id in the Hello must be the one this key derives: otherwise a newcomer could
        # pair under a paired phone's id and replace its key.
        if device_id(peer_key) != self.peer_device_id:
            raise PairingError(Reason.ID_MISMATCH, "device id is not the key's id")

    def _pinned(self, peer_public_key: bytes) -> None:
        """Report the pinned key and start the Noise handshake with it."""
        self.peer_public_key = peer_public_key
        self._events.append(PairingComplete(self.peer_device_id, self.peer_name, peer_public_key))
        self._begin_session()

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
            # Fresh streams per session: a reconnect never continues an old one.
            self._codec = AppCodec(self.version)
            self.state = State.ESTABLISHED
            self._deadline = None
            self._decoder.max_frame_size = MAX_FRAME_SIZE
            self._events.append(
                SessionEstablished(
                    self.peer_device_id, self.peer_public_key, self._session.secrets()
                )
            )
            self._on_established()


def peer_error(msg: Error) -> RemoteProtocolError:
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


def unexpected(msg: Message, state: State) -> RemoteProtocolError:
    """The error for ``msg`` arriving in ``state``."""
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
