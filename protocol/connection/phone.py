"""The phone's side of a connection: it speaks first, pairs or resumes, and runs the sync.

After the session is up the car's sync replies (``ContactsState``, ``Manifest``,
``ContactsAck``) go to the ``ContactsSender`` given to ``start_sync``; the ones that arrive
before it (the car opens every session with ``ContactsState``) wait for it. After each one
the connection emits ``SyncJournal`` and holds the sender's replies until the shell calls
``journal_recorded``: the write-ahead rule, so a cut at any point resumes without duplicates
or losses. Every other application message is a ``MessageReceived``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from protocol.connection.base import PAIRING_TIMEOUT, BaseConnection
from protocol.connection.events import (
    MessageReceived,
    PeerHello,
    State,
    SyncFailed,
    SyncJournal,
)
from protocol.errors import (
    LocalProtocolError,
    ProtocolError,
    Reason,
    RemoteProtocolError,
    SessionError,
)
from protocol.framing import encode_frame
from protocol.identity import Identity, PairingUri
from protocol.messages import (
    SUPPORTED_VERSIONS,
    Hello,
    Message,
    check_selected,
    encode,
)
from protocol.pairing import PhonePairing
from protocol.sync import (
    ContactsAck,
    ContactsDone,
    ContactsSender,
    ContactsState,
    Manifest,
    SyncCompleted,
)

__all__ = ["PhoneConnection"]

_SYNC_REPLIES = (ContactsState, Manifest, ContactsAck)
# The car sends sync replies only in answer to the phone, plus one ContactsState per
# session: anything piling up beyond this while no sync runs is a misbehaving car.
MAX_UNSOLICITED_SYNC = 16


class PhoneConnection(BaseConnection):
    """The phone's side: it speaks first.

    Args:
        identity: the phone's static key pair.
        name: the phone's display name (shown on the car).
        car_public_key: the car's pinned key, or None to pair first.
        lookup_car: instead of ``car_public_key``, the pinned key of a car by its device
            id (None: not paired with it). The car's ``Hello`` names the car, so a paired
            car is found by its id wherever it answers; an id with no pinned key fails
            the connection with ``SessionError(unknown-peer)`` before the handshake.
        oob: a scanned pairing URI (QR) to pair without comparing a code.
        versions: the protocol versions to offer (a subset of ``SUPPORTED_VERSIONS``;
            tests offer ``(1,)`` to act as a phone that speaks only version 1).
        now: the current time in seconds.

    Raises:
        LocalProtocolError: ``versions`` is empty or names a version this code lacks.
    """

    role = "phone"

    def __init__(
        self,
        identity: Identity,
        name: str,
        *,
        car_public_key: bytes | None = None,
        lookup_car: Callable[[str], bytes | None] | None = None,
        oob: PairingUri | None = None,
        model: str = "phone-bridge",
        versions: tuple[int, ...] = SUPPORTED_VERSIONS,
        now: float = 0.0,
    ) -> None:
        super().__init__(identity, name, model, now, versions)
        self.peer_public_key = car_public_key
        self._oob = oob
        self._lookup_car = lookup_car
        resume = car_public_key is not None or lookup_car is not None
        self._intent = "session" if resume else "pair"
        self._hello = Hello(
            versions=list(self._versions),
            role="phone",
            device_id=identity.device_id,
            name=name,
            model=model,
            intent=self._intent,
        )
        self._hello_raw = encode(self._hello)
        self._out += encode_frame(self._hello_raw)
        self._sender: ContactsSender | None = None
        self._inbox: deque[Message] = deque()  # sync replies waiting for a sender
        self._held: list[Message] | None = None  # replies waiting for the journal

    # -- contacts sync ----------------------------------------------------------------
    def start_sync(self, sender: ContactsSender, opening: ContactsState | None = None) -> None:
        """Run ``sender`` against the car; drain ``SyncJournal``/``SyncProgress``/``SyncCompleted``.

        Args:
            sender: a fresh sender over the phone's contacts and snapshot.
            opening: the car's state when it will send none (a later sync in this session:
                the anchor of the last ack, which no one else can have moved).

        Raises:
            LocalProtocolError: no session, or a sync is already running.
        """
        self._check_alive()
        if self.state is not State.ESTABLISHED or self._sender is not None:
            raise LocalProtocolError(Reason.STATE, "no session, or a sync is running")
        self._sender = sender
        if opening is not None:
            self._inbox.appendleft(opening)
        self._next_sync()

    def journal_recorded(self) -> None:
        """The shell persisted the last ``SyncJournal``: send what the sender replied.

        Raises:
            LocalProtocolError: no journal is waiting.
        """
        self._check_alive()
        if self._held is None:
            raise LocalProtocolError(Reason.STATE, "no journal awaits recording")
        held, self._held = self._held, None
        self._send_all(held)
        sender = self._sender
        assert sender is not None
        while (ev := sender.next_event()) is not None:
            self._events.append(ev)
            if isinstance(ev, SyncCompleted):
                self._sender = None
        self._next_sync()

    @property
    def syncing(self) -> bool:
        """Whether a sync started with ``start_sync`` is still running."""
        return self._sender is not None

    def _ends_burst(self, msg: Message) -> bool:
        # A sync's last message: the car frees its stream until the next sync.
        return isinstance(msg, ContactsDone)

    def _route(self, msg: Message) -> None:
        if not isinstance(msg, _SYNC_REPLIES):
            self._events.append(MessageReceived(msg))
            return
        if self._sender is None and len(self._inbox) >= MAX_UNSOLICITED_SYNC:
            raise RemoteProtocolError(Reason.UNEXPECTED_MESSAGE, "unsolicited sync replies")
        self._inbox.append(msg)
        self._next_sync()

    def _next_sync(self) -> None:
        """Feed the oldest waiting sync reply to the sender, unless a journal is pending."""
        sender = self._sender
        if sender is None or self._held is not None or not self._inbox:
            return
        msg = self._inbox.popleft()
        try:
            replies = sender.receive(msg)
        except ProtocolError as exc:
            # The sync is over; the session is not (the shell closes it politely).
            self._sender = None
            self._events.append(SyncFailed(exc))
            return
        self._held = replies
        self._events.append(SyncJournal(sender.journal()))

    # -- setup ------------------------------------------------------------------------
    def _handle_hello(self, msg: Hello, raw: bytes, now: float) -> None:
        if msg.role != "car":
            raise RemoteProtocolError(Reason.UNEXPECTED_MESSAGE, f"peer role {msg.role!r}")
        check_selected(self._versions, msg.versions, msg.selected)
        self.version = msg.selected
        self.peer_device_id, self.peer_name = msg.device_id, msg.name
        # Both Hellos exactly as they crossed the wire.
        self._transcript = self._hello_raw + raw
        self._events.append(PeerHello(msg.device_id, msg.name, msg.model, msg.intent, msg.selected))
        if self._intent == "session":
            if self._lookup_car is not None:
                self.peer_public_key = self._lookup_car(msg.device_id)
            if self.peer_public_key is None:
                # Pinned by id: no handshake with a key this phone never paired.
                raise SessionError(
                    Reason.UNKNOWN_PEER, f"car {msg.device_id} is not paired with this phone"
                )
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
