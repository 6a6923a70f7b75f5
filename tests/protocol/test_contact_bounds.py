"""The bounds of a contact (PROTOCOL.md section 7): the car refuses, the phone leaves out.

A paired phone could store a contact with a 4 MB name (it compresses to a few KB and fits
one frame) and the car's REST API would then serve 4 MB for it. Every field, and the whole
contact as sent, has a bound; the car refuses a batch beyond them as ``bad-batch`` and the
phone's sender leaves such a contact out, so the rest of the book still syncs.
"""

from __future__ import annotations

import msgspec
import pytest

from protocol.admission import PairingAdmission
from protocol.connection import ApplyBatch, CarConnection, ConnectionFailed, PhoneConnection, State
from protocol.contacts import (
    MAX_CONTACT_BYTES,
    MAX_ENTRIES,
    MAX_NOTE_BYTES,
    MAX_TEXT_BYTES,
    Address,
    Contact,
    Email,
    Phone,
    Photo,
    check_bounds,
    photo_hash,
)
from protocol.errors import Reason, SyncError
from protocol.identity import Identity
from protocol.messages import decode, encode
from protocol.sync import (
    EMPTY_ANCHOR,
    ContactsBatch,
    ContactsReceiver,
    ContactsSender,
    MirrorState,
    SyncCompleted,
)

CAR, PHONE = Identity.generate(), Identity.generate()
T, NOTE = MAX_TEXT_BYTES, MAX_NOTE_BYTES
BASE = Contact(uid="u1", fn="Ada")


def _with(**fields: object) -> Contact:
    return msgspec.structs.replace(BASE, **fields)


# Each bound, just over it (a multi-byte character counts its UTF-8 bytes).
OVER = {
    "fn-4MB": _with(fn="x" * 4_000_000),
    "fn": _with(fn="x" * (T + 1)),
    "fn-utf8": _with(fn="é" * (T // 2 + 1)),
    "n-part": _with(n=("", "x" * (T + 1), "", "", "")),
    "n-parts": _with(n=("a",) * 6),
    "org": _with(org="x" * (T + 1)),
    "title": _with(title="x" * (T + 1)),
    "birthday": _with(birthday="x" * (T + 1)),
    "phone-number": _with(phones=(Phone("1" * (T + 1)),)),
    "phone-label": _with(phones=(Phone("1", label="x" * (T + 1)),)),
    "phones": _with(phones=(Phone("1"),) * (MAX_ENTRIES + 1)),
    "email": _with(emails=(Email("x" * (T + 1)),)),
    "emails": _with(emails=(Email("a@b"),) * (MAX_ENTRIES + 1)),
    "street": _with(addresses=(Address(street="x" * (T + 1)),)),
    "addresses": _with(addresses=(Address(),) * (MAX_ENTRIES + 1)),
    "note": _with(note="x" * (NOTE + 1)),
    "photo-16": _with(photo=bytes(16)),
    "photo-33": _with(photo=bytes(33)),
    "whole": _with(phones=tuple(Phone("1" * T, label=str(i)) for i in range(MAX_ENTRIES))),
}
# Each bound, exactly at it.
AT = {
    "fn": _with(fn="x" * T),
    "fn-utf8": _with(fn="é" * (T // 2)),
    "n": _with(n=("x" * T,) * 5),
    "phones": _with(phones=(Phone("1" * 20, "cell", "x" * 100),) * MAX_ENTRIES),
    "note": _with(note="x" * NOTE),
    "photo": _with(photo=bytes(32)),
    "whole": _with(phones=tuple(Phone("1" * 1000) for _ in range(MAX_ENTRIES)), note="x" * 1000),
}


def _batch(*contacts: Contact, photos: list[Photo] | None = None) -> ContactsBatch:
    return ContactsBatch(1, EMPTY_ANCHOR, list(contacts), [], photos or [], True)


def _receive(batch: ContactsBatch) -> list[object]:
    receiver = ContactsReceiver(MirrorState())
    receiver.hello()
    receiver.receive(decode(encode(batch)))
    return [receiver.next_event()]


@pytest.mark.parametrize("name", OVER)
def test_the_car_refuses_a_batch_with_a_contact_over_a_bound(name: str) -> None:
    contact = OVER[name]
    assert check_bounds(contact) is not None
    with pytest.raises(SyncError) as info:
        _receive(_batch(_with(uid="ok"), contact))
    assert info.value.reason is Reason.BAD_BATCH
    assert "upsert 1" in info.value.detail


@pytest.mark.parametrize("name", AT)
def test_a_contact_at_each_bound_is_stored(name: str) -> None:
    contact = AT[name]
    assert check_bounds(contact) is None
    (event,) = _receive(_batch(contact))
    assert isinstance(event, ApplyBatch) and event.upserts == [contact]


def test_the_whole_contact_bound_counts_the_bytes_as_sent() -> None:
    contact = AT["whole"]
    size = len(msgspec.msgpack.encode(contact))
    assert size <= MAX_CONTACT_BYTES
    assert check_bounds(contact, size) is None
    assert check_bounds(contact, MAX_CONTACT_BYTES + 1) is not None


def test_a_photo_with_an_oversized_mime_is_refused() -> None:
    data = b"\x89PNG"
    photo = Photo(photo_hash(data), "image/" + "x" * 200, data)
    with pytest.raises(SyncError) as info:
        _receive(_batch(photos=[photo]))
    assert info.value.reason is Reason.BAD_BATCH


def _pump(phone: PhoneConnection, car: CarConnection) -> list[object]:
    events: list[object] = []
    for _ in range(20):
        a, b = phone.data_to_send(), car.data_to_send()
        if a and car.state is not State.CLOSED:
            car.receive_data(a, 1.0)
        if b and phone.state is not State.CLOSED:
            phone.receive_data(b, 1.0)
        while (ev := car.next_event()) is not None:
            events.append(ev)
        while phone.next_event() is not None:
            pass
        if not a and not b:
            break
    return events


def test_a_paired_phone_cannot_store_a_4_mb_name_through_the_car() -> None:
    car = CarConnection(
        CAR,
        "Car",
        lookup_peer={PHONE.device_id: PHONE.public_key}.get,
        admission=PairingAdmission(),
    )
    phone = PhoneConnection(PHONE, "Pixel", car_public_key=CAR.public_key)
    _pump(phone, car)
    assert car.state is State.ESTABLISHED
    phone.send(_batch(_with(uid="ok"), OVER["fn-4MB"]))
    events = _pump(phone, car)
    assert not [e for e in events if isinstance(e, ApplyBatch)], "nothing may be stored"
    (failed,) = [e for e in events if isinstance(e, ConnectionFailed)]
    assert failed.error.reason is Reason.BAD_BATCH


def test_the_phone_leaves_out_a_contact_over_a_bound_and_syncs_the_rest() -> None:
    book = [_with(uid="a"), msgspec.structs.replace(OVER["fn-4MB"], uid="big"), _with(uid="c")]
    sender = ContactsSender(book, {}, None)
    assert [uid for uid, _ in sender.skipped] == ["big"]
    assert "fn over 1024 bytes" in sender.skipped[0][1]
    receiver = ContactsReceiver(MirrorState())
    to_phone = receiver.hello()
    stored: list[str] = []
    while to_phone:
        to_car = [m for msg in to_phone for m in sender.receive(decode(encode(msg)))]
        to_phone = []
        for msg in to_car:  # the car refuses nothing the sender sends
            to_phone += receiver.receive(decode(encode(msg)))
            while (ev := receiver.next_event()) is not None:
                if isinstance(ev, ApplyBatch):
                    stored += [c.uid for c in ev.upserts]
                    to_phone += receiver.applied(ev)
    # ContactsDone(total=2) matched the car's mirror, else the receiver had raised.
    assert sender.done and stored == ["a", "c"]
    summaries = []
    while (pev := sender.next_event()) is not None:
        summaries += [pev.summary] if isinstance(pev, SyncCompleted) else []
    assert summaries[0].added == 2
