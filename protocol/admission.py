"""The car's pairing policy: who may pair now, and whether a finished pairing may be pinned.

Theory of operation. One ``PairingAdmission`` per car decides, from nothing but the calls
it is given and the ``now`` passed in:

* the **window**: pairing is possible only while it is open; it closes itself at its
  deadline (a window of 0 s stays open until closed), and a closing window takes the QR
  code with it;
* **one pairing at a time**, as in Bluetooth: a second request while one is on show would
  let an attacker put a look-alike request beside the real one;
* **rate limits** keyed two ways, the claimed phone id and the peer's address (a device id
  in a Hello is only a claim until pairing), and one **car-wide budget** of failed
  pairings with a doubling lockout, against a stranger who changes id and address (a
  fresh LAN address, a random BLE address) every attempt. Only an admitted attempt spends
  the car-wide budget: a Hello refused while the window is closed, busy or locked costs
  the car nothing, so it must not be able to lock the car's own user out;
* the **QR secret** (``PairingUri``): one on show at a time, replaced by a newer one,
  expiring with the window (or after ``OOB_LIFETIME``), and consumed by the first pairing
  that presents it, compared in constant time.

Transitions of one connection's attempt (the ``holder`` is any hashable token, the car's
connection object itself)::

    request()  --open, not limited, slot free-->  admitted (holds the slot)
               --otherwise-->                     Refusal(pairing-closed | rate-limited
                                                          | pairing-busy)
    may_pin()  --window open, and numeric or the OOB secret on show-->  None (secret used)
               --otherwise-->                     Refusal(pairing-closed | oob-mismatch)
    finished() frees the slot; ``paired=False`` counts one failure per phone id and peer,
               and on the car-wide budget if the attempt had been admitted

Refusals are values, not exceptions: the connection turns one into a ``PairingError`` and
the ``Error`` the phone sees, so every reason comes from ``protocol.errors.Reason``.
"""

from __future__ import annotations

import hmac
from collections.abc import Hashable
from dataclasses import dataclass

from protocol.errors import PairingError, Reason
from protocol.identity import PairingUri
from protocol.ratelimit import FailureBudget, PairingRateLimiter

__all__ = ["OOB_LIFETIME", "PairingAdmission", "Refusal"]

# Seconds a pairing QR code stays valid when the pairing window has no end of its own.
OOB_LIFETIME = 120.0
# 5 failures a minute per phone id or peer address, then 30 s of lockout: a person retyping
# a code is never slowed, a script guessing is (each guess also costs a human's accept).
PER_KEY_ATTEMPTS = 5
# Looser, since every phone shares it, but it stops an attacker rotating fresh ids and
# addresses: 20 failed pairings a minute lock pairing car-wide for 30 s, the next lockout
# of the streak for 60 s, then 120 s ... up to 15 min. A sustained attack so gets about 20
# tries per 15 min (instead of 20 per 30 s), and the owner still pairs between lockouts.
GLOBAL_ATTEMPTS = 20
LIMIT_WINDOW = 60.0
LOCKOUT = 30.0
MAX_LOCKOUT = 15 * 60.0


@dataclass(frozen=True)
class Refusal:
    """Why the policy says no; ``error()`` is what the connection raises."""

    reason: Reason
    detail: str

    def error(self) -> PairingError:
        """Return the ``PairingError`` carrying this refusal."""
        return PairingError(self.reason, self.detail)


class PairingAdmission:
    """The car's pairing window, pairing slot, rate limits and QR secret; pure.

    Args:
        open_: whether the window starts open.
        closes_at: when a window that starts open closes (None: never by itself).
    """

    def __init__(self, *, open_: bool = False, closes_at: float | None = None) -> None:
        self._open = open_
        self._closes_at = closes_at if open_ else None
        self._holder: Hashable | None = None
        self._uri: tuple[PairingUri, float] | None = None
        self._by_phone = PairingRateLimiter(PER_KEY_ATTEMPTS, LIMIT_WINDOW, LOCKOUT)
        self._by_peer = PairingRateLimiter(PER_KEY_ATTEMPTS, LIMIT_WINDOW, LOCKOUT)
        self._global = FailureBudget(GLOBAL_ATTEMPTS, LIMIT_WINDOW, LOCKOUT, MAX_LOCKOUT)

    # -- the window -----------------------------------------------------------------------
    def is_open(self, now: float) -> bool:
        """Whether new phones may pair at ``now``; a window past its deadline closes here."""
        if self._open and self._closes_at is not None and now >= self._closes_at:
            self.close()
        return self._open

    @property
    def closes_at(self) -> float | None:
        """When the open window closes by itself (None: open without end, or closed)."""
        return self._closes_at

    def open(self, now: float, seconds: float) -> None:
        """Open the window for ``seconds`` (0 or less: until ``close``)."""
        self._open = True
        self._closes_at = now + seconds if seconds > 0 else None

    def close(self) -> None:
        """Close the window; the QR code on show, if any, is dropped with it."""
        self._open, self._closes_at, self._uri = False, None, None

    # -- the QR secret --------------------------------------------------------------------
    def show_uri(self, uri: PairingUri, now: float, window: float) -> float:
        """Put ``uri`` on show, replacing any earlier one; open the window if it is closed.

        Args:
            uri: a freshly made ``PairingUri`` (its secret is the one-time proof).
            now: the current time.
            window: seconds to open a closed window for (0 or less: until closed).

        Returns:
            When the code expires: with the window, or ``OOB_LIFETIME`` after ``now`` when
            the window has no end.
        """
        if not self.is_open(now):
            self.open(now, window)
        expires_at = self._closes_at if self._closes_at is not None else now + OOB_LIFETIME
        self._uri = (uri, expires_at)
        return expires_at

    def shown_uri(self, now: float) -> tuple[PairingUri, float] | None:
        """Return the code on show and its expiry, or None (none, used, expired, closed)."""
        if self._uri is not None and (not self.is_open(now) or now >= self._uri[1]):
            self._uri = None
        return self._uri

    def oob_secret(self, now: float) -> bytes | None:
        """The secret of the code on show, which an ``"oob"`` pairing must present."""
        shown = self.shown_uri(now)
        return shown[0].secret if shown is not None else None

    # -- one attempt ----------------------------------------------------------------------
    def request(self, holder: Hashable, phone_id: str, peer: str, now: float) -> Refusal | None:
        """Decide whether ``phone_id`` (connecting from ``peer``) may start pairing now.

        Args:
            holder: a token for the asking connection; admitted, it holds the slot.
            phone_id: the device id its Hello claims.
            peer: where it connects from ("" when unknown): the LAN host or BLE address.
            now: the current time.

        Returns:
            None when admitted, else the ``Refusal``.
        """
        if not self.is_open(now):
            return Refusal(Reason.PAIRING_CLOSED, "the car's pairing window is closed")
        try:
            self._by_phone.check(phone_id, now)
            if peer:
                self._by_peer.check(peer, now)
            self._global.check(now)
        except PairingError as exc:
            return Refusal(exc.reason, exc.detail)
        if self._holder is not None and self._holder is not holder:
            return Refusal(Reason.PAIRING_BUSY, "another phone is pairing; retry shortly")
        self._holder = holder
        return None

    def may_pin(self, holder: Hashable, oob_secret: bytes | None, now: float) -> Refusal | None:
        """Decide whether a pairing the protocol completed may be pinned.

        Args:
            holder: the connection that paired.
            oob_secret: the secret it paired with in OOB (QR) mode; None for a compared code.
            now: the current time.

        Returns:
            None to pin (an OOB secret is consumed: it is one-time), else the ``Refusal``.
        """
        if self._holder is not None and self._holder is not holder:
            return Refusal(Reason.PAIRING_BUSY, "another phone holds the pairing slot")
        if not self.is_open(now):  # closed by the car user, or at its deadline, meanwhile
            return Refusal(Reason.PAIRING_CLOSED, "the car's pairing window closed")
        if oob_secret is None:
            return None
        current = self.oob_secret(now)
        # A connection copied the secret when it began, so a second phone holding the same
        # copy (or one made before a newer code replaced it) is caught here.
        if current is None or not hmac.compare_digest(current, oob_secret):
            return Refusal(
                Reason.OOB_MISMATCH, "the pairing QR code was already used, replaced or expired"
            )
        self._uri = None
        return None

    def finished(
        self, holder: Hashable, phone_id: str, peer: str, *, paired: bool, now: float
    ) -> None:
        """End ``holder``'s attempt: free the slot and count the outcome.

        Args:
            holder: the connection whose attempt ended (paired, failed, refused or gone).
            phone_id: the device id it claimed.
            peer: where it connected from ("" when unknown).
            paired: it ended pinned; otherwise it counts as one failed attempt.
            now: the current time.
        """
        admitted = self._holder is holder
        if admitted:
            self._holder = None
        if paired:
            self._by_phone.record_success(phone_id)
            if peer:
                self._by_peer.record_success(peer)
            self._global.record_success()
            return
        self._by_phone.record_failure(phone_id, now)
        if peer:
            self._by_peer.record_failure(peer, now)
        if admitted:  # a refused Hello cost nothing: it must not spend the car-wide budget
            self._global.record_failure(now)
