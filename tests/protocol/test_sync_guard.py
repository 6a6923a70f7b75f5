"""The mass-deletion guard: a sync that would empty the car stops before its first batch."""

from __future__ import annotations

import msgspec
import pytest

from protocol.contacts import Contact, Phone
from protocol.messages import decode, encode
from protocol.sync import (
    ContactsBatch,
    ContactsReceiver,
    ContactsSender,
    DeletesRefused,
    Manifest,
    ManifestRequest,
    MirrorState,
    SyncSnapshot,
    refuses_deletes,
)


def book(n: int) -> list[Contact]:
    return [
        Contact(uid=f"u{i:04d}", fn=f"Person {i}", phones=(Phone(f"+1 555 {i:04d}"),))
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("mirror", "deletes", "refused"),
    [
        (100, 70, True),  # a book of 100 becomes a file of 30
        (100, 100, True),  # everything
        (100, 51, True),
        (100, 50, False),  # exactly half is allowed
        (30, 21, True),
        (30, 20, False),  # 20 deletions always pass
        (20, 20, False),  # a small book may be emptied
        (1000, 21, False),  # under half
        (0, 0, False),
    ],
)
def test_more_than_half_and_more_than_20_is_refused(
    mirror: int, deletes: int, refused: bool
) -> None:
    assert refuses_deletes(mirror, deletes) is refused


def full_sync(contacts: list[Contact]) -> tuple[ContactsReceiver, SyncSnapshot]:
    """Sync ``contacts`` to an empty car; return its receiver state and the phone's snapshot."""
    sender = ContactsSender(contacts, {}, None)
    receiver = ContactsReceiver(MirrorState())
    to_car = sender.receive(decode(encode(receiver.hello()[0])))
    while to_car:
        msg = to_car.pop(0)
        out = receiver.receive(decode(encode(msg)))
        while (ev := receiver.next_event()) is not None:
            if hasattr(ev, "new_anchor"):
                out += receiver.applied(ev)  # type: ignore[arg-type]
        for reply in out:
            to_car += sender.receive(decode(encode(reply)))
    assert sender.done
    return receiver, sender.snapshot


def test_armed_sender_refuses_before_any_batch() -> None:
    receiver, snapshot = full_sync(book(100))
    sender = ContactsSender(book(30), {}, snapshot, allow_deletes=False)
    with pytest.raises(DeletesRefused) as info:
        sender.receive(receiver.hello()[0])
    assert (info.value.mirror, info.value.deletes) == (100, 70)
    assert info.value.anchor == receiver.state.anchor
    assert sender.journal() == []  # nothing to persist: the snapshot stays what it was


def test_refusal_after_the_manifest_too() -> None:
    receiver, _ = full_sync(book(100))
    sender = ContactsSender(book(30), {}, None, allow_deletes=False)  # snapshot lost
    (req,) = sender.receive(receiver.hello()[0])
    assert isinstance(req, ManifestRequest)
    chunks = [m for m in receiver.receive(req) if isinstance(m, Manifest)]
    with pytest.raises(DeletesRefused):
        for chunk in chunks:
            sender.receive(chunk)


def test_contacts_left_out_as_over_the_bounds_count_as_deletions() -> None:
    receiver, snapshot = full_sync(book(100))
    huge = [msgspec.structs.replace(c, fn="x" * 5000) for c in book(100)[:60]]
    sender = ContactsSender(huge + book(100)[60:], {}, snapshot, allow_deletes=False)
    assert len(sender.skipped) == 60
    with pytest.raises(DeletesRefused) as info:
        sender.receive(receiver.hello()[0])
    assert info.value.deletes == 60


def test_small_or_allowed_deletions_go_through() -> None:
    receiver, snapshot = full_sync(book(100))
    small = ContactsSender(book(80), {}, snapshot, allow_deletes=False)
    (batch,) = small.receive(receiver.hello()[0])
    assert isinstance(batch, ContactsBatch) and len(batch.deletes) == 20
    allowed = ContactsSender([], {}, snapshot, allow_deletes=True)
    (batch, *_) = allowed.receive(receiver.hello()[0])
    assert isinstance(batch, ContactsBatch) and len(batch.deletes) == 100
