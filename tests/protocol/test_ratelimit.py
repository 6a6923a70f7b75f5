"""Pairing rate limiter: lockout, window, success reset, and a flood that cannot lift a lock."""

from __future__ import annotations

import pytest

from protocol.errors import PairingError, Reason
from protocol.ratelimit import PairingRateLimiter


def lock(rl: PairingRateLimiter, key: str, now: float = 0.0) -> None:
    for _ in range(3):
        rl.record_failure(key, now)


def test_locks_after_max_attempts_then_releases() -> None:
    rl = PairingRateLimiter(max_attempts=3, window=60, lockout=30)
    lock(rl, "phone")
    with pytest.raises(PairingError) as info:
        rl.check("phone", 1.0)
    assert info.value.reason is Reason.RATE_LIMITED
    rl.check("phone", 31.0)  # lockout over
    rl.check("other", 1.0)  # other keys unaffected


def test_failures_outside_the_window_do_not_count() -> None:
    rl = PairingRateLimiter(max_attempts=3, window=10, lockout=30)
    rl.record_failure("p", 0.0)
    rl.record_failure("p", 5.0)
    rl.record_failure("p", 20.0)  # the first two have aged out
    rl.check("p", 21.0)


def test_success_clears_the_count() -> None:
    rl = PairingRateLimiter(max_attempts=3)
    rl.record_failure("p", 0.0)
    rl.record_failure("p", 0.0)
    rl.record_success("p")
    rl.record_failure("p", 0.0)
    rl.check("p", 0.0)


def test_a_flood_of_fresh_keys_cannot_lift_a_lockout() -> None:
    rl = PairingRateLimiter(max_attempts=3, lockout=30, max_keys=8)
    lock(rl, "attacker")
    for i in range(100):
        rl.record_failure(f"spoofed-{i}", 1.0)
    with pytest.raises(PairingError):
        rl.check("attacker", 2.0)


def test_the_table_is_bounded() -> None:
    rl = PairingRateLimiter(max_keys=10)
    for i in range(1000):
        rl.record_failure(f"peer-{i}", float(i))
    assert len(rl._failures) == 10
