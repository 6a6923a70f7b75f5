"""A phone that finds the car's pinned key by the id in the car's Hello (``lookup_car``).

A paired car is its key, not its address: wherever it answers, its Hello names it and the
key pinned for that id must complete the handshake. An id with no pinned key fails before
any handshake byte; a car that claims a paired id with another key fails the handshake.
"""

from __future__ import annotations

from protocol.admission import PairingAdmission
from protocol.connection import (
    CarConnection,
    ConnectionFailed,
    PhoneConnection,
    SessionEstablished,
    State,
)
from protocol.errors import Reason, SessionError
from protocol.identity import Identity
from tests.protocol.test_connection import Link

PHONE = Identity.generate()
CAR_A, CAR_B = Identity.generate(), Identity.generate()


def _car(identity: Identity) -> CarConnection:
    pinned = {PHONE.device_id: PHONE.public_key}
    return CarConnection(identity, "Car", lookup_peer=pinned.get, admission=PairingAdmission())


def _phone(keys: dict[str, bytes]) -> PhoneConnection:
    return PhoneConnection(PHONE, "Pixel", lookup_car=keys.get)


def test_the_car_is_found_by_the_id_in_its_hello() -> None:
    keys = {CAR_A.device_id: CAR_A.public_key, CAR_B.device_id: CAR_B.public_key}
    for car in (CAR_A, CAR_B):
        link = Link(_phone(keys), _car(car))
        link.pump()
        assert link.phone.state is State.ESTABLISHED and link.car.state is State.ESTABLISHED
        established = link.of("phone", SessionEstablished)[0]
        assert established.peer_device_id == car.device_id
        assert established.peer_public_key == car.public_key


def test_a_car_not_paired_here_fails_before_the_handshake() -> None:
    link = Link(_phone({CAR_A.device_id: CAR_A.public_key}), _car(CAR_B))
    link.pump()
    err = link.of("phone", ConnectionFailed)[0].error
    assert isinstance(err, SessionError) and err.reason is Reason.UNKNOWN_PEER
    assert not err.from_peer and CAR_B.device_id in err.detail
    # The car is told why, and no handshake was started with a key the phone never pinned.
    car_err = link.of("car", ConnectionFailed)[0].error
    assert car_err.reason is Reason.UNKNOWN_PEER and car_err.from_peer
    # The Hello and the Error (130 bytes); a handshake message would add 52 more.
    assert link.bytes_to_car < 170


def test_a_paired_id_with_another_key_fails_the_handshake() -> None:
    impostor = Identity.generate()
    # The phone pinned CAR_A's key under CAR_A's id; the impostor answers as CAR_A.
    keys = {impostor.device_id: CAR_A.public_key}
    link = Link(_phone(keys), _car(impostor))
    link.pump()
    assert link.phone.state is State.CLOSED and link.car.state is State.CLOSED
    assert not link.of("phone", SessionEstablished)
    assert link.of("car", ConnectionFailed)[0].error.reason is Reason.HANDSHAKE_FAILED
