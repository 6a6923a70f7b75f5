"""End to end over the LAN: a peer that speaks only protocol version 1 still syncs.

``CARHUB_PROTOCOL_VERSIONS=1`` (PROTOCOL.md §3.1) makes either console script offer only
version 1, as a build from before version 2 does; the car logs the version it
negotiated with each phone. (On the carhub.testing plugin's fixtures: the processes
inherit the environment at the moment they start.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from carhub.testing import Car, Phone, wait_for
from tests.e2e.helpers import sample_vcf

ENV = "CARHUB_PROTOCOL_VERSIONS"


def _hellos(car: Car) -> list[str]:
    return [line for line in car.log().splitlines() if "hello from" in line]


def test_a_v1_phone_syncs_with_a_v2_car_then_upgrades(
    carhub_car: Callable[..., Car],
    carhub_phone: Callable[..., Phone],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    car, phone = carhub_car("E2E Car"), carhub_phone(contacts=sample_vcf(tmp_path / "b.vcf", 2000))
    monkeypatch.setenv(ENV, "1")
    phone.pair(car)
    old = phone.sync(car)  # raises unless it exits 0
    assert old["added"] == 2000, old
    assert len(car.contacts(phone.id)) == 2000
    assert all("protocol v1" in line for line in _hellos(car)), _hellos(car)

    # The same phone updated: it offers 2 and 1, the car picks 2; the mirror carries on.
    monkeypatch.delenv(ENV)
    again = phone.sync(car)
    assert again["unchanged"] == 2000, again
    assert "protocol v2" in _hellos(car)[-1]

    # A full resend under version 2 (a fresh car) costs fewer bytes than version 1 did.
    other = carhub_car("E2E Car B")
    phone.pair(other)
    new = phone.sync(other)
    assert new["added"] == 2000, new
    # (10% here: the first of 4 batches has no history; ~18% for 10k contacts.)
    assert new["bytes"] < 0.95 * old["bytes"], (old, new)


def test_a_v2_phone_syncs_with_a_v1_car(
    carhub_car: Callable[..., Car],
    carhub_phone: Callable[..., Phone],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, "1")
    car = carhub_car("E2E Car")
    monkeypatch.delenv(ENV)  # the phone offers 2 and 1
    phone = carhub_phone(contacts=sample_vcf(tmp_path / "book.vcf", 1200))
    phone.pair(car)
    assert phone.sync(car)["added"] == 1200
    assert len(car.contacts(phone.id)) == 1200
    wait_for(lambda: _hellos(car), what="the car's hello log line")
    assert all("protocol v1" in line for line in _hellos(car)), _hellos(car)
