"""Rate limiting of pairing attempts (pure: time is passed in).

``PairingRateLimiter`` counts failures per key (a claimed phone id, a peer address);
``FailureBudget`` is one car-wide budget with a lockout that doubles while failures keep
coming, for the stranger who changes address (or BLE random address) every attempt.
"""

from __future__ import annotations

from protocol.errors import PairingError, Reason

__all__ = ["FailureBudget", "PairingRateLimiter"]


class PairingRateLimiter:
    """Counts failed pairing attempts per key (a peer address or device id); pure.

    After ``max_attempts`` failures within ``window`` seconds, ``check`` refuses that key
    for ``lockout`` seconds. At most ``max_keys`` keys are tracked; the stalest go first,
    so a flood of fresh addresses cannot grow the table without bound.
    """

    def __init__(
        self,
        max_attempts: int = 5,
        window: float = 60.0,
        lockout: float = 30.0,
        max_keys: int = 1024,
    ) -> None:
        self._max, self._window, self._lockout = max_attempts, window, lockout
        self._max_keys = max_keys
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def check(self, key: str, now: float) -> None:
        """Allow or refuse a new pairing attempt from ``key``.

        Raises:
            PairingError: ``RATE_LIMITED``, with the seconds left in ``detail``.
        """
        until = self._locked_until.get(key, 0.0)
        if now < until:
            detail = f"too many attempts; retry in {until - now:.0f}s"
            raise PairingError(Reason.RATE_LIMITED, detail)

    def record_failure(self, key: str, now: float) -> None:
        """Count one failed attempt from ``key``."""
        recent = [t for t in self._failures.pop(key, []) if now - t < self._window]
        recent.append(now)
        if len(recent) >= self._max:
            self._locked_until[key] = now + self._lockout
            recent = []
        self._failures[key] = recent  # re-inserted last: dict order is staleness order
        while len(self._failures) > self._max_keys:
            self._evict(now)

    def _evict(self, now: float) -> None:
        """Drop the stalest key that is not locked out, so a flood cannot lift a lockout."""
        for key in self._failures:
            if self._locked_until.get(key, 0.0) <= now:
                del self._failures[key]
                self._locked_until.pop(key, None)
                return
        # Every tracked key is locked: drop the lock that ends soonest.
        key = min(self._failures, key=lambda k: self._locked_until.get(k, 0.0))
        del self._failures[key]
        self._locked_until.pop(key, None)

    def record_success(self, key: str) -> None:
        """Forget ``key``'s failures after a successful pairing."""
        self._failures.pop(key, None)
        self._locked_until.pop(key, None)


class FailureBudget:
    """One budget of failed attempts shared by everyone, with exponential backoff; pure.

    ``budget`` failures within ``window`` seconds lock every new attempt out. The first
    lockout lasts ``lockout`` seconds and each one that follows doubles, up to
    ``max_lockout``, while the streak lasts: a success (a pairing the car user accepted)
    ends it, and so do ``max_lockout`` quiet seconds after a lockout ended. A stranger
    rotating addresses and ids therefore gets ``budget`` tries per ``max_lockout`` at
    best, and the car's own user pairs as soon as a lockout is over.
    """

    def __init__(
        self,
        budget: int = 20,
        window: float = 60.0,
        lockout: float = 30.0,
        max_lockout: float = 900.0,
    ) -> None:
        self._budget, self._window = budget, window
        self._lockout, self._max_lockout = lockout, max_lockout
        self._failures: list[float] = []
        self._locked_until = 0.0
        self._streak = 0  # lockouts in a row; the next one lasts lockout * 2**streak

    def check(self, now: float) -> None:
        """Allow or refuse a new attempt at ``now``.

        Raises:
            PairingError: ``RATE_LIMITED``, with the seconds left in ``detail``.
        """
        if now < self._locked_until:
            left = self._locked_until - now
            detail = f"too many failed pairings on this car; retry in {left:.0f}s"
            raise PairingError(Reason.RATE_LIMITED, detail)

    def locked_for(self, now: float) -> float:
        """Seconds until new attempts are allowed again (0: allowed now)."""
        return max(0.0, self._locked_until - now)

    def record_failure(self, now: float) -> None:
        """Count one failed attempt; the budget's last failure starts a lockout."""
        if self._streak and now - self._locked_until >= self._max_lockout:
            self._streak = 0  # quiet long enough since the last lockout: forgive it
        self._failures = [t for t in self._failures if now - t < self._window]
        self._failures.append(now)
        if len(self._failures) < self._budget:
            return
        seconds = min(self._lockout * 2**self._streak, self._max_lockout)
        self._locked_until = max(self._locked_until, now + seconds)
        if seconds < self._max_lockout:
            self._streak += 1  # stops growing at the cap
        self._failures = []

    def record_success(self) -> None:
        """A pairing succeeded: forget the failures and the streak (not a running lockout)."""
        self._failures = []
        self._streak = 0
