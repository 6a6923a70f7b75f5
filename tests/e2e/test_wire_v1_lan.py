"""End to end over the LAN: a peer that speaks only protocol version 1 still syncs.

``CARHUB_PROTOCOL_VERSIONS=1`` (PROTOCOL.md §3.1) makes either console script offer only
version 1, as a build from before version 2 does; the car logs the version it
negotiated with each phone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import Car, Phone, poll, sample_vcf

ENV = "CARHUB_PROTOCOL_VERSIONS"


def _hellos(car: Car) -> list[str]:
    return [line for line in car.log().splitlines() if "hello from" in line]


def test_a_v1_phone_syncs_with_a_v2_car_then_upgrades(
    car: Car, phone: Phone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vcf = sample_vcf(tmp_path / "book.vcf", 2000)
    monkeypatch.setenv(ENV, "1")
    phone.pair(car)
    pid = phone.status()["phone_id"]
    old = phone.sync(car, vcf)
    assert old.code == 0 and old.json["added"] == 2000, old
    assert car.contacts(pid)["total"] == 2000
    assert all("protocol v1" in line for line in _hellos(car)), _hellos(car)

    # The same phone updated: it offers 2 and 1, the car picks 2; the mirror carries on.
    monkeypatch.delenv(ENV)
    again = phone.sync(car, vcf)
    assert again.code == 0 and again.json["unchanged"] == 2000, again
    assert "protocol v2" in _hellos(car)[-1]

    # A full resend under version 2 (a fresh car) costs fewer bytes than version 1 did.
    other = Car(tmp_path / "car-b", name="E2E Car B", extra=["--auto-confirm"]).start()
    try:
        phone.pair(other)
        new = phone.sync(other, vcf)
        assert new.code == 0 and new.json["added"] == 2000, new
        # (10% here: the first of 4 batches has no history; ~18% for 10k contacts.)
        assert new.json["bytes"] < 0.95 * old.json["bytes"], (old.json, new.json)
    finally:
        other.stop()


def test_a_v2_phone_syncs_with_a_v1_car(
    make_car: Callable[..., Car], phone: Phone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "1")
    car = make_car()
    monkeypatch.delenv(ENV)  # the phone offers 2 and 1
    phone.pair(car)
    pid = phone.status()["phone_id"]
    vcf = sample_vcf(tmp_path / "book.vcf", 1200)
    r = phone.sync(car, vcf)
    assert r.code == 0 and r.json["added"] == 1200, r
    assert car.contacts(pid)["total"] == 1200
    poll(lambda: _hellos(car), what="the car's hello log line")
    assert all("protocol v1" in line for line in _hellos(car)), _hellos(car)
