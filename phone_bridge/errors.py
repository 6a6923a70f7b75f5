"""The phone's one error tree, and the table that maps every other failure onto it.

    BridgeError                 exit 1  root: a user-facing failure, one line and an exit code
    ├── BadInput                exit 2  bad usage or bad input; nothing was sent
    │   └── MediaSourceError    exit 2  nothing playable at a media path (also a ValueError)
    ├── CarNotFound             exit 3  no car matches what the user named
    ├── CarUnreachable          exit 3  no transport reached the car, or the dial failed
    ├── PairingFailed           exit 4  rejected, mismatch, window closed, rate limited,
    │                                   timeout, or the car's key is not the scanned QR code's
    ├── NotPaired               exit 5  not paired here, or the car no longer knows this phone
    ├── TooManyDeletes          exit 7  the sync would delete more than half of the car's
    │                                   copy (and over 20 contacts); nothing was sent
    ├── CredentialsRefused      exit 8  the contacts source (a CardDAV server) refused our
    │                                   credentials (HTTP 401, or 403 on discovery)
    ├── SourceUnavailable       exit 1  the contacts source failed, timed out or sent a
    │                                   response we cannot read; nothing was sent
    ├── LinkClosed              exit 1  the car ended the session, or the transport dropped
    ├── CarTimedOut             exit 1  the car stopped answering
    ├── ProtocolFailure         exit 1  any other protocol error (ours or the car's)
    └── StateError              exit 1  the state directory or a file in it is unusable

Exit codes (the README's table): ``EXIT_OK`` 0, ``EXIT_ERROR`` 1, ``EXIT_BAD_INPUT`` 2,
``EXIT_NOT_FOUND`` 3, ``EXIT_PAIRING`` 4, ``EXIT_NOT_PAIRED`` 5, ``EXIT_PARTIAL`` 6, which
is no error: the sync succeeded but skipped malformed cards, so no class carries it, and
``EXIT_TOO_MANY_DELETES`` 7 (``--allow-deletes`` lets such a sync through) and
``EXIT_CREDENTIALS`` 8 (a CardDAV server refused the user and password).

Foreign errors reach the CLI from two other trees and from asyncio; ``explain`` maps them
with one table, first match wins:

    protocol.errors.PairingError (oob-mismatch, from the car)   PairingFailed ("refused")
    protocol.errors.PairingError                                PairingFailed (by reason)
    protocol.errors.SessionError (unknown-peer, ours)           NotPaired ("run 'pair'")
    protocol.errors.SessionError (car: handshake-failed, unknown-peer)  NotPaired
    protocol.errors.ProtocolError                               ProtocolFailure
    shell.errors.TransportError                                 CarUnreachable
    shell.errors.KeyFileError                                   StateError
    TimeoutError                                                CarTimedOut
    anything else                                               BridgeError ("Type: message")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocol.errors import PairingError, ProtocolError, Reason, SessionError
from shell.errors import KeyFileError, TransportError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CREDENTIALS",
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_NOT_PAIRED",
    "EXIT_OK",
    "EXIT_PAIRING",
    "EXIT_PARTIAL",
    "EXIT_TOO_MANY_DELETES",
    "FOREIGN_ERRORS",
    "BadInput",
    "BridgeError",
    "CarNotFound",
    "CarTimedOut",
    "CarUnreachable",
    "CredentialsRefused",
    "LinkClosed",
    "MediaSourceError",
    "NotPaired",
    "PairingFailed",
    "ProtocolFailure",
    "SourceUnavailable",
    "StateError",
    "TooManyDeletes",
    "explain",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_FOUND = 3
EXIT_PAIRING = 4
EXIT_NOT_PAIRED = 5
EXIT_PARTIAL = 6
EXIT_TOO_MANY_DELETES = 7
EXIT_CREDENTIALS = 8


class BridgeError(Exception):
    """Root of the phone's errors: a one-line message and the exit code the CLI returns.

    Args:
        message: the line the user sees after ``phone-bridge: error:``.
        code: overrides the class's exit code (kept for callers that predate the
            subclasses; prefer raising the subclass that carries the code).
    """

    code: int = EXIT_ERROR

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class BadInput(BridgeError):
    """Bad usage or bad input (a file that is not a vCard, a malformed URI): nothing is sent."""

    code = EXIT_BAD_INPUT


class MediaSourceError(BadInput, ValueError):
    """Nothing playable was found at a media path.

    It is about the user's files, not a peer, so like ``VCardError`` it is not a
    ``ProtocolError``.

    Args:
        path: the folder or playlist that was given.
        reason: a one-line explanation.
        skipped: each file that was tried and skipped, with why.
    """

    def __init__(
        self, path: Path, reason: str, skipped: list[tuple[Path, str]] | None = None
    ) -> None:
        self.path = path
        self.reason = reason
        self.skipped = list(skipped or [])
        names = ", ".join(p.name for p, _ in self.skipped[:5])
        more = f" (+{len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
        tail = f"; skipped: {names}{more}" if names else ""
        super().__init__(f"{path}: {reason}{tail}")


class CarNotFound(BridgeError):
    """No car matches what the user named."""

    code = EXIT_NOT_FOUND


class CarUnreachable(BridgeError):
    """No transport could reach the car (from ``shell.errors.TransportError``)."""

    code = EXIT_NOT_FOUND


class PairingFailed(BridgeError):
    """Pairing failed: rejected, mismatch, window closed, rate limited or timed out."""

    code = EXIT_PAIRING


class NotPaired(BridgeError):
    """Not paired with this car here, or the car no longer knows this phone."""

    code = EXIT_NOT_PAIRED


class TooManyDeletes(BridgeError):
    """The sync would delete more than half of the car's copy (``protocol.sync.guard``).

    Nothing was sent and the car keeps its contacts; ``--allow-deletes`` lets it through.
    """

    code = EXIT_TOO_MANY_DELETES


class CredentialsRefused(BridgeError):
    """The contacts source refused our credentials (``phone_bridge.carddav``): wrong user,
    wrong or revoked (app) password. Nothing was sent to the car."""

    code = EXIT_CREDENTIALS


class SourceUnavailable(BridgeError):
    """The contacts source failed: unreachable, timed out, an HTTP error, or a response too
    big or unreadable. Nothing was sent, and nothing stored was lost."""


class LinkClosed(BridgeError):
    """The car ended the session (``Bye``) or the transport dropped."""


class CarTimedOut(BridgeError):
    """The car stopped answering (from ``TimeoutError``)."""


class ProtocolFailure(BridgeError):
    """A protocol error with no more specific meaning for the user."""


class StateError(BridgeError):
    """The state directory cannot be read or written, or a file in it is malformed."""


# -- the mapping table ------------------------------------------------------------------
_PAIRING_MESSAGES = {
    Reason.REJECTED: "pairing was rejected",
    Reason.PAIRING_CLOSED: "the car's pairing window is closed; open it on the car and retry",
    Reason.COMMITMENT_MISMATCH: "pairing aborted: the car's nonce did not match its commitment "
    "(possible man in the middle)",
    Reason.CODE_MISMATCH: "the codes did not match; pairing aborted",
    Reason.CONFIRMATION_FAILED: "key confirmation failed (codes differ: possible man in the "
    "middle); pairing aborted",
    Reason.TIMEOUT: "pairing timed out",
    Reason.PAIRING_BUSY: "another phone is pairing with the car; retry shortly",
    Reason.RATE_LIMITED: "too many failed pairing attempts on this car; wait and retry (the car "
    "backs off for up to 15 minutes)",
    Reason.OOB_MISMATCH: "the car's key does not match the scanned code; pairing aborted "
    "(a different car, or a tampered code)",
}
# The car refused the scanned secret: it says oob-mismatch too, but the key was not at fault.
_CAR_REFUSED_OOB = (
    "the car refused the scanned code (already used, replaced, expired, or no code is "
    "showing); show a new code on the car and scan it again"
)
# A car refuses a phone it does not know as it refuses a wrong key (PROTOCOL.md 6.1), so the
# phone cannot tell the two apart; pairing again is the cure for both.
_UNKNOWN_TO_CAR = (
    "the car refused the session: it does not know this phone or its key "
    "(unpaired on the car?); run 'pair' again"
)


def _car_refused_oob(exc: Any) -> bool:
    return bool(exc.reason is Reason.OOB_MISMATCH and exc.from_peer)


def _unknown_peer(exc: Any) -> bool:
    # unknown-peer is what cars before the fix of the paired-phone oracle said.
    return bool(exc.from_peer and exc.reason in (Reason.UNKNOWN_PEER, Reason.HANDSHAKE_FAILED))


def _car_unknown_here(exc: Any) -> bool:
    return bool(exc.reason is Reason.UNKNOWN_PEER and not exc.from_peer)


def _always(exc: Any) -> bool:
    return True


# (foreign type, does this row apply, the phone's error for it): first match wins.
FOREIGN_ERRORS: tuple[
    tuple[type[BaseException], Callable[[Any], bool], Callable[[Any], BridgeError]], ...
] = (
    (PairingError, _car_refused_oob, lambda e: PairingFailed(_CAR_REFUSED_OOB)),
    (PairingError, _always, lambda e: PairingFailed(_PAIRING_MESSAGES.get(e.reason, str(e)))),
    (SessionError, _car_unknown_here, lambda e: NotPaired(f"{e.detail}; run 'pair' first")),
    (SessionError, _unknown_peer, lambda e: NotPaired(_UNKNOWN_TO_CAR)),
    (ProtocolError, _always, lambda e: ProtocolFailure(f"protocol error: {e}")),
    (TransportError, _always, lambda e: CarUnreachable(str(e))),
    (KeyFileError, _always, lambda e: StateError(f"{type(e).__name__}: {e}")),
    (TimeoutError, _always, lambda e: CarTimedOut("the car stopped answering (timed out)")),
)


def explain(exc: BaseException) -> BridgeError:
    """Translate any failure of a flow into the phone's error tree.

    Args:
        exc: what a flow raised.

    Returns:
        ``exc`` itself if it is a ``BridgeError``, else the first ``FOREIGN_ERRORS`` row's
        error for it, else a ``BridgeError`` naming its type (exit 1).
    """
    if isinstance(exc, BridgeError):
        return exc
    for kind, applies, make in FOREIGN_ERRORS:
        if isinstance(exc, kind) and applies(exc):
            return make(exc)
    return BridgeError(f"{type(exc).__name__}: {exc}")
