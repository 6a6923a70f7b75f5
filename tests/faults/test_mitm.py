"""A man in the middle of numeric-comparison pairing (issue 12).

Two parts. A relay *process* (``tests/faults/mitm_relay.py``) between a real
``phone-bridge pair`` and a real ``carhub run``, with its own key pair toward each side:
every attempt, the code the phone shows differs from the code on the car's dashboard, so
the users reject and nothing is pinned. Then the same relay in-process with the sans-I/O
machines and the code cut to 2 and 3 digits: its success rate over many attempts is within
3 sigma of 10^-digits, which is what the commitment promises (PROTOCOL.md section 5).
"""

from __future__ import annotations

import math
import random

import pytest

from protocol.pairing import CarPairing, PhonePairing
from protocol.pairing_messages import CODE_DIGITS
from tests.e2e.helpers import ROOT
from tests.faults.mitm_odds import attempt, identities

# -- in-process: the odds ---------------------------------------------------------------
# Attempts per code length: about 200 us each, so both runs fit in a few seconds, with an
# expected 50 and 20 wins (sigma 7 and 4.5): 3 sigma stays well clear of zero and of 2x.
RUNS = {2: 5_000, 3: 20_000}


@pytest.mark.parametrize("digits", sorted(RUNS))
def test_the_relay_wins_at_the_rate_of_a_random_guess(digits: int) -> None:
    n, p = RUNS[digits], 10.0**-digits
    ids, rng = identities(digits), random.Random(1000 + digits)  # seeded: never flaky
    wins = 0
    for _ in range(n):
        a = attempt(ids, digits, rng)
        assert len(a.phone_code) == len(a.car_code) == digits
        if a.phone_code == a.car_code:
            wins += 1
            assert a.paired  # equal codes really are a win: both legs pin the relay
        else:
            assert not a.paired
    sigma = math.sqrt(n * p * (1 - p))
    print(f"{digits} digits: {wins}/{n} relay wins, expected {n * p:.0f} +- {3 * sigma:.1f}")
    assert abs(wins - n * p) <= 3 * sigma, (wins, n * p, sigma)


def test_the_code_length_is_six_unless_a_test_lowers_it() -> None:
    ids, rng = identities(6), random.Random(6)
    a = attempt(ids, CODE_DIGITS, rng)
    assert CODE_DIGITS == 6 and len(a.phone_code) == len(a.car_code) == 6
    for bad in (0, 7):
        with pytest.raises(ValueError):
            CarPairing(ids[1], transcript=b"", now=0.0, code_digits=bad)
        with pytest.raises(ValueError):
            PhonePairing(ids[0], "Pixel", transcript=b"", now=0.0, code_digits=bad)


def test_nothing_outside_the_machines_sets_the_code_length() -> None:
    """Only tests lower it: no CLI, shell or connection passes ``code_digits``."""
    users = [
        str(path.relative_to(ROOT))
        for pkg in ("protocol", "shell", "carhub", "phone_bridge", "radio")
        for path in sorted((ROOT / pkg).rglob("*.py"))
        if "code_digits" in path.read_text(encoding="utf-8")
    ]
    assert users == ["protocol/pairing.py"]
