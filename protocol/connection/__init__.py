"""One connection between a phone and a car, as a sans-I/O state machine.

Theory of operation: a ``Connection`` takes the raw byte stream of one transport
(WebSocket or BLE GATT, they carry the same frames) and returns bytes to write and events to
act on, like h11's ``Connection``. It owns framing, the ``Hello`` exchange and version
negotiation, then either first-contact pairing (``protocol.pairing``) followed at once by
the secure session, or the secure session alone (``protocol.session``) between pinned keys.
Once the session is up every frame is encrypted, and each connection routes the
application messages to the machines it owns: the car's ``ContactsReceiver`` and artwork
bookkeeping, the phone's ``ContactsSender``. The shell gets decisions to carry out (pin
this key, commit this batch, persist this journal, keep this image) and reports back
(``pin_stored``, ``batch_stored``, ``journal_recorded``); what it answers for is held back
until then. Any other message is a ``MessageReceived``; the shell sends with ``send``.

    phone (initiator)                         car (responder)
    Hello(intent) ───────────────────────────▶ lookup peer / PairingAdmission
                  ◀─────────────────────────── Hello(selected)
    [pair]  PairRequest ... PairConfirm (see protocol.pairing)
                                               may_pin? → PinRequested → pin_stored
                  ◀─────────────────────────── PairResult(true)
    NoiseHandshake ──────────────────────────▶
                  ◀─────────────────────────── NoiseHandshake
    ═══════════ encrypted application messages both ways ═══════════

Any ``ProtocolError`` moves the connection to CLOSED: an ``Error`` message is queued for the
peer (encrypted once the session is up), a ``ConnectionFailed`` event carries the typed
error, and every later call raises the same error. The car decides nothing about unknown
peers before the handshake: a ``session`` Hello from a device id that has no pinned key is
refused before any application message is read.

Modules: ``events`` (states and events), ``base`` (what both roles
share), ``car`` and ``phone`` (one role each). This package gathers
their public names. Time is passed in as ``now`` (seconds); nothing here reads a clock.
"""

from __future__ import annotations

from protocol.connection.base import PAIRING_TIMEOUT, PRE_SESSION_MAX_FRAME, SETUP_TIMEOUT
from protocol.connection.car import CarConnection
from protocol.connection.events import (
    ApplyBatch,
    ArtworkReceived,
    Closed,
    ConnectionEvent,
    ConnectionFailed,
    ContactsSynced,
    MessageIgnored,
    MessageReceived,
    MirrorLoader,
    NowPlayingChanged,
    PairingCode,
    PairingComplete,
    PeerHello,
    PeerLookup,
    PinRequested,
    SessionEstablished,
    State,
    SyncCompleted,
    SyncFailed,
    SyncJournal,
    SyncProgress,
)
from protocol.connection.phone import PhoneConnection

__all__ = [
    "PAIRING_TIMEOUT",
    "PRE_SESSION_MAX_FRAME",
    "SETUP_TIMEOUT",
    "ApplyBatch",
    "ArtworkReceived",
    "CarConnection",
    "Closed",
    "ConnectionEvent",
    "ConnectionFailed",
    "ContactsSynced",
    "MessageIgnored",
    "MessageReceived",
    "MirrorLoader",
    "NowPlayingChanged",
    "PairingCode",
    "PairingComplete",
    "PeerHello",
    "PeerLookup",
    "PhoneConnection",
    "PinRequested",
    "SessionEstablished",
    "State",
    "SyncCompleted",
    "SyncFailed",
    "SyncJournal",
    "SyncProgress",
]
