"""The one error tree of the CarHub protocol.

    ProtocolError                     base; every error carries a ``reason`` enum
    ├── LocalProtocolError            we misused the API (a bug on our side)
    │   └── DeletesRefused            a sync would empty the car (protocol.sync.guard)
    └── RemoteProtocolError           the peer sent something we refuse
        ├── FramingError              bad length prefix, frame over the hard maximum
        ├── MessageError              undecodable or schema-invalid message
        ├── VersionError              no common version, or a downgrade attempt
        ├── PairingError              rejected, commitment/code/MAC mismatch, timeout, rate limit
        │   ├── PairingUriError       a scanned pairing URI does not parse (also a ValueError)
        │   └── InvalidPeerKeyError   a malformed or low-order peer key (also a SessionError)
        ├── SessionError              unknown key, replay, reorder, tamper, bad handshake
        │   └── InvalidPeerKeyError   (the same class: either machine's callers catch it)
        └── SyncError                 anchor mismatch, batch out of order, bad change set

A refusal by the car's pairing policy (``protocol.admission``) is not an exception: it is a
``Refusal`` value carrying a ``Reason``, which the connection turns into a ``PairingError``.

``VCardError`` is separate: it is about a user's file, not a peer, and carries a line
number. Importers collect them instead of raising, so one bad card never stops a batch.
"""

from __future__ import annotations

import enum

__all__ = [
    "FramingError",
    "InvalidPeerKeyError",
    "LocalProtocolError",
    "MessageError",
    "PairingError",
    "PairingUriError",
    "ProtocolError",
    "Reason",
    "RemoteProtocolError",
    "SessionError",
    "SyncError",
    "VCardError",
    "VersionError",
]


class Reason(enum.StrEnum):
    """Why a protocol operation failed; stable strings, also sent in ``Error`` messages."""

    # framing / messages
    FRAME_TOO_LARGE = "frame-too-large"
    MALFORMED = "malformed"
    UNEXPECTED_MESSAGE = "unexpected-message"
    # versions
    NO_COMMON_VERSION = "no-common-version"
    DOWNGRADE = "downgrade"
    # pairing
    REJECTED = "rejected"
    PAIRING_CLOSED = "pairing-closed"
    PAIRING_BUSY = "pairing-busy"
    COMMITMENT_MISMATCH = "commitment-mismatch"
    CODE_MISMATCH = "code-mismatch"
    CONFIRMATION_FAILED = "confirmation-failed"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate-limited"
    OOB_MISMATCH = "oob-mismatch"
    ID_MISMATCH = "id-mismatch"
    # session
    UNKNOWN_PEER = "unknown-peer"
    HANDSHAKE_FAILED = "handshake-failed"
    REPLAY = "replay"
    REORDER = "reorder"
    TAMPERED = "tampered"
    # sync
    ANCHOR_MISMATCH = "anchor-mismatch"
    BAD_BATCH = "bad-batch"
    # generic
    STATE = "invalid-state"
    PEER_ERROR = "peer-error"


class ProtocolError(Exception):
    """Base of every protocol error.

    Args:
        reason: a stable machine-readable reason.
        detail: a one-line human explanation.
        from_peer: the peer reported this error to us (it is not echoed back).
    """

    def __init__(self, reason: Reason, detail: str = "", *, from_peer: bool = False) -> None:
        self.reason = reason
        self.detail = detail
        self.from_peer = from_peer  # True when this mirrors the peer's own Error message
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


class LocalProtocolError(ProtocolError):
    """We called the API in a state that does not allow it."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes or a message that we refuse."""


class FramingError(RemoteProtocolError):
    """A frame's length prefix is bad or over the hard maximum."""


class MessageError(RemoteProtocolError):
    """A frame's payload is not a valid message."""


class VersionError(RemoteProtocolError):
    """No common protocol version, or a downgrade was detected."""


class PairingError(RemoteProtocolError):
    """Pairing failed; ``reason`` says how."""


class SessionError(RemoteProtocolError):
    """The secure session failed or was attacked; ``reason`` says how."""


class PairingUriError(PairingError, ValueError):
    """A pairing URI could not be parsed (also a ``ValueError``)."""


class InvalidPeerKeyError(PairingError, SessionError):
    """A peer's public key is malformed or of low order (no usable shared secret).

    It is both a ``PairingError`` and a ``SessionError`` so either state machine's callers
    catch it; the machines themselves translate it into their own reason.
    """


class SyncError(RemoteProtocolError):
    """A contacts sync step was refused; ``reason`` says how."""


class VCardError(ValueError):
    """A vCard could not be imported.

    Args:
        line: 1-based line number in the source file where the card (or bad line) starts.
        reason: a one-line explanation.
    """

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}")
