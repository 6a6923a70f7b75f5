"""The sync hot path's bulk helpers agree with the one-contact-at-a-time rules they replace."""

from __future__ import annotations

from itertools import pairwise

import msgspec
import pytest

from protocol.contacts import (
    MAX_TEXT_BYTES,
    Contact,
    Phone,
    bounds_refusals,
    check_bounds,
    contact_digest,
    encode_each,
    raw_digests,
)
from protocol.sync import (
    MAX_BATCH_BYTES,
    ContactsAck,
    ContactsBatch,
    ContactsState,
    DigestCache,
    JournalBase,
    SyncSnapshot,
    replay_journal,
)
from protocol.sync.sender import ContactsSender


def _book(n: int) -> list[Contact]:
    return [Contact(uid=f"u{i:05d}", fn=f"Person {i}", phones=(Phone(f"+1{i}"),)) for i in range(n)]


def _odd_ones() -> list[Contact]:
    return [
        Contact(uid="n6", fn="six parts", n=("a", "b", "c", "d", "e", "f")),
        Contact(uid="p65", fn="many phones", phones=tuple(Phone(str(i)) for i in range(65))),
        Contact(uid="longfn", fn="x" * (MAX_TEXT_BYTES + 1)),
        Contact(uid="longnote", fn="ok", note="n" * 9000),
        Contact(uid="photo", fn="bad photo", photo=b"\x01" * 31),
        Contact(uid="fine-big", fn="ok", note="é" * 2000),
    ]


def test_bulk_encoding_and_digests_are_each_contacts_own() -> None:
    book = _book(50) + _odd_ones()
    raws = encode_each(book)
    assert [bytes(r) for r in raws] == [msgspec.msgpack.encode(c) for c in book]
    assert raw_digests(raws) == [contact_digest(c) for c in book]


def test_bounds_refusals_match_check_bounds() -> None:
    book = _book(20) + _odd_ones()
    sizes = [len(msgspec.msgpack.encode(c)) for c in book]
    expected = {i: w for i, c in enumerate(book) if (w := check_bounds(c)) is not None}
    assert bounds_refusals(book, sizes) == expected
    assert set(expected) == {20, 21, 22, 23, 24}  # the fine big note passes


def test_digest_cache_follows_edits_like_a_fresh_one() -> None:
    cache = DigestCache()
    book = {c.uid: c for c in _book(300)}
    cache.measure(book)
    edited = dict(book)
    edited["u00007"] = msgspec.structs.replace(book["u00007"], fn="Renamed")
    del edited["u00100"]
    edited["new"] = Contact(uid="new", fn="New")
    edited["p65"] = _odd_ones()[1]
    # An equal but re-imported contact counts as the same.
    edited["u00200"] = msgspec.msgpack.decode(msgspec.msgpack.encode(book["u00200"]), type=Contact)
    fresh = DigestCache()
    assert cache.measure(edited) == fresh.measure(edited)
    assert cache.refused == fresh.refused == {"p65": "65 phone entries (at most 64)"}
    edited["p65"] = Contact(uid="p65", fn="fixed")
    cache.measure(edited)
    assert cache.refused == {}


def test_digest_cache_refuses_a_bad_uid_before_changing() -> None:
    cache = DigestCache()
    book = {c.uid: c for c in _book(3)}
    digests, _ = cache.measure(book)
    with pytest.raises(Exception, match="uid"):
        cache.measure({**book, "x" * 1025: Contact(uid="x" * 1025, fn="long")})
    assert cache.measure(book)[0] == digests


def _first_batches(sender: ContactsSender) -> list[ContactsBatch]:
    out = sender.receive(ContactsState(bytes(16), 0))
    return [m for m in out if isinstance(m, ContactsBatch)]


def test_batches_hold_upserts_in_book_order_within_the_bounds() -> None:
    big = "y" * 900
    book = [Contact(uid=f"k{(i * 7919) % 2000:04d}", fn=f"P{i}", note=big) for i in range(2000)]
    sender = ContactsSender(book, {}, None, window=100)
    batches = _first_batches(sender)
    uids = [c.uid for b in batches for c in b.upserts]
    assert uids == [c.uid for c in book]
    for b in batches:
        assert 1 <= len(b.upserts) <= 500
        size = sum(len(msgspec.msgpack.encode(c)) for c in b.upserts)
        assert size <= MAX_BATCH_BYTES
    # Greedy: each batch would have overflowed with the next contact.
    for b, nxt in pairwise(batches):
        size = sum(len(msgspec.msgpack.encode(c)) for c in [*b.upserts, nxt.upserts[0]])
        assert size > MAX_BATCH_BYTES or len(b.upserts) == 500


def test_a_sync_from_the_persisted_snapshot_appends_to_its_journal() -> None:
    book = _book(10)
    first = ContactsSender(book, {}, None)
    out = first.receive(ContactsState(bytes(16), 0))
    journal = first.journal()
    assert isinstance(journal[0], JournalBase)
    (batch,) = out
    first.receive(ContactsAck(batch.seq, first.snapshot.inflight[0].anchor))
    journal += first.journal()
    saved = replay_journal(None, journal)
    changed = [*book[:-1], msgspec.structs.replace(book[-1], fn="Changed")]
    second = ContactsSender(changed, {}, saved)
    (delta,) = second.receive(ContactsState(saved.anchor, len(saved.digests)))
    edits = second.journal()
    assert not any(isinstance(e, JournalBase) for e in edits)  # no rewrite of 10 digests
    assert [c.fn for c in delta.upserts] == ["Changed"]
    rebuilt = replay_journal(None, journal + edits)
    assert [i.anchor for i in rebuilt.inflight] == [i.anchor for i in second.snapshot.inflight]
    assert rebuilt.digests == second.snapshot.digests


def test_a_snapshot_with_batches_in_flight_is_rewritten() -> None:
    book = _book(4)
    first = ContactsSender(book, {}, None)
    first.receive(ContactsState(bytes(16), 0))
    unacked = replay_journal(None, first.journal())
    assert unacked.inflight
    again = ContactsSender(book, {}, unacked)
    again.receive(ContactsState(bytes(16), 0))
    assert isinstance(again.journal()[0], JournalBase)


def test_equal_snapshots_give_equal_plans() -> None:
    book = _book(5)
    snap = SyncSnapshot(bytes([1]) * 16, {c.uid: contact_digest(c) for c in book[:3]}, set())
    sender = ContactsSender(book, {}, snap)
    (batch,) = sender.receive(ContactsState(snap.anchor, 3))
    assert [c.uid for c in batch.upserts] == ["u00003", "u00004"]
