"""How failures reach the peer, as PROTOCOL.md sections 3 and 5.3 say.

A pairing decision (a user's rejection, the timeout) arrives as ``PairResult(false, ...)``
(the closing ``Error`` follows); a failed check arrives as ``Error`` alone. A well-formed
``Hello`` from the wrong side is ``unexpected-message``, not ``malformed``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.admission import PairingAdmission
from protocol.connection import CarConnection, ConnectionFailed, PhoneConnection, State
from protocol.errors import Reason
from protocol.framing import encode_frame
from protocol.identity import Identity
from protocol.messages import Error, Hello, Message, encode
from protocol.pairing import PairResult
from tests.protocol.helpers import frames

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "PROTOCOL.md"
CAR, PHONE = Identity.generate(), Identity.generate()


class _Claims(Identity):
    """A key pair that claims another device's id."""

    claimed = ""

    @property
    def device_id(self) -> str:
        return self.claimed


def _car() -> CarConnection:
    return CarConnection(CAR, "Car", lookup_peer={}.get, admission=PairingAdmission(open_=True))


def _pump(phone: PhoneConnection, car: CarConnection) -> dict[str, list[Message]]:
    """Run both until quiet; return the plaintext messages each side sent."""
    sent: dict[str, list[Message]] = {"phone": [], "car": []}
    for _ in range(20):
        a, b = phone.data_to_send(), car.data_to_send()
        sent["phone"] += frames(a)
        sent["car"] += frames(b)
        if a and car.state is not State.CLOSED:
            car.receive_data(a, 1.0)
        if b and phone.state is not State.CLOSED:
            phone.receive_data(b, 1.0)
        if not a and not b:
            break
    return sent


def _spec_table() -> dict[str, str]:
    """Reason -> how it arrives, from the table in section 5.3."""
    text = SPEC.read_text(encoding="utf-8")
    region = text[text.index("### 5.3") : text.index("### 5.4")]
    out = {}
    for form, reasons in re.findall(r"^\| `(PairResult|Error)[^|]*\| ([^|]+) \|", region, re.M):
        for reason in re.findall(r"`([a-z-]+)`", reasons):
            out[reason] = form
    return out


def test_the_spec_says_how_each_pairing_failure_arrives() -> None:
    table = _spec_table()
    assert table["rejected"] == table["timeout"] == "PairResult"
    for reason in ("id-mismatch", "confirmation-failed", "commitment-mismatch", "oob-mismatch"):
        assert table[reason] == "Error"


def test_a_rejection_arrives_as_pair_result_false() -> None:
    phone, car = PhoneConnection(PHONE, "Pixel"), _car()
    _pump(phone, car)
    car.confirm_pairing(False, 2.0)
    sent = _pump(phone, car)
    assert _spec_table()["rejected"] == "PairResult"
    # The verdict first; the Error that closes the connection repeats its reason.
    tail = sent["car"][-2:]
    assert tail[0] == PairResult(False, "rejected")
    assert isinstance(tail[1], Error) and tail[1].reason == "rejected"


def test_an_id_mismatch_arrives_as_error() -> None:
    impostor = _Claims.generate()
    _Claims.claimed = PHONE.device_id
    sent = _pump(PhoneConnection(impostor, "Evil"), _car())
    assert _spec_table()["id-mismatch"] == "Error"
    assert Error("id-mismatch") in sent["car"]  # the reason only, before the session
    assert not [m for m in sent["car"] if isinstance(m, PairResult)]


def _hello(role: str, intent: str) -> bytes:
    hello = Hello([1], role, PHONE.device_id, "Pixel", "", intent, 0)
    return encode_frame(encode(hello))


@pytest.mark.parametrize(("role", "intent"), [("car", "pair"), ("phone", "bogus"), ("x", "")])
def test_a_hello_with_a_wrong_role_or_intent_gets_unexpected_message(
    role: str, intent: str
) -> None:
    car = _car()
    car.receive_data(_hello(role, intent), 0.0)
    (reply,) = frames(car.data_to_send())
    assert isinstance(reply, Error) and reply.reason == "unexpected-message"
    text = SPEC.read_text(encoding="utf-8")
    assert "answers `Error(unexpected-message)` to a `Hello` whose `role`" in text


def test_a_phone_met_by_a_hello_from_another_phone_fails_with_unexpected_message() -> None:
    phone = PhoneConnection(PHONE, "Pixel")
    phone.data_to_send()
    phone.receive_data(_hello("phone", "pair"), 0.0)
    ev = phone.next_event()
    while ev is not None and not isinstance(ev, ConnectionFailed):
        ev = phone.next_event()
    assert isinstance(ev, ConnectionFailed) and ev.error.reason is Reason.UNEXPECTED_MESSAGE
