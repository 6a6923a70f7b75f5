"""Pairing rate limiter: lockout, window, success reset, and a flood that cannot lift a lock."""

from __future__ import annotations

import pytest

from protocol.errors import PairingError, Reason
from protocol.ratelimit import FailureBudget, PairingRateLimiter


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


# -- the car-wide budget ------------------------------------------------------------------
def spend(budget: FailureBudget, n: int, now: float) -> None:
    for _ in range(n):
        budget.record_failure(now)


def refused(budget: FailureBudget, now: float) -> bool:
    try:
        budget.check(now)
    except PairingError as exc:
        assert exc.reason is Reason.RATE_LIMITED
        return True
    return False


def test_budget_lockouts_double_while_the_streak_lasts_up_to_the_cap() -> None:
    budget = FailureBudget(budget=3, window=60, lockout=10, max_lockout=40)
    now, lengths = 0.0, []
    for _ in range(5):
        spend(budget, 3, now)
        lengths.append(budget.locked_for(now))
        now += lengths[-1]
        assert not refused(budget, now)
    assert lengths == [10, 20, 40, 40, 40]


def test_budget_counts_only_failures_within_its_window() -> None:
    budget = FailureBudget(budget=3, window=10, lockout=30)
    spend(budget, 2, 0.0)
    spend(budget, 1, 20.0)
    assert not refused(budget, 20.0)


def test_a_success_or_a_quiet_spell_ends_the_streak() -> None:
    budget = FailureBudget(budget=2, window=60, lockout=10, max_lockout=100)
    spend(budget, 2, 0.0)
    spend(budget, 2, 10.0)  # second lockout of the streak: 20 s
    assert budget.locked_for(10.0) == 20
    budget.record_success()
    spend(budget, 2, 30.0)
    assert budget.locked_for(30.0) == 10  # a fresh streak
    spend(budget, 2, 40.0 + 100)  # 100 quiet seconds after the lockout ended
    assert budget.locked_for(140.0) == 10


def test_a_success_does_not_lift_a_running_lockout() -> None:
    budget = FailureBudget(budget=2, window=60, lockout=10)
    spend(budget, 2, 0.0)
    budget.record_success()
    assert refused(budget, 5.0) and not refused(budget, 10.0)
