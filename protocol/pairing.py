"""First-contact pairing: numeric comparison with a commitment, or a QR (OOB) secret.

Theory of operation. This is the structure of BLE LE Secure Connections numeric
comparison. The phone sends its static key Pp; the car answers with its static key Pc and a
commitment C = HMAC(Nc, label || Pc || Pp) to a fresh nonce Nc *before* it sees the phone's
nonce Np; then Np is sent, Nc is revealed and checked against C, and both sides hash
everything (keys, nonces, commitment, both Hellos) into the pairing transcript hash PT and
show a 6-digit code taken from PT. A man in the middle has to fix his nonce on each leg
before he learns the other side's, so he cannot steer the two codes to be equal: he wins
with probability 10^-6 per attempt. A code read off a handshake hash *without* the
commitment could be ground out offline in seconds, which is why there is no shortcut here.

After the users accept, each side sends PairConfirm: an HMAC over PT keyed from
HKDF(X25519(static, static)), which proves it holds the static private key it claimed.
The car sends PairResult(True) once its user accepted and the phone's MAC verified.

OOB (QR) mode: the phone scanned a ``PairingUri``; it checks H(Pc) against the URI, the
URI's secret is mixed into the MAC key, and nobody compares a code.

Outcomes. ``Paired`` and ``PairingFailed`` events. A bad message from the peer (wrong
state, bad commitment, bad MAC, OOB mismatch, malformed field) makes ``receive`` raise
``PairingError`` *and* queues ``PairingFailed``; a local rejection or a timeout returns
``PairResult(False, reason)`` for the peer and queues ``PairingFailed``. After any
failure the machine is dead: every further ``receive``/``confirm`` raises the same error.

Exact labels and byte layouts: ``protocol/PROTOCOL.md`` section 5.
"""

from __future__ import annotations

import enum
import hmac
import os
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from protocol.errors import LocalProtocolError, PairingError, Reason
from protocol.identity import KEY_SIZE, Identity, InvalidPeerKeyError, PairingUri
from protocol.messages import Message
from protocol.pairing_messages import (
    CODE_DIGITS,
    MAC_SIZE,
    MAX_NAME,
    METHODS,
    NONCE_SIZE,
    CodeReady,
    PairCommit,
    PairConfirm,
    Paired,
    PairingEvent,
    PairingFailed,
    PairNonce,
    PairRequest,
    PairResult,
    PairReveal,
    Rng,
    commitment,
    confirm_key,
    confirm_mac,
    numeric_code,
    transcript_hash,
)
from protocol.ratelimit import PairingRateLimiter

__all__ = [
    "CarPairing",
    "CodeReady",
    "PairCommit",
    "PairConfirm",
    "PairNonce",
    "PairRequest",
    "PairResult",
    "PairReveal",
    "Paired",
    "PairingEvent",
    "PairingFailed",
    "PairingRateLimiter",
    "PhonePairing",
    "commitment",
    "confirm_key",
    "confirm_mac",
    "numeric_code",
    "transcript_hash",
]


class _State(enum.Enum):
    IDLE = "idle"  # phone, before start()
    WAIT_REQUEST = "wait-request"  # car
    WAIT_COMMIT = "wait-commit"  # phone
    WAIT_NONCE = "wait-nonce"  # car
    WAIT_REVEAL = "wait-reveal"  # phone
    CONFIRMING = "confirming"  # both: waiting for the local user and/or the peer's MAC
    DONE = "done"
    FAILED = "failed"


_Handler = Callable[[Any, Any], list[Message]]


class _Pairing:
    """What both sides share: failure handling, timeout, confirmation bookkeeping."""

    role: ClassVar[str]
    _table: ClassVar[dict[tuple[_State, type[Message]], _Handler]]

    def __init__(
        self,
        identity: Identity,
        *,
        transcript: bytes,
        now: float,
        timeout: float,
        rng: Rng,
        state: _State,
        code_digits: int,
    ) -> None:
        if not 1 <= code_digits <= CODE_DIGITS:
            raise ValueError(f"a code has 1 to {CODE_DIGITS} digits, not {code_digits}")
        self._digits = code_digits
        self._identity = identity
        self._transcript = transcript
        self._deadline = now + timeout
        self._rng = rng
        self._state = state
        self._events: deque[PairingEvent] = deque()
        self._error: PairingError | None = None
        self._method = "numeric"
        self._secret = b""
        self._shared = self._nc = self._np = self._commit = self._pt = self._key = b""
        self._user_ok = self._peer_mac_ok = False
        self.code: str | None = None
        self.peer_name = ""
        self.peer_public_key: bytes | None = None

    @property
    def method(self) -> str:
        """``"numeric"`` (a compared code) or ``"oob"`` (a scanned QR secret)."""
        return self._method

    def receive(self, msg: Message, now: float) -> list[Message]:
        """Handle one message from the peer.

        Args:
            msg: a decoded message (pairing messages; anything else is unexpected).
            now: the current time in seconds.

        Returns:
            Messages to send to the peer, in order.

        Raises:
            PairingError: the peer broke the protocol (the machine is dead afterwards).
        """
        aborting = isinstance(msg, PairResult) and not msg.accepted
        if aborting and self._state is _State.FAILED:
            return []  # both sides gave up at once (e.g. a timeout): nothing more to say
        self._check_alive()
        if aborting and self._state is not _State.DONE:
            assert isinstance(msg, PairResult)
            return self._peer_aborted(msg)
        if self._state is not _State.DONE and now >= self._deadline:
            return self._abort(Reason.TIMEOUT, "pairing took too long")
        handler = self._table.get((self._state, type(msg)))
        if handler is None:
            detail = f"{type(msg).__name__} while {self._state.value}"
            if self._state is _State.DONE:
                raise PairingError(Reason.UNEXPECTED_MESSAGE, detail)
            raise self._fail(Reason.UNEXPECTED_MESSAGE, detail)
        return handler(self, msg)

    def confirm(self, accepted: bool, now: float) -> list[Message]:
        """Pass on this device's user's decision about the shown code.

        Returns:
            ``[PairConfirm]`` (plus ``PairResult(True)`` on the car when that completes
            it), or ``[PairResult(False, "rejected")]``.

        Raises:
            LocalProtocolError: no code is waiting for a decision.
            PairingError: the pairing already failed.
        """
        self._check_alive()
        if self._state is not _State.DONE and now >= self._deadline:
            return self._abort(Reason.TIMEOUT, "pairing took too long")
        if self._state is not _State.CONFIRMING or self._user_ok:
            detail = f"no code awaits a decision ({self._state.value})"
            raise LocalProtocolError(Reason.STATE, detail)
        if not accepted:
            return self._abort(Reason.REJECTED, "rejected on this device")
        self._user_ok = True
        return [PairConfirm(self._own_mac()), *self._maybe_finish()]

    def tick(self, now: float) -> list[Message]:
        """Check the timeout: returns ``[PairResult(False, "timeout")]`` once it passes."""
        if self._state in (_State.DONE, _State.FAILED) or now < self._deadline:
            return []
        return self._abort(Reason.TIMEOUT, "pairing took too long")

    def next_event(self) -> PairingEvent | None:
        """Return the next event, or None."""
        return self._events.popleft() if self._events else None

    # -- shared steps ---------------------------------------------------------------------
    def _derive(self, pp: bytes, pc: bytes, name: str) -> None:
        """Compute PT, the code and the confirmation key once both nonces are known."""
        self._pt = transcript_hash(
            self._transcript, self._method, name, pp, pc, self._commit, self._np, self._nc
        )
        self._key = confirm_key(self._shared, self._np, self._nc, self._secret)
        if self._method == "numeric":
            self.code = numeric_code(self._pt, self._digits)
            self._events.append(CodeReady(self.code))

    def _after_derive(self) -> list[Message]:
        """In OOB mode there is no user step: confirm at once."""
        if self._method == "numeric":
            return []
        self._user_ok = True
        return [PairConfirm(self._own_mac())]

    def _own_mac(self) -> bytes:
        return confirm_mac(self._key, self.role, self._pt)

    def _on_confirm(self, msg: PairConfirm) -> list[Message]:
        peer_role = "phone" if self.role == "car" else "car"
        expected = confirm_mac(self._key, peer_role, self._pt)
        if self._peer_mac_ok:
            raise self._fail(Reason.UNEXPECTED_MESSAGE, "second PairConfirm")
        if not hmac.compare_digest(msg.mac, expected):
            # Different static keys or secrets on the two ends: a man in the middle, or a
            # QR secret the phone never saw.
            raise self._fail(Reason.CONFIRMATION_FAILED, f"the {peer_role}'s MAC is wrong")
        self._peer_mac_ok = True
        return self._maybe_finish()

    def _maybe_finish(self) -> list[Message]:
        return []

    def _dh(self, peer_key: bytes) -> bytes:
        try:
            return self._identity.dh(peer_key)
        except InvalidPeerKeyError as exc:
            raise self._fail(Reason.MALFORMED, exc.detail) from exc

    def _need(self, ok: bool, detail: str) -> None:
        if not ok:
            raise self._fail(Reason.MALFORMED, detail)

    # -- failure ----------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._error is not None:
            raise PairingError(self._error.reason, f"pairing already failed: {self._error.detail}")

    def _fail(self, reason: Reason, detail: str) -> PairingError:
        """Kill the machine; return the error for the caller to raise."""
        self._state = _State.FAILED
        self._error = PairingError(reason, detail)
        self._events.append(PairingFailed(reason, detail))
        return self._error

    def _abort(self, reason: Reason, detail: str) -> list[Message]:
        """Fail for a local reason and tell the peer."""
        self._fail(reason, detail)
        return [PairResult(False, reason.value)]

    def _peer_aborted(self, msg: PairResult) -> list[Message]:
        try:
            reason = Reason(msg.reason)
        except ValueError:
            reason = Reason.PEER_ERROR
        self._fail(reason, f"the peer ended pairing: {msg.reason[:100]}")
        return []


class CarPairing(_Pairing):
    """The car's side of pairing.

    Args:
        identity: the car's static key pair.
        transcript: the two encoded Hellos, bound into the code and the MACs.
        now: the current time in seconds; the whole pairing must end by ``now + timeout``.
        timeout: seconds for the whole pairing, the users' decisions included.
        oob_secret: the secret of the ``PairingUri`` the car shows, if any; without it a
            phone asking for ``"oob"`` is refused with ``oob-mismatch``.
        rng: source of nonces (tests and vectors pass a fixed one).
        code_digits: the code's length, 6 (``CODE_DIGITS``) on the wire; tests lower it
            to measure a man in the middle's 10^-digits odds (1 to 6, else ValueError).
            No CLI or shell passes it.
    """

    role = "car"

    def __init__(
        self,
        identity: Identity,
        *,
        transcript: bytes,
        now: float,
        timeout: float = 60.0,
        oob_secret: bytes | None = None,
        rng: Rng = os.urandom,
        code_digits: int = CODE_DIGITS,
    ) -> None:
        super().__init__(
            identity,
            transcript=transcript,
            now=now,
            timeout=timeout,
            rng=rng,
            state=_State.WAIT_REQUEST,
            code_digits=code_digits,
        )
        self._oob_secret = oob_secret

    def _on_request(self, msg: PairRequest) -> list[Message]:
        self._need(len(msg.public_key) == KEY_SIZE, "public key is not 32 bytes")
        self._need(msg.method in METHODS, f"unknown method {msg.method[:20]!r}")
        self._need(len(msg.name) <= MAX_NAME, "name too long")
        if msg.method == "oob":
            if self._oob_secret is None:
                raise self._fail(Reason.OOB_MISMATCH, "no pairing QR code is showing")
            self._secret = self._oob_secret
        self._method = msg.method
        self.peer_public_key, self.peer_name = msg.public_key, msg.name
        self._shared = self._dh(msg.public_key)
        self._nc = self._rng(NONCE_SIZE)
        self._commit = commitment(self._nc, self._identity.public_key, msg.public_key)
        self._state = _State.WAIT_NONCE
        return [PairCommit(self._identity.public_key, self._commit)]

    def _on_nonce(self, msg: PairNonce) -> list[Message]:
        self._need(len(msg.nonce) == NONCE_SIZE, "nonce is not 16 bytes")
        self._np = msg.nonce
        assert self.peer_public_key is not None
        self._derive(self.peer_public_key, self._identity.public_key, self.peer_name)
        self._state = _State.CONFIRMING
        return [PairReveal(self._nc), *self._after_derive(), *self._maybe_finish()]

    def _maybe_finish(self) -> list[Message]:
        if not (self._user_ok and self._peer_mac_ok):
            return []
        assert self.peer_public_key is not None
        self._state = _State.DONE
        self._events.append(Paired(self.peer_public_key, self.peer_name))
        return [PairResult(True, "")]

    _table: ClassVar[dict[tuple[_State, type[Message]], _Handler]] = {
        (_State.WAIT_REQUEST, PairRequest): _on_request,
        (_State.WAIT_NONCE, PairNonce): _on_nonce,
        (_State.CONFIRMING, PairConfirm): _Pairing._on_confirm,
    }


class PhonePairing(_Pairing):
    """The phone's side of pairing; call ``start()`` first.

    Args:
        identity: the phone's static key pair.
        name: the phone's name, shown on the car.
        transcript: the two encoded Hellos.
        now: the current time in seconds.
        timeout: seconds for the whole pairing.
        oob: the scanned ``PairingUri`` to pair by QR instead of comparing a code.
        rng: source of nonces (tests and vectors pass a fixed one).
        code_digits: the code's length, as for ``CarPairing`` (tests only).
    """

    role = "phone"

    def __init__(
        self,
        identity: Identity,
        name: str,
        *,
        transcript: bytes,
        now: float,
        timeout: float = 60.0,
        oob: PairingUri | None = None,
        rng: Rng = os.urandom,
        code_digits: int = CODE_DIGITS,
    ) -> None:
        super().__init__(identity, transcript=transcript, now=now, timeout=timeout, rng=rng,
                         state=_State.IDLE, code_digits=code_digits)  # fmt: skip
        self._name = name
        self._oob = oob
        if oob is not None:
            self._method, self._secret = "oob", oob.secret

    def start(self) -> list[Message]:
        """Return ``[PairRequest]``, the first pairing message.

        Raises:
            LocalProtocolError: already started.
        """
        self._check_alive()
        if self._state is not _State.IDLE:
            raise LocalProtocolError(Reason.STATE, "pairing already started")
        self._state = _State.WAIT_COMMIT
        return [PairRequest(self._identity.public_key, self._name, self._method)]

    def _on_commit(self, msg: PairCommit) -> list[Message]:
        self._need(len(msg.public_key) == KEY_SIZE, "public key is not 32 bytes")
        self._need(len(msg.commitment) == MAC_SIZE, "commitment is not 32 bytes")
        self._need(msg.public_key != self._identity.public_key, "the car sent our own key")
        if self._oob is not None and not self._oob.matches(msg.public_key):
            raise self._fail(Reason.OOB_MISMATCH, "the car's key is not the one in the QR code")
        self.peer_public_key, self._commit = msg.public_key, msg.commitment
        self._shared = self._dh(msg.public_key)
        self._np = self._rng(NONCE_SIZE)
        self._state = _State.WAIT_REVEAL
        return [PairNonce(self._np)]

    def _on_reveal(self, msg: PairReveal) -> list[Message]:
        self._need(len(msg.nonce) == NONCE_SIZE, "nonce is not 16 bytes")
        assert self.peer_public_key is not None
        expected = commitment(msg.nonce, self.peer_public_key, self._identity.public_key)
        if not hmac.compare_digest(expected, self._commit):
            raise self._fail(Reason.COMMITMENT_MISMATCH, "Nc does not open the car's commitment")
        self._nc = msg.nonce
        self._derive(self._identity.public_key, self.peer_public_key, self._name)
        self._state = _State.CONFIRMING
        return self._after_derive()

    def _on_result(self, msg: PairResult) -> list[Message]:
        # Only accepted=True gets here; a rejection is handled before the table.
        if not self._peer_mac_ok:
            raise self._fail(Reason.CONFIRMATION_FAILED, "the car claimed success unconfirmed")
        if not self._user_ok:
            raise self._fail(Reason.UNEXPECTED_MESSAGE, "PairResult before our confirmation")
        assert self.peer_public_key is not None
        self._state = _State.DONE
        self._events.append(Paired(self.peer_public_key, ""))
        return []

    _table: ClassVar[dict[tuple[_State, type[Message]], _Handler]] = {
        (_State.WAIT_COMMIT, PairCommit): _on_commit,
        (_State.WAIT_REVEAL, PairReveal): _on_reveal,
        (_State.CONFIRMING, PairConfirm): _Pairing._on_confirm,
        (_State.CONFIRMING, PairResult): _on_result,
    }
