"""A paired car is its key, not its address; the phone's name is the one it was given.

The car restarts on a new port: ``sync HOST:NEWPORT`` finds it by the id in its Hello and
remembers the new address, while a stranger's car on the old address is still refused.
And a name given with ``pair --name`` survives the next ``sync`` without one.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import Car, Phone


def _book(path: Path, n: int) -> Path:
    path.write_text(
        "".join(
            f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:moved-{i}\r\nFN:Moved {i}\r\n"
            f"TEL:+1555{i:07d}\r\nEND:VCARD\r\n"
            for i in range(n)
        )
    )
    return path


def _endpoint_of(phone: Phone, car: Car) -> str:
    return next(str(c["endpoint"]) for c in phone.status()["cars"] if c["id"] == car.id)


def test_a_car_restarted_on_a_new_port_is_still_paired(
    car: Car, phone: Phone, tmp_path: Path
) -> None:
    phone.pair(car)
    old = car.endpoint
    assert phone.sync(car, _book(tmp_path / "a.vcf", 3)).code == 0
    car.stop()
    car.start()  # same state dir (same key), a new port
    assert car.endpoint != old
    r = phone.sync(car, _book(tmp_path / "b.vcf", 5))
    assert r.code == 0, r
    assert r.json["car"] == car.id and r.json["added"] == 2 and r.json["unchanged"] == 3
    assert _endpoint_of(phone, car) == car.endpoint  # the new address is remembered
    pid = phone.status()["phone_id"]
    assert car.contacts(pid)["total"] == 5


def test_another_key_at_the_old_address_is_refused(car: Car, phone: Phone, tmp_path: Path) -> None:
    phone.pair(car)
    old = car.endpoint
    car.stop()
    car.start()
    # A car with another key (its own state dir) takes the paired car's old address.
    stranger = Car(tmp_path / "stranger", name="Stranger", extra=["--listen", old]).start()
    assert stranger.endpoint == old
    r = phone.run("sync", old, "--contacts", str(_book(tmp_path / "a.vcf", 1)))
    # Exit 5 whichever side notices first: the stranger does not know this phone, or
    # (a car that answers unknown phones with a Hello) this phone did not pair its id.
    assert r.code == 5, r
    errors = [line for line in r.err.splitlines() if line.startswith("phone-bridge: error:")]
    assert len(errors) == 1 and "run 'pair'" in errors[0], r.err
    assert stranger.phones() == []
    # The paired car's address is not moved to the stranger's; the paired car still syncs.
    assert _endpoint_of(phone, car) == old
    assert phone.sync(car, _book(tmp_path / "b.vcf", 1)).code == 0
    assert _endpoint_of(phone, car) == car.endpoint


def test_the_name_given_at_pairing_survives_a_sync(car: Car, phone: Phone, tmp_path: Path) -> None:
    r = phone.run("pair", car.endpoint, "--auto-confirm", "--name", "Alice's Pixel", "--json")
    assert r.code == 0, r
    assert [p["name"] for p in car.phones()] == ["Alice's Pixel"]
    assert phone.sync(car, _book(tmp_path / "a.vcf", 1)).code == 0
    assert [p["name"] for p in car.phones()] == ["Alice's Pixel"]
    # A new --name renames the phone, and that name is kept in turn.
    assert phone.sync(car, _book(tmp_path / "a.vcf", 1), "--name", "Work Pixel").code == 0
    assert phone.sync(car, _book(tmp_path / "a.vcf", 1)).code == 0
    assert [p["name"] for p in car.phones()] == ["Work Pixel"]
