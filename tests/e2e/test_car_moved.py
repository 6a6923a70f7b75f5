"""A paired car is its key, not its address; the phone's name is the one it was given.

The car restarts on a new port: ``sync HOST:NEWPORT`` finds it by the id in its Hello and
remembers the new address, while a stranger's car on the old address is still refused.
And a name given with ``pair --name`` survives the next ``sync`` without one.
(On the carhub.testing plugin's fixtures.)
"""

from __future__ import annotations

from collections.abc import Callable

from carhub.testing import Car, Phone


def _book(n: int) -> list[str]:
    return [
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:moved-{i}\r\nFN:Moved {i}\r\n"
        f"TEL:+1555{i:07d}\r\nEND:VCARD\r\n"
        for i in range(n)
    ]


def _endpoint_of(phone: Phone, car: Car) -> str:
    return next(str(c["endpoint"]) for c in phone.status()["cars"] if c["id"] == car.id)


def test_a_car_restarted_on_a_new_port_is_still_paired(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car, phone = carhub_car("E2E Car"), carhub_phone()
    phone.pair(car)
    old = car.endpoint
    phone.sync(car, _book(3))
    car.restart(same_ports=False)  # same state dir (same key), a new port
    assert car.endpoint != old
    r = phone.sync(car, _book(5))  # raises unless it exits 0
    assert r["car"] == car.id and r["added"] == 2 and r["unchanged"] == 3
    assert _endpoint_of(phone, car) == car.endpoint  # the new address is remembered
    assert len(car.contacts(phone.id)) == 5


def test_another_key_at_the_old_address_is_refused(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car, phone = carhub_car("E2E Car"), carhub_phone()
    phone.pair(car)
    old = car.endpoint
    car.restart(same_ports=False)
    # A car with another key (its own state dir) takes the paired car's old address.
    stranger = carhub_car("Stranger", auto_confirm=False, listen=old)
    assert stranger.endpoint == old
    r = phone.cli("sync", old, "--contacts", str(phone.contacts_file(_book(1))))
    # Exit 5 whichever side notices first: the stranger does not know this phone, or
    # (a car that answers unknown phones with a Hello) this phone did not pair its id.
    assert r.code == 5, r
    errors = [line for line in r.err.splitlines() if line.startswith("phone-bridge: error:")]
    assert len(errors) == 1 and "run 'pair'" in errors[0], r.err
    assert stranger.phones() == []
    # The paired car's address is not moved to the stranger's; the paired car still syncs.
    assert _endpoint_of(phone, car) == old
    phone.sync(car, _book(1))
    assert _endpoint_of(phone, car) == car.endpoint


def test_the_name_given_at_pairing_survives_a_sync(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car, phone = carhub_car("E2E Car"), carhub_phone("Alice's Pixel")
    phone.pair(car)  # pair --name "Alice's Pixel"
    assert [p["name"] for p in car.phones()] == ["Alice's Pixel"]
    # Syncs without --name (Phone.sync would pass the phone's): the car keeps the name.
    book = str(phone.contacts_file(_book(1)))
    assert phone.cli("sync", car.endpoint, "--contacts", book).code == 0
    assert [p["name"] for p in car.phones()] == ["Alice's Pixel"]
    # A new --name renames the phone, and that name is kept in turn.
    assert phone.cli("sync", car.endpoint, "--contacts", book, "--name", "Work Pixel").code == 0
    assert phone.cli("sync", car.endpoint, "--contacts", book).code == 0
    assert [p["name"] for p in car.phones()] == ["Work Pixel"]
