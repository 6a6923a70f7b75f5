"""A man in the middle of numeric-comparison pairing (issue 12).

Two parts. A relay *process* (``tests/faults/mitm_relay.py``) between a real
``phone-bridge pair`` and a real ``carhub run``, with its own key pair toward each side:
every attempt, the code the phone shows differs from the code on the car's dashboard, so
the users reject and nothing is pinned. Then the same relay in-process with the sans-I/O
machines and the code cut to 2 and 3 digits: its success rate over many attempts is within
3 sigma of 10^-digits, which is what the commitment promises (PROTOCOL.md section 5).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from protocol.pairing import CarPairing, PhonePairing
from protocol.pairing_messages import CODE_DIGITS
from tests.e2e.helpers import ROOT, Car, Phone, poll, spawn, stop, stop_all
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


# -- real processes: the codes differ -----------------------------------------------------
ATTEMPTS = 4  # each a phone-bridge run; the car-wide budget (20 a minute) is not reached


class Reader:
    """Read a child's pipe up to a marker, with a deadline (a stuck child fails the test)."""

    def __init__(self, stream: IO[str]) -> None:
        self.fd, self.buf = stream.fileno(), ""

    def until(self, marker: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"no {marker!r} within {timeout} s: {self.buf!r}")
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise AssertionError(f"the pipe closed before {marker!r}: {self.buf!r}")
            self.buf += chunk.decode()
        head, _, self.buf = self.buf.partition(marker)
        return head + marker

    def json_line(self) -> dict[str, Any]:
        return dict(json.loads(self.until("\n")))


@pytest.fixture
def relay_and_car(tmp_path: Path) -> Iterator[tuple[Car, Reader, str]]:
    """A car whose user compares codes (no auto-confirm), and the relay in front of it."""
    try:
        car = Car(tmp_path / "car").start()
        relay = spawn(
            [sys.executable, "-m", "tests.faults.mitm_relay", "--car", car.endpoint],
            stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert relay.stdout is not None
        out = Reader(relay.stdout)
        ready = out.json_line()
        assert ready["event"] == "ready", ready
        yield car, out, str(ready["endpoint"])
    finally:
        stop_all()


def test_a_relay_with_its_own_keys_never_shows_both_users_one_code(
    relay_and_car: tuple[Car, Reader, str], tmp_path: Path
) -> None:
    car, relay, endpoint = relay_and_car
    phone = Phone(tmp_path / "phone")
    for i in range(ATTEMPTS):
        proc = phone.popen("pair", endpoint, "--json", stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        assert proc.stdin is not None and proc.stderr is not None
        try:
            shown = Reader(proc.stderr).until("[y/N]")
            m = re.search(r"Pairing code: (\d{3}) (\d{3})", shown)
            assert m is not None, shown
            phone_code = m.group(1) + m.group(2)
            (req,) = poll(lambda: car.get("/api/pairing/requests"), what="the car's request")
            # What the two users compare: the relay cannot make them equal.
            assert phone_code != req["code"], (i, phone_code, req)
            proc.stdin.write("n\n")
            proc.stdin.flush()
            assert car.post(f"/api/pairing/requests/{req['id']}/reject")["ok"] is True
            _, err = proc.communicate(timeout=20)
        finally:
            stop(proc)
        assert proc.returncode == 4, err  # pairing failed
        assert "Traceback" not in err
        codes, ended = relay.json_line(), relay.json_line()
        # The relay really sat in the middle: the car saw its fake phone, the phone its fake
        # car, and the codes each side showed are the ones the relay derived with it.
        assert codes["to_phone"] == phone_code and codes["to_car"] == req["code"], codes
        assert req["phone_id"] == codes["fake_phone_id"]
        assert ended["phone_leg"] == ended["car_leg"] == "rejected", ended
    assert car.phones() == []  # nobody was pinned
    assert not (tmp_path / "phone").exists() or phone.status()["cars"] == []
