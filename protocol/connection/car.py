"""The car's side of a connection: it answers a Hello, asks its policy, and owns the sync.

Pairing. A ``pair`` Hello is admitted by the car's ``PairingAdmission`` (window, one at a
time, rate limits) before any pairing message is read. When the pairing machine completes,
its ``PairResult(true)`` is held back: the policy is asked ``may_pin`` (a QR secret is
one-time), then the shell gets ``PinRequested`` and stores the key; only ``pin_stored``
lets the verdict out and starts the session, so a storage failure never half-pairs.

Session. The connection owns the phone's ``ContactsReceiver`` (loaded with
``load_mirror``) and the artwork bookkeeping; the shell gets ``ApplyBatch`` (commit it,
then ``batch_stored`` sends the ack: an ack always means durable), ``ContactsSynced``,
``NowPlayingChanged`` (``request_artwork`` if the image is missing) and
``ArtworkReceived``. A contact is digested from the bytes the phone sent, and those bytes
are what the shell stores.
"""

from __future__ import annotations

import functools

from protocol.admission import PairingAdmission
from protocol.connection.base import PAIRING_TIMEOUT, BaseConnection, unexpected
from protocol.connection.events import (
    ArtworkReceived,
    MessageIgnored,
    MessageReceived,
    MirrorLoader,
    NowPlayingChanged,
    PeerHello,
    PeerLookup,
    PinRequested,
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
from protocol.framing import encode_frame
from protocol.identity import Identity
from protocol.media import Artwork, ArtworkRequest, NowPlaying
from protocol.messages import (
    SUPPORTED_VERSIONS,
    Hello,
    Message,
    Pong,
    Unpair,
    decode,
    encode,
    negotiate_version,
)
from protocol.pairing import CarPairing, PairResult
from protocol.sync import (
    ApplyBatch,
    ContactsBatch,
    ContactsDone,
    ContactsReceiver,
    Manifest,
    ManifestRequest,
    MirrorState,
)
from protocol.sync.wire import raw_upserts

__all__ = ["CarConnection"]


@functools.cache
def _decoy_key() -> bytes:
    """A public key whose private half was thrown away, once per car process.

    The car runs an unknown phone's handshake against it, so the handshake fails at the
    phone's first message, as it does for a paired id whose key is wrong.
    """
    return Identity.generate().public_key


_SYNC_MESSAGES = (ContactsBatch, ContactsDone, ManifestRequest)
# What the shell gets as MessageReceived; anything else that is not handled above (a car ->
# phone message such as MediaCommand, a pairing message) is refused, not ignored.
_FOR_THE_SHELL = (Unpair, Pong)
# Hashes asked for and not yet answered; a phone cannot make the car remember more.
MAX_ARTWORK_REQUESTS = 64


class CarConnection(BaseConnection):
    """The car's side: it answers a phone's Hello.

    Args:
        identity: the car's static key pair.
        name: the car's display name.
        lookup_peer: returns a paired phone's pinned key by device id.
        admission: the car's pairing policy, shared by all its connections.
        peer: where the phone connects from ("" when unknown), for the rate limits.
        load_mirror: returns the car's mirror of a paired phone, to open its sync.
        model: the car's model string.
        versions: the protocol versions to speak (a subset of ``SUPPORTED_VERSIONS``;
            tests pass ``(1,)`` to act as a car that speaks only version 1).
        now: the current time in seconds.

    Raises:
        LocalProtocolError: ``versions`` is empty or names a version this code lacks.
    """

    role = "car"
    _OWED = (PinRequested, ApplyBatch)

    def __init__(
        self,
        identity: Identity,
        name: str,
        *,
        lookup_peer: PeerLookup,
        admission: PairingAdmission,
        peer: str = "",
        load_mirror: MirrorLoader | None = None,
        model: str = "carhub",
        versions: tuple[int, ...] = SUPPORTED_VERSIONS,
        now: float = 0.0,
    ) -> None:
        super().__init__(identity, name, model, now, versions)
        self._lookup_peer = lookup_peer
        self._admission = admission
        self._peer = peer
        self._load_mirror = load_mirror or (lambda _id: MirrorState())
        self._oob_secret: bytes | None = None
        self._attempt = False  # admitted to pair and not finished yet
        self._verdict: list[Message] | None = None  # PairResult(true), held for the pin
        self._receiver: ContactsReceiver | None = None
        self._raw: list[bytes] | None = None  # the last batch's contacts as received
        self._wanted_art: set[bytes] = set()
        self._unknown = False  # a session Hello from an id that is not paired

    # -- answers from the shell -------------------------------------------------------
    def pin_stored(self, now: float) -> None:
        """The shell pinned the key of ``PinRequested``: send the verdict, start the session.

        Nothing happens on a connection that has failed meanwhile.

        Raises:
            LocalProtocolError: no pin was requested.
        """
        if self._error is not None:
            return  # failed meanwhile: the verdict is void, the shell sees ConnectionFailed
        if self._verdict is None:
            raise LocalProtocolError(Reason.STATE, "no pin was requested")
        verdict, self._verdict = self._verdict, None
        self._now = now
        self._end_attempt(paired=True)
        self._queue_plain(verdict)
        assert self._pairing is not None and self._pairing.peer_public_key is not None
        self._pinned(self._pairing.peer_public_key)

    def pin_failed(self, detail: str) -> None:
        """The shell could not pin the key: the phone gets an ``Error``, not the verdict."""
        if self._verdict is not None:
            self._verdict = None
            self.abort(Reason.PEER_ERROR, detail[:200])

    def batch_stored(self, batch: ApplyBatch) -> None:
        """The shell committed ``batch``: queue its ack (and a state the phone is owed).

        Nothing happens on a connection that has failed meanwhile.

        Raises:
            LocalProtocolError: ``batch`` is not the oldest uncommitted one.
        """
        if self._error is not None:
            return  # failed meanwhile: no ack may go out, the phone resumes from the last one
        if self._receiver is None:
            raise LocalProtocolError(Reason.STATE, "no sync is open")
        self._send_all(self._receiver.applied(batch))

    def request_artwork(self, art_hash: bytes) -> None:
        """Ask the phone for an image the car lacks (the answer is ``ArtworkReceived``)."""
        if art_hash in self._wanted_art or len(self._wanted_art) >= MAX_ARTWORK_REQUESTS:
            return
        self._wanted_art.add(art_hash)
        self.send(ArtworkRequest(hash=art_hash))

    # -- hooks ------------------------------------------------------------------------
    def _handle_hello(self, msg: Hello, raw: bytes, now: float) -> None:
        if msg.role != "phone" or msg.intent not in ("pair", "session"):
            raise RemoteProtocolError(Reason.UNEXPECTED_MESSAGE, "bad hello")
        selected = negotiate_version(self._versions, msg.versions)
        self.version = selected
        self.peer_device_id, self.peer_name = msg.device_id, msg.name
        self._events.append(PeerHello(msg.device_id, msg.name, msg.model, msg.intent, selected))
        if msg.intent == "session":
            # An unknown (or revoked) phone is not told so: that would tell anyone on the LAN
            # which phones are paired. It gets the Hello and a handshake against a key
            # nobody holds, which fails exactly as a known id with the wrong key does.
            pinned = self._lookup_peer(msg.device_id)
            self._unknown = pinned is None
            self.peer_public_key = _decoy_key() if pinned is None else pinned
        else:
            self._attempt = True  # from here on, ending unpaired counts as a failure
            refusal = self._admission.request(self, msg.device_id, self._peer, now)
            if refusal is not None:
                raise refusal.error()
            self._oob_secret = self._admission.oob_secret(now)
        reply = Hello(
            versions=list(self._versions),
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
        self._start_pairing(now)

    def _start_pairing(self, now: float) -> None:
        self.state = State.PAIRING
        self._pairing_started = now
        self._pairing = CarPairing(
            self._identity,
            transcript=self._transcript,
            now=now,
            timeout=PAIRING_TIMEOUT,
            oob_secret=self._oob_secret,
        )

    def _pairing_out(self, msgs: list[Message]) -> None:
        # The verdict waits for the policy and the shell's pin (see the module docstring).
        held: list[Message] = [m for m in msgs if isinstance(m, PairResult) and m.accepted]
        if held:
            self._verdict = held
        self._queue_plain([m for m in msgs if not (isinstance(m, PairResult) and m.accepted)])

    def _code_ready(self, now: float) -> None:
        # The window may have closed while this phone was on its way: show no code then.
        if not self._admission.is_open(now):
            raise PairingError(Reason.PAIRING_CLOSED, "the car's pairing window closed")

    def _paired(self, peer_public_key: bytes) -> None:
        assert self._pairing is not None
        secret = self._oob_secret if self._pairing.method == "oob" else None
        refusal = self._admission.may_pin(self, secret, self._now)
        if refusal is not None:
            self._verdict = None
            raise refusal.error()
        self._events.append(PinRequested(self.peer_device_id, self.peer_name, peer_public_key))

    def _tick_pairing(self, now: float) -> None:
        # A shell that never answers PinRequested must not hold the pairing slot forever.
        if self._verdict is not None and now >= self._pairing_started + PAIRING_TIMEOUT:
            self._verdict = None
            raise RemoteProtocolError(Reason.TIMEOUT, "the car did not store the pairing")

    def _on_end(self) -> None:
        self._end_attempt(paired=False)

    def _fail(self, exc: ProtocolError) -> None:
        if self._unknown and exc.reason is Reason.HANDSHAKE_FAILED and not exc.from_peer:
            # The phone sees handshake-failed (an Error's detail stays here); the log says why.
            exc = SessionError(
                Reason.HANDSHAKE_FAILED, f"device {self.peer_device_id} is not paired"
            )
        super()._fail(exc)

    def _end_attempt(self, *, paired: bool) -> None:
        if self._attempt:
            self._attempt = False
            self._admission.finished(
                self, self.peer_device_id or "?", self._peer, paired=paired, now=self._now
            )

    def _on_established(self) -> None:
        self._receiver = ContactsReceiver(self._load_mirror(self.peer_device_id))
        self._send_all(self._receiver.hello())

    def _decode_app(self, plaintext: bytes) -> Message:
        assert self._codec is not None
        body = self._codec.body(plaintext)
        msg = decode(body)
        self._raw = raw_upserts(body) if isinstance(msg, ContactsBatch) else None
        return msg

    def _ends_burst(self, msg: Message) -> bool:
        # The last manifest chunk: the phone sends batches next, the car only acks.
        return isinstance(msg, Manifest) and msg.done

    def _route(self, msg: Message) -> None:
        if isinstance(msg, _SYNC_MESSAGES):
            self._sync(msg)
        elif isinstance(msg, NowPlaying):
            self._events.append(NowPlayingChanged(msg))
        elif isinstance(msg, Artwork):
            # Only images we asked for: a phone cannot fill the disk or plant other types.
            if msg.hash not in self._wanted_art or not msg.mime.startswith("image/"):
                self._events.append(MessageIgnored(msg, "unrequested or non-image artwork"))
                return
            self._wanted_art.discard(msg.hash)
            self._events.append(ArtworkReceived(msg))
        elif isinstance(msg, _FOR_THE_SHELL):
            self._events.append(MessageReceived(msg))
        else:
            raise unexpected(msg, self.state)

    def _sync(self, msg: Message) -> None:
        receiver = self._receiver
        assert receiver is not None  # made when the session came up
        raw, self._raw = self._raw, None
        self._send_all(receiver.receive(msg, raw))  # a SyncError fails the connection
        while (ev := receiver.next_event()) is not None:
            self._events.append(ev)
