"""Pairing: numeric comparison with a commitment, QR/OOB, failures, rate limiting."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError, PairingError, Reason
from protocol.identity import Identity, PairingUri
from protocol.messages import Hello, Message
from protocol.pairing import (
    CarPairing,
    CodeReady,
    PairCommit,
    PairConfirm,
    Paired,
    PairingFailed,
    PairNonce,
    PairRequest,
    PairResult,
    PairReveal,
    PhonePairing,
)
from protocol.session import NoiseHandshake
from tests.protocol.helpers import TRANSCRIPT, PairingPair, seeded_rng, wire


def _failed(pair: PairingPair, side: str) -> list[Reason]:
    return [e.reason for e in pair.events[side] if isinstance(e, PairingFailed)]


def _paired(pair: PairingPair, side: str) -> list[Paired]:
    return [e for e in pair.events[side] if isinstance(e, Paired)]


# -- numeric comparison -------------------------------------------------------------------
def test_accepted_both_sides_show_the_same_code_and_pin_each_other() -> None:
    pair = PairingPair()
    pair.start()
    car_code, phone_code = pair.codes()
    assert car_code is not None and len(car_code) == 6 and car_code.isdigit()
    assert pair.code_events("car") == pair.code_events("phone") == [car_code]
    assert phone_code == car_code
    pair.confirm("car", True)
    assert not _paired(pair, "car")  # the phone has not confirmed yet
    pair.confirm("phone", True)
    (car_done,) = _paired(pair, "car")
    (phone_done,) = _paired(pair, "phone")
    assert car_done.peer_public_key == pair.phone_id.public_key
    assert car_done.peer_name == "Pixel"
    assert phone_done.peer_public_key == pair.car_id.public_key
    assert pair.sent[-1] == ("phone", PairResult(True, ""))


def test_order_of_user_decisions_does_not_matter() -> None:
    pair = PairingPair()
    pair.start()
    pair.confirm("phone", True)
    pair.confirm("car", True)
    assert _paired(pair, "car") and _paired(pair, "phone")


def test_codes_change_with_the_hellos() -> None:
    a, b = PairingPair(), PairingPair(car_transcript=b"other hellos")
    a.start()
    b.start()
    assert a.car.code == a.phone.code
    assert b.car.code != b.phone.code  # the transcript is bound into the code


def test_rejected_by_car() -> None:
    pair = PairingPair()
    pair.start()
    pair.confirm("car", False)
    assert _failed(pair, "car") == [Reason.REJECTED]
    assert _failed(pair, "phone") == [Reason.REJECTED]
    assert pair.sent[-1] == ("phone", PairResult(False, "rejected"))
    with pytest.raises(PairingError) as info:
        pair.phone.confirm(True, 3.0)
    assert info.value.reason is Reason.REJECTED


def test_rejected_by_phone_after_car_accepted() -> None:
    pair = PairingPair()
    pair.start()
    pair.confirm("car", True)
    pair.confirm("phone", False)
    assert _failed(pair, "car") == [Reason.REJECTED] == _failed(pair, "phone")
    assert not _paired(pair, "car")


def test_confirm_without_a_code_is_local_misuse() -> None:
    pair = PairingPair()
    with pytest.raises(LocalProtocolError):
        pair.car.confirm(True, 1.0)
    pair.start()
    pair.confirm("car", True)
    with pytest.raises(LocalProtocolError):
        pair.car.confirm(True, 2.0)  # twice


# -- attacks ----------------------------------------------------------------------------
class _FullRelay:
    """A man in the middle with its own key pair on each leg (relays names, not keys)."""

    def __init__(self) -> None:
        self.as_car = CarPairing(Identity.generate(), transcript=TRANSCRIPT, now=0.0,
                                 rng=seeded_rng(99))
        self.as_phone = PhonePairing(Identity.generate(), "Pixel", transcript=TRANSCRIPT,
                                     now=0.0, rng=seeded_rng(98))
        self.phone = PhonePairing(Identity.generate(), "Pixel", transcript=TRANSCRIPT, now=0.0,
                                  rng=seeded_rng(97))
        self.car = CarPairing(Identity.generate(), transcript=TRANSCRIPT, now=0.0,
                              rng=seeded_rng(96))

    def run_to_codes(self) -> None:
        _pump(self.phone, self.as_car, self.phone.start())
        _pump(self.as_phone, self.car, self.as_phone.start())


def _pump(a: PhonePairing | CarPairing, b: PhonePairing | CarPairing, msgs: list[Message]) -> None:
    """Run messages from ``a`` to ``b`` and back until quiet."""
    src, dst = a, b
    while msgs:
        replies: list[Message] = []
        for m in msgs:
            replies += dst.receive(wire(m), 1.0)
        msgs, src, dst = replies, dst, src


def test_mitm_relay_gets_different_codes_and_users_reject() -> None:
    relay = _FullRelay()
    relay.run_to_codes()
    assert relay.phone.code is not None and relay.car.code is not None
    assert relay.phone.code != relay.car.code
    # The phone user sees a code unlike the car's and says no; the relay must pass it on or
    # the car times out; either way nobody is paired.
    out = relay.phone.confirm(False, 2.0)
    assert out == [PairResult(False, "rejected")]
    assert relay.car.receive(out[0], 2.0) == []
    assert relay.car.next_event() == CodeReady(relay.car.code)
    assert relay.car.next_event() == PairingFailed(Reason.REJECTED,
                                                   "the peer ended pairing: rejected")


def test_mitm_forwarding_confirmations_fails_the_mac_check() -> None:
    relay = _FullRelay()
    relay.run_to_codes()
    # Careless users accept; the relay forwards the car's PairConfirm to the phone as is.
    (car_confirm,) = relay.car.confirm(True, 2.0)
    relay.phone.confirm(True, 2.0)
    with pytest.raises(PairingError) as info:
        relay.phone.receive(car_confirm, 2.0)
    assert info.value.reason is Reason.CONFIRMATION_FAILED
    events = [relay.phone.next_event() for _ in range(2)]
    assert events[-1] == PairingFailed(Reason.CONFIRMATION_FAILED, "the car's MAC is wrong")


def test_key_swapping_relay_is_caught_by_the_commitment() -> None:
    mallory = Identity.generate()

    def swap(msg: Message, to: str) -> Message:
        if isinstance(msg, PairRequest) and to == "car":
            return msgspec.structs.replace(msg, public_key=mallory.public_key)
        return msg

    pair = PairingPair(relay=swap)
    with pytest.raises(PairingError) as info:
        pair.start()
    assert info.value.reason is Reason.COMMITMENT_MISMATCH
    assert _failed(pair, "phone") == [Reason.COMMITMENT_MISMATCH]
    assert pair.phone.code is None  # no code is ever shown for a broken commitment


def test_tampered_reveal_is_a_commitment_mismatch() -> None:
    def tamper(msg: Message, to: str) -> Message:
        if isinstance(msg, PairReveal):
            return PairReveal(bytes(b ^ 1 for b in msg.nonce))
        return msg

    pair = PairingPair(relay=tamper)
    with pytest.raises(PairingError) as info:
        pair.start()
    assert info.value.reason is Reason.COMMITMENT_MISMATCH
    with pytest.raises(PairingError) as again:
        pair.phone.receive(PairReveal(b"\x00" * 16), 2.0)
    assert again.value.reason is Reason.COMMITMENT_MISMATCH  # dead machine, same error


def test_tampered_confirm_mac_fails_on_the_car() -> None:
    def tamper(msg: Message, to: str) -> Message:
        if isinstance(msg, PairConfirm) and to == "car":
            return PairConfirm(b"\x00" * 32)
        return msg

    pair = PairingPair(relay=tamper)
    pair.start()
    pair.confirm("car", True)
    with pytest.raises(PairingError) as info:
        pair.confirm("phone", True)
    assert info.value.reason is Reason.CONFIRMATION_FAILED
    assert not _paired(pair, "car")


def test_forged_success_without_car_mac_is_refused() -> None:
    pair = PairingPair()
    pair.start()
    (confirm,) = pair.phone.confirm(True, 2.0)
    with pytest.raises(PairingError) as info:
        pair.phone.receive(PairResult(True, ""), 2.0)
    assert info.value.reason is Reason.CONFIRMATION_FAILED
    assert isinstance(confirm, PairConfirm)


# -- timeout and rate limit -------------------------------------------------------------
def test_timeout_waiting_for_the_user() -> None:
    pair = PairingPair(timeout=60.0)
    pair.start()
    assert pair.car.tick(59.0) == []
    out = pair.car.tick(60.0)
    assert out == [PairResult(False, "timeout")]
    pair.collect()
    pair.deliver(out, "phone", 60.0)
    assert _failed(pair, "car") == [Reason.TIMEOUT] == _failed(pair, "phone")
    assert pair.car.tick(61.0) == []


def test_late_message_counts_as_timeout() -> None:
    pair = PairingPair(timeout=10.0)
    out = pair.car.receive(pair.phone.start()[0], 11.0)
    assert out == [PairResult(False, "timeout")]
    assert pair.car.next_event() == PairingFailed(Reason.TIMEOUT, "pairing took too long")


def test_oob_pairs_with_no_user_step() -> None:
    pair = PairingPair(oob=True)
    pair.start()
    assert pair.codes() == (None, None)
    assert not pair.code_events("car") and not pair.code_events("phone")
    assert _paired(pair, "car")[0].peer_public_key == pair.phone_id.public_key
    assert _paired(pair, "phone")[0].peer_public_key == pair.car_id.public_key


def test_oob_wrong_fingerprint() -> None:
    other = PairingUri.create(Identity.generate())
    pair = PairingPair(phone_uri=other, car_secret=other.secret)
    with pytest.raises(PairingError) as info:
        pair.start()
    assert info.value.reason is Reason.OOB_MISMATCH


def test_oob_wrong_secret_fails_confirmation() -> None:
    pair = PairingPair(oob=True)
    # The phone scanned an old QR code of the right car; the car now shows a new secret.
    pair.car = CarPairing(pair.car_id, transcript=TRANSCRIPT, now=0.0, oob_secret=b"\x07" * 16)
    with pytest.raises(PairingError) as info:
        pair.start()
    assert info.value.reason is Reason.CONFIRMATION_FAILED
    assert not _paired(pair, "car") and not _paired(pair, "phone")


def test_oob_request_without_a_qr_showing_is_refused() -> None:
    pair = PairingPair(phone_uri=None)
    car = pair.car
    with pytest.raises(PairingError) as info:
        car.receive(PairRequest(pair.phone_id.public_key, "Pixel", "oob"), 1.0)
    assert info.value.reason is Reason.OOB_MISMATCH


# -- every state meets every message ------------------------------------------------------
_SAMPLES: list[Message] = [
    PairRequest(b"\x09" * 32, "x", "numeric"),
    PairCommit(b"\x09" * 32, b"\x00" * 32),
    PairNonce(b"\x00" * 16),
    PairReveal(b"\x00" * 16),
    PairConfirm(b"\x00" * 32),
    PairResult(True, ""),
    PairResult(False, "rejected"),
    Hello(versions=[1], role="car", device_id="00", name="x"),
    NoiseHandshake(b""),
]

# Which (side, state, message type) pairs the machines accept; everything else must fail.
_ALLOWED = {
    ("car", "wait-request", PairRequest),
    ("car", "wait-nonce", PairNonce),
    ("car", "confirming", PairConfirm),
    ("phone", "wait-commit", PairCommit),
    ("phone", "wait-reveal", PairReveal),
    ("phone", "confirming", PairConfirm),
    ("phone", "confirming", PairResult),
}


def _at_state(side: str, state: str) -> PairingPair:
    """A pair whose ``side`` is in ``state``."""
    pair = PairingPair()
    phone_steps = ["idle", "wait-commit"]
    if side == "phone" and state in phone_steps:
        if state == "wait-commit":
            pair.phone.start()
        return pair
    if side == "car" and state == "wait-request":
        return pair
    req = pair.phone.start()[0]
    commit = pair.car.receive(req, 1.0)
    if state == "wait-nonce":
        return pair
    nonce = pair.phone.receive(commit[0], 1.0)
    if state == "wait-reveal":
        return pair
    pair.deliver(pair.car.receive(nonce[0], 1.0), "phone")
    if state == "done":
        pair.confirm("car", True)
        pair.confirm("phone", True)
    elif state == "failed":
        pair.machine(side).confirm(False, 2.0)
    return pair


_STATES = {
    "car": ["wait-request", "wait-nonce", "confirming", "done", "failed"],
    "phone": ["idle", "wait-commit", "wait-reveal", "confirming", "done", "failed"],
}


@pytest.mark.parametrize(
    ("side", "state"), [(s, st_) for s, states in _STATES.items() for st_ in states]
)
@pytest.mark.parametrize("msg", _SAMPLES, ids=lambda m: f"{type(m).__name__}")
def test_every_state_meets_every_message(side: str, state: str, msg: Message) -> None:
    pair = _at_state(side, state)
    machine = pair.machine(side)
    assert machine._state.value == state
    allowed = (side, state, type(msg)) in _ALLOWED
    # A peer's abort is always taken (a dead machine just ignores a crossing one).
    aborting = isinstance(msg, PairResult) and not msg.accepted and state != "done"
    try:
        out = machine.receive(msg, 2.0)
    except PairingError as exc:
        if state == "failed":
            assert exc.reason is Reason.REJECTED
        elif not allowed:
            assert exc.reason is Reason.UNEXPECTED_MESSAGE
        return
    assert allowed or aborting, f"{type(msg).__name__} accepted in {state}"
    assert isinstance(out, list)
    if aborting:
        assert out == []
        assert machine._state.value == "failed"


METHODS = ["numeric", "oob", "x"]


def _message_strategy() -> st.SearchStrategy[Message]:
    blob = st.binary(max_size=40) | st.sampled_from([b"\x00" * 16, b"\x00" * 32, bytes(32)])
    return st.one_of(
        st.builds(PairRequest, blob, st.text(max_size=200), st.sampled_from(METHODS)),
        st.builds(PairCommit, blob, blob),
        st.builds(PairNonce, blob),
        st.builds(PairReveal, blob),
        st.builds(PairConfirm, blob),
        st.builds(PairResult, st.booleans(), st.text(max_size=30)),
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([(s, x) for s, xs in _STATES.items() for x in xs]),
       st.lists(_message_strategy(), max_size=4))
def test_garbage_messages_only_raise_pairing_errors(where: tuple[str, str],
                                                    msgs: list[Message]) -> None:
    pair = _at_state(*where)
    machine = pair.machine(where[0])
    for m in msgs:
        try:
            machine.receive(m, 2.0)
        except PairingError:
            pass
        machine.tick(3.0)
