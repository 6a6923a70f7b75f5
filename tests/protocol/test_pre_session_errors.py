"""What a car tells a peer it has not authenticated yet (PROTOCOL.md sections 3 and 6.1).

Before the session an ``Error`` carries its reason only: the detail (a decoder's message
with a path into the message layout, say) stays in the car's own log.
"""

from __future__ import annotations

import msgspec

from protocol.admission import PairingAdmission
from protocol.connection import CarConnection, ConnectionFailed, PhoneConnection, State
from protocol.errors import ProtocolError, Reason, SessionError
from protocol.framing import encode_frame
from protocol.identity import Identity
from protocol.messages import Error, Message
from tests.protocol.helpers import frames

CAR, PHONE = Identity.generate(), Identity.generate()


def _car(pinned: dict[str, bytes] | None = None) -> CarConnection:
    pinned = pinned or {}
    return CarConnection(CAR, "Car", lookup_peer=pinned.get, admission=PairingAdmission(open_=True))


def _failure(car: CarConnection) -> ConnectionFailed:
    while (ev := car.next_event()) is not None:
        if isinstance(ev, ConnectionFailed):
            return ev
    raise AssertionError("the car did not fail")


def test_a_malformed_hello_gets_the_reason_only_and_the_car_keeps_the_detail() -> None:
    car = _car()
    # A Hello (tag 1) whose name is an array: the decoder names the path that failed.
    bad = msgspec.msgpack.encode([1, [1], "phone", "0" * 16, ["a", "name"], "", "pair", 0])
    car.receive_data(encode_frame(bad), 1.0)
    sent = frames(car.data_to_send())
    assert sent == [Error(reason="malformed", detail="")]
    failed = _failure(car)
    assert failed.error.reason is Reason.MALFORMED
    assert "$" in failed.error.detail  # what the car logs still says where
    assert car.state is State.CLOSED


def _session_attempt(
    pinned: dict[str, bytes],
) -> tuple[list[Message], list[int], ProtocolError, ProtocolError]:
    """A phone that paired with CAR opens a session; return what the car sent and both ends."""
    phone = PhoneConnection(PHONE, "Pixel", car_public_key=CAR.public_key)
    car = _car(pinned)
    sent: list[Message] = []
    sizes: list[int] = []
    for _ in range(10):
        a = phone.data_to_send()
        if a and car.state is not State.CLOSED:
            car.receive_data(a, 1.0)
        b = car.data_to_send()
        sent += frames(b)
        sizes += [len(b)] if b else []
        if b and phone.state is not State.CLOSED:
            phone.receive_data(b, 1.0)
        if not a and not b:
            break
    return sent, sizes, _failure(car).error, _failure(phone).error


def test_an_unknown_phone_is_refused_like_a_paired_id_with_the_wrong_key() -> None:
    unknown = _session_attempt({})
    wrong_key = _session_attempt({PHONE.device_id: Identity.generate().public_key})
    # A stranger sees the same messages, sizes and reason either way: no pairing oracle.
    assert unknown[0] == wrong_key[0]
    assert [type(m).__name__ for m in unknown[0]] == ["Hello", "Error"]
    assert unknown[0][-1] == Error(reason="handshake-failed")
    assert unknown[1] == wrong_key[1]
    for car_err, phone_err in (unknown[2:], wrong_key[2:]):
        assert isinstance(car_err, SessionError) and isinstance(phone_err, SessionError)
        assert car_err.reason is phone_err.reason is Reason.HANDSHAKE_FAILED
        assert phone_err.from_peer
    # The car's own log still tells the two apart.
    assert "not paired" in unknown[2].detail and "not paired" not in wrong_key[2].detail
