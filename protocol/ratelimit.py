"""Rate limiting of pairing attempts (pure: time is passed in)."""

from __future__ import annotations

from protocol.errors import PairingError, Reason

__all__ = ["PairingRateLimiter"]


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
