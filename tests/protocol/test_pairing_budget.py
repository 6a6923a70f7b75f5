"""The car-wide budget of failed pairings, through real connections (issue 9 item 8).

A stranger who changes address and id on every attempt walks around the per-peer and
per-id limits; the car-wide budget stops it, with lockouts that grow while it goes on,
and the car's own phone still pairs once a lockout is over.
"""

from __future__ import annotations

from protocol.admission import PairingAdmission
from protocol.connection import (
    CarConnection,
    ConnectionFailed,
    PairingCode,
    PhoneConnection,
    SessionEstablished,
)
from protocol.errors import Reason
from protocol.identity import Identity
from tests.protocol.test_connection import Link

CAR_ID = Identity.generate()


def attempt(admission: PairingAdmission, peer: str, now: float, accept: bool) -> Link:
    """One phone with a fresh key, from ``peer``, tries to pair; both users decide ``accept``."""
    car = CarConnection(CAR_ID, "Car", lookup_peer={}.get, admission=admission, peer=peer,
                        now=now)  # fmt: skip
    link = Link(PhoneConnection(Identity.generate(), "Phone", now=now), car)
    link.pump(now)
    if link.of("car", PairingCode):
        link.car.confirm_pairing(accept, now)
        link.phone.confirm_pairing(accept, now)
        link.pump(now)
    return link


def refused(link: Link) -> bool:
    failed = link.of("phone", ConnectionFailed)
    return bool(failed) and failed[0].error.reason is Reason.RATE_LIMITED


def stranger_rejects(admission: PairingAdmission, n: int, now: float) -> None:
    for i in range(n):
        assert not refused(attempt(admission, f"10.1.{int(now) % 250}.{i}", now, accept=False))


def test_a_stranger_rotating_addresses_is_backed_off_and_the_owner_pairs_after() -> None:
    admission = PairingAdmission(open_=True)
    stranger_rejects(admission, 20, 0.0)
    assert refused(attempt(admission, "10.9.9.9", 10.0, accept=True))
    stranger_rejects(admission, 20, 30.0)  # after the first 30 s lockout it goes on
    assert refused(attempt(admission, "10.9.9.9", 80.0, accept=True))  # now 60 s
    owner = attempt(admission, "10.0.0.7", 90.0, accept=True)
    assert owner.of("car", SessionEstablished) and owner.of("phone", SessionEstablished)
