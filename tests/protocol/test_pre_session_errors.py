"""What a car tells a peer it has not authenticated yet (PROTOCOL.md sections 3 and 6.1).

Before the session an ``Error`` carries its reason only: the detail (a decoder's message
with a path into the message layout, say) stays in the car's own log.
"""

from __future__ import annotations

import msgspec

from protocol.admission import PairingAdmission
from protocol.connection import CarConnection, ConnectionFailed, State
from protocol.errors import Reason
from protocol.framing import FrameDecoder, encode_frame
from protocol.identity import Identity
from protocol.messages import Error, Message, decode

CAR = Identity.generate()


def _car(pinned: dict[str, bytes] | None = None) -> CarConnection:
    pinned = pinned or {}
    return CarConnection(CAR, "Car", lookup_peer=pinned.get, admission=PairingAdmission(open_=True))


def _frames(data: bytes) -> list[Message]:
    dec = FrameDecoder()
    dec.receive_data(data)
    out = []
    while (payload := dec.next_frame()) is not None:
        out.append(decode(payload))
    return out


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
    sent = _frames(car.data_to_send())
    assert sent == [Error(reason="malformed", detail="")]
    failed = _failure(car)
    assert failed.error.reason is Reason.MALFORMED
    assert "$" in failed.error.detail  # what the car logs still says where
    assert car.state is State.CLOSED
