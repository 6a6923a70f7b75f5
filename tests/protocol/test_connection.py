"""Phone and car connections joined in memory: pair, then session; failures are typed."""

from __future__ import annotations

import os

import pytest

from protocol.admission import PairingAdmission
from protocol.connection import (
    ApplyBatch,
    ArtworkReceived,
    CarConnection,
    ConnectionFailed,
    MessageReceived,
    PairingCode,
    PairingComplete,
    PhoneConnection,
    PinRequested,
    SessionEstablished,
    State,
)
from protocol.contacts import Contact, contact_digest
from protocol.errors import ProtocolError, Reason
from protocol.framing import encode_frame
from protocol.identity import Identity
from protocol.media import artwork_of
from protocol.messages import Ping, encode
from protocol.sync import ContactsBatch
from protocol.sync.wire import EMPTY_ANCHOR, batch_digest, next_anchor


class Link:
    """Both sides plus an in-memory wire; collects events per side."""

    def __init__(self, phone: PhoneConnection, car: CarConnection) -> None:
        self.phone, self.car = phone, car
        self.events: dict[str, list[object]] = {"phone": [], "car": []}
        self.bytes_to_car = 0

    def pump(self, now: float = 1.0) -> None:
        for _ in range(20):
            a = self.phone.data_to_send()
            if a and self.car.state is not State.CLOSED:
                self.bytes_to_car += len(a)
                self.car.receive_data(a, now)
            b = self.car.data_to_send()
            if b and self.phone.state is not State.CLOSED:
                self.phone.receive_data(b, now)
            self._drain()
            if not a and not b:
                return

    def _drain(self) -> None:
        for side, conn in (("phone", self.phone), ("car", self.car)):
            while (ev := conn.next_event()) is not None:
                self.events[side].append(ev)
                if isinstance(ev, PinRequested):  # the car's shell stores the key at once
                    self.car.pin_stored(1.0)

    def of(self, side: str, cls: type) -> list:
        return [e for e in self.events[side] if isinstance(e, cls)]


def make_car(pinned: dict[str, bytes], open_: bool = True) -> CarConnection:
    admission = PairingAdmission(open_=open_)
    return CarConnection(CAR_ID, "Car", lookup_peer=pinned.get, admission=admission)


CAR_ID = Identity.generate()
PHONE_ID = Identity.generate()


def test_pair_then_session_then_messages() -> None:
    link = Link(PhoneConnection(PHONE_ID, "Pixel"), make_car({}))
    link.pump()
    codes = [link.of(s, PairingCode)[0].code for s in ("phone", "car")]
    assert codes[0] == codes[1] and len(codes[0]) == 6
    link.car.confirm_pairing(True, 2.0)
    link.phone.confirm_pairing(True, 2.0)
    link.pump()
    assert link.of("car", PairingComplete)[0].peer_public_key == PHONE_ID.public_key
    assert link.of("phone", PairingComplete)[0].peer_public_key == CAR_ID.public_key
    assert link.of("car", SessionEstablished) and link.of("phone", SessionEstablished)
    link.phone.send(Ping(nonce=7))
    link.pump()
    # The car answered the Ping itself; no application event was needed.
    assert not link.of("car", MessageReceived)


def test_pinned_session_without_pairing() -> None:
    car = make_car({PHONE_ID.device_id: PHONE_ID.public_key})
    link = Link(PhoneConnection(PHONE_ID, "Pixel", car_public_key=CAR_ID.public_key), car)
    link.pump()
    assert link.car.state is State.ESTABLISHED and link.phone.state is State.ESTABLISHED


def test_unknown_phone_fails_the_handshake_before_any_application_data() -> None:
    link = Link(PhoneConnection(PHONE_ID, "Pixel", car_public_key=CAR_ID.public_key), make_car({}))
    link.pump()
    car_err = link.of("car", ConnectionFailed)[0].error
    phone_err = link.of("phone", ConnectionFailed)[0].error
    # Refused as a wrong key would be (PROTOCOL.md 6.1): no oracle of who is paired.
    assert car_err.reason is Reason.HANDSHAKE_FAILED and "not paired" in car_err.detail
    assert phone_err.reason is Reason.HANDSHAKE_FAILED and phone_err.from_peer
    assert not link.of("car", SessionEstablished) and not link.of("car", MessageReceived)


def test_wrong_pinned_car_key_fails_handshake() -> None:
    other = Identity.generate()
    car = make_car({PHONE_ID.device_id: PHONE_ID.public_key})
    link = Link(PhoneConnection(PHONE_ID, "Pixel", car_public_key=other.public_key), car)
    link.pump()
    assert link.of("car", ConnectionFailed)[0].error.reason is Reason.HANDSHAKE_FAILED


def test_pairing_closed_is_reported_to_phone() -> None:
    link = Link(PhoneConnection(PHONE_ID, "Pixel"), make_car({}, open_=False))
    link.pump()
    assert link.of("phone", ConnectionFailed)[0].error.reason is Reason.PAIRING_CLOSED


def test_a_window_that_closes_while_the_phone_is_on_its_way_shows_no_code() -> None:
    admission = PairingAdmission(open_=True)
    car = CarConnection(CAR_ID, "Car", lookup_peer={}.get, admission=admission)
    phone = PhoneConnection(PHONE_ID, "Pixel")
    car.receive_data(phone.data_to_send(), 1.0)  # the Hello is admitted...
    admission.close()  # ...then the car user closes the window
    link = Link(phone, car)
    link.pump()
    assert not link.of("car", PairingCode)  # nothing reaches the car's dashboard
    assert link.of("car", ConnectionFailed)[0].error.reason is Reason.PAIRING_CLOSED
    assert link.of("phone", ConnectionFailed)[0].error.reason is Reason.PAIRING_CLOSED


def test_a_window_that_closes_before_the_pin_pins_nothing() -> None:
    admission = PairingAdmission(open_=True)
    car = CarConnection(CAR_ID, "Car", lookup_peer={}.get, admission=admission)
    link = Link(PhoneConnection(PHONE_ID, "Pixel"), car)
    link.pump()
    assert link.of("car", PairingCode)
    link.car.confirm_pairing(True, 2.0)
    admission.close()  # closed after the car user accepted, before the phone confirmed
    link.phone.confirm_pairing(True, 2.0)
    link.pump()
    assert not link.of("car", PinRequested)
    assert not link.of("car", PairingComplete) and not link.of("phone", PairingComplete)
    assert link.of("phone", ConnectionFailed)[0].error.reason is Reason.PAIRING_CLOSED


def test_car_rejects_code() -> None:
    link = Link(PhoneConnection(PHONE_ID, "Pixel"), make_car({}))
    link.pump()
    link.phone.confirm_pairing(True, 2.0)
    link.car.confirm_pairing(False, 2.0)
    link.pump()
    assert link.of("phone", ConnectionFailed)[0].error.reason is Reason.REJECTED
    assert not link.of("car", PairingComplete)


def test_garbage_after_session_is_typed_error() -> None:
    car = make_car({PHONE_ID.device_id: PHONE_ID.public_key})
    link = Link(PhoneConnection(PHONE_ID, "Pixel", car_public_key=CAR_ID.public_key), car)
    link.pump()
    link.car.receive_data(b"\x00\x00\x00\x05hello", 3.0)
    err = link.car.next_event()
    assert isinstance(err, ConnectionFailed)
    assert err.error.reason is Reason.TAMPERED
    with pytest.raises(ProtocolError):
        link.car.receive_data(b"", 3.0)


def test_garbage_before_hello_is_typed_error() -> None:
    car = make_car({})
    car.receive_data(b"\x00\x00\x00\x03abc", 0.0)
    ev = car.next_event()
    assert isinstance(ev, ConnectionFailed) and ev.error.reason is Reason.MALFORMED


class Impostor(Identity):
    """An attacker's key pair that claims a paired phone's device id."""

    claimed = ""

    @property
    def device_id(self) -> str:
        return self.claimed


def test_pairing_under_another_phones_id_is_refused() -> None:
    impostor = Impostor.generate()
    Impostor.claimed = PHONE_ID.device_id
    link = Link(PhoneConnection(impostor, "Evil"), make_car({}))
    link.pump()
    assert not link.of("car", PairingCode), "the car must not even show a code"
    assert link.of("car", ConnectionFailed)[0].error.reason is Reason.ID_MISMATCH


def test_no_hello_within_the_setup_timeout_closes() -> None:
    car = make_car({})
    car.tick(5.0)
    assert car.next_event() is None
    car.tick(11.0)
    ev = car.next_event()
    assert isinstance(ev, ConnectionFailed) and ev.error.reason is Reason.TIMEOUT


def test_big_frame_before_the_session_is_refused() -> None:
    car = make_car({})
    car.receive_data((64 * 1024).to_bytes(4, "big"), 0.0)
    ev = car.next_event()
    assert isinstance(ev, ConnectionFailed) and ev.error.reason is Reason.FRAME_TOO_LARGE


def test_big_frames_are_fine_once_established() -> None:
    car = make_car({PHONE_ID.device_id: PHONE_ID.public_key})
    link = Link(PhoneConnection(PHONE_ID, "Pixel", car_public_key=CAR_ID.public_key), car)
    link.pump()
    assert link.car.state is State.ESTABLISHED
    # 200 KB of incompressible bytes in one message: over the pre-session limit, fine now.
    art = artwork_of(os.urandom(200_000), "image/png")
    link.car.request_artwork(art.hash)  # the car takes only images it asked for
    link.pump()
    link.phone.send(art)
    link.pump()
    got = link.of("car", ArtworkReceived)
    assert got and got[-1].artwork == art


def test_oob_pairing_under_another_phones_id_is_refused() -> None:
    from protocol.identity import PairingUri

    uri = PairingUri.create(CAR_ID)
    impostor = Impostor.generate()
    Impostor.claimed = PHONE_ID.device_id
    admission = PairingAdmission()
    admission.show_uri(uri, 0.0, 0)
    car = CarConnection(CAR_ID, "Car", lookup_peer={}.get, admission=admission)
    link = Link(PhoneConnection(impostor, "Evil", oob=uri), car)
    link.pump()
    assert not link.of("car", PairingComplete)
    assert link.of("car", ConnectionFailed)[0].error.reason is Reason.ID_MISMATCH


def test_a_stray_frame_after_the_confirmation_pins_nothing_on_either_side() -> None:
    # The car holds PairResult(true) for the shell's pin; a frame arriving meanwhile fails
    # the connection, and the queued PinRequested must die with it: otherwise the car would
    # pin a phone that never got the verdict.
    phone, car = PhoneConnection(PHONE_ID, "Pixel"), make_car({})
    link = Link(phone, car)
    link.pump()
    car.confirm_pairing(True, 2.0)
    link.pump()
    phone.confirm_pairing(True, 2.0)
    car.receive_data(phone.data_to_send() + encode_frame(encode(Ping(nonce=1))), 2.0)
    events = []
    while (ev := car.next_event()) is not None:
        events.append(ev)
    assert not [e for e in events if isinstance(e, PinRequested)]
    assert isinstance(events[-1], ConnectionFailed)
    phone.receive_data(car.data_to_send(), 2.0)
    link.pump()
    assert not link.of("phone", PairingComplete) and not link.of("car", PairingComplete)


def _contact_batches(n: int) -> list[ContactsBatch]:
    """``n`` chained one-contact batches from an empty mirror, as a phone would send them."""
    out, anchor = [], EMPTY_ANCHOR
    for seq in range(n):
        c = Contact(uid=f"u{seq}", fn=f"Name {seq}")
        out.append(ContactsBatch(seq, anchor, [c], [], [], seq == n - 1))
        anchor = next_anchor(anchor, batch_digest([(c.uid, contact_digest(c))], [], []))
    return out


def test_a_failed_commit_voids_the_batches_queued_behind_it() -> None:
    car = make_car({PHONE_ID.device_id: PHONE_ID.public_key})
    link = Link(PhoneConnection(PHONE_ID, "Pixel", car_public_key=CAR_ID.public_key), car)
    link.pump()
    assert car.state is State.ESTABLISHED
    for batch in _contact_batches(2):
        link.phone.send(batch)
    car.receive_data(link.phone.data_to_send(), 3.0)  # both batches in one chunk
    first = car.next_event()
    while first is not None and not isinstance(first, ApplyBatch):
        first = car.next_event()
    assert isinstance(first, ApplyBatch) and first.seq == 0
    car.abort(Reason.PEER_ERROR, "car storage: disk full")  # the shell's commit failed
    rest = []
    while (ev := car.next_event()) is not None:
        rest.append(ev)
    assert [type(e) for e in rest] == [ConnectionFailed], "batch 1 must not be committed"
    car.batch_stored(first)  # a late answer to a dead connection is ignored, not raised


@pytest.mark.parametrize("wrong_way", ["media-command", "artwork-request"])
def test_a_car_to_phone_message_from_the_phone_is_unexpected(wrong_way: str) -> None:
    from protocol.media import ArtworkRequest, MediaCommand

    msg = MediaCommand(action="play") if wrong_way == "media-command" else ArtworkRequest(b"1" * 32)
    car = make_car({PHONE_ID.device_id: PHONE_ID.public_key})
    link = Link(PhoneConnection(PHONE_ID, "Pixel", car_public_key=CAR_ID.public_key), car)
    link.pump()
    link.phone.send(msg)
    link.pump()
    assert link.of("car", ConnectionFailed)[0].error.reason is Reason.UNEXPECTED_MESSAGE
    assert link.of("phone", ConnectionFailed)[0].error.reason is Reason.UNEXPECTED_MESSAGE
    assert not link.of("car", MessageReceived)
