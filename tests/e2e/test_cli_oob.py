"""Pairing by QR code end to end: a real ``carhub run`` and ``phone-bridge pair --uri``.

The car runs without ``--auto-confirm``: the scanned secret is the only proof, so nobody
accepts anything on the car.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from protocol.identity import Identity, PairingUri, fingerprint_hash
from tests.e2e.helpers import Car, Phone


def show_qr(car: Car) -> str:
    body = car.post("/api/pairing/uri")
    assert body["uri"].startswith("carhub://pair?")
    return str(body["uri"])


def test_pair_by_uri_needs_no_accept(make_car: Callable[..., Car], phone: Phone) -> None:
    car = make_car(auto_confirm=False, pairing="closed")
    uri = show_qr(car)
    assert PairingUri.parse(uri).host == car.endpoint
    assert car.get("/api/status")["pairing_open"] is True  # showing the code opened it

    r = phone.run("pair", "--uri", uri, "--json", timeout=30)  # no CAR: the URI says where
    assert r.code == 0, r
    assert r.json["ok"] is True and r.json["car"]["id"] == car.id
    assert r.json["method"] == "oob"
    status = phone.status()
    assert [c["id"] for c in status["cars"]] == [car.id], status
    assert [p["id"] for p in car.phones()] == [status["phone_id"]]
    assert car.get("/api/pairing/requests") == []

    # The code is used up: a second phone scanning the same one is refused, clearly.
    other = Phone(phone.state_dir.parent / "phone2")
    again = other.run("pair", "--uri", uri, timeout=30)
    assert again.code == 4, again
    assert "already used" in again.err
    assert len(car.phones()) == 1


def test_tampered_uri_exits_4(make_car: Callable[..., Car], phone: Phone) -> None:
    car = make_car(auto_confirm=False)
    real = PairingUri.parse(show_qr(car))
    other_car = Identity.generate()
    forged = dataclasses.replace(real, fingerprint_hash=fingerprint_hash(other_car.public_key))
    r = phone.run("pair", "--uri", forged.to_uri(), "--json", timeout=30)
    assert r.code == 4, r
    assert "the car's key does not match the scanned code" in r.err
    assert json.loads(r.out.strip().splitlines()[-1])["exit_code"] == 4
    assert car.phones() == []
    assert phone.status()["cars"] == []


def test_bad_uri_is_bad_input(phone: Phone) -> None:
    r = phone.run("pair", "--uri", "carhub://pair?v=1&id=nothex", timeout=30)
    assert r.code == 2 and "not a carhub pairing code" in r.err, r
