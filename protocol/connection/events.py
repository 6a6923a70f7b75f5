"""What a connection tells its shell: its states and events (``protocol.connection``).

Events are declarative nouns. Most report what happened (``PeerHello``,
``SessionEstablished``); a few are decisions the shell must carry out and answer, because
only the shell can do I/O:

    PinRequested     car: pin this key (store it), then ``pin_stored``/``pin_failed``
    ApplyBatch       car: commit this contacts batch, then ``batch_stored``
    SyncJournal      phone: persist these snapshot edits, then ``journal_recorded``

A connection holds back what depends on the answer (the ``PairResult``, the ack, the
replies to the car), so nothing the peer sees can run ahead of the shell's storage.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.errors import ProtocolError
from protocol.media import Artwork, NowPlaying
from protocol.messages import Message
from protocol.session import SessionSecrets
from protocol.sync import (
    ApplyBatch,
    ContactsSynced,
    MirrorState,
    SnapshotEdit,
    SyncCompleted,
    SyncProgress,
)

__all__ = [
    "ApplyBatch",
    "ArtworkReceived",
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
    "PinRequested",
    "SessionEstablished",
    "State",
    "SyncCompleted",
    "SyncFailed",
    "SyncJournal",
    "SyncProgress",
]


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
class PinRequested:
    """Car: both users confirmed and the policy agrees; store ``peer_public_key`` now.

    Answer with ``pin_stored`` (then ``PairResult(true)`` goes out) or ``pin_failed``
    (the phone is told why, and pins nothing either).
    """

    peer_device_id: str
    peer_name: str
    peer_public_key: bytes


@dataclass(frozen=True)
class PairingComplete:
    """Pairing succeeded and (on the car) the key is pinned; the session follows."""

    peer_device_id: str
    peer_name: str
    peer_public_key: bytes


@dataclass(frozen=True)
class SessionEstablished:
    """The secure session is up; application messages may flow.

    ``secrets`` is for a shell's key log (``--keylog``) only; it is never logged (no repr).
    """

    peer_device_id: str
    peer_public_key: bytes
    secrets: SessionSecrets | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class MessageReceived:
    """An application message arrived that no machine of the connection handles."""

    message: Message


@dataclass(frozen=True)
class MessageIgnored:
    """An application message arrived and was dropped (``why`` says why; log it)."""

    message: Message
    why: str


@dataclass(frozen=True)
class NowPlayingChanged:
    """Car: the phone's now-playing state; ``request_artwork`` if the image is missing."""

    now_playing: NowPlaying


@dataclass(frozen=True)
class ArtworkReceived:
    """Car: an image the car asked for (by hash) arrived; keep it."""

    artwork: Artwork


@dataclass(frozen=True)
class SyncJournal:
    """Phone: persist ``edits`` to the sync snapshot, then call ``journal_recorded``."""

    edits: list[SnapshotEdit]


@dataclass(frozen=True)
class SyncFailed:
    """Phone: the car's sync replies broke the protocol; the sync is over, not the session."""

    error: ProtocolError


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
    | PinRequested
    | PairingComplete
    | SessionEstablished
    | MessageReceived
    | MessageIgnored
    | NowPlayingChanged
    | ArtworkReceived
    | ApplyBatch
    | ContactsSynced
    | SyncJournal
    | SyncProgress
    | SyncCompleted
    | SyncFailed
    | ConnectionFailed
    | Closed
)

PeerLookup = Callable[[str], bytes | None]
"""Return the pinned public key of a device id, or None if it is not paired."""

MirrorLoader = Callable[[str], MirrorState]
"""Return what the car holds for a paired phone (anchor, digests, photo hashes)."""
