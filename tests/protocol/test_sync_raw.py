"""``raw_upserts`` and the receiver's use of the upserts' wire bytes (PROTOCOL.md section 7).

The car digests and stores each contact as the msgpack bytes the phone sent. These tests
check that ``raw_upserts`` cuts exactly those bytes out of a ``ContactsBatch`` body, and that
``ContactsReceiver`` digests and hands on the raw bytes when given them, and encodes each
contact itself only when not.
"""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from protocol.contacts import Address, Contact, Email, Phone, Photo, contact_digest, photo_hash
from protocol.messages import decode, encode
from protocol.sync import (
    EMPTY_ANCHOR,
    ApplyBatch,
    ContactsBatch,
    ContactsReceiver,
    MirrorState,
    raw_upserts,
)


def _photo(seed: bytes) -> Photo:
    data = b"\x89PNG" + seed * 50
    return Photo(photo_hash(data), "image/png", data)


PHOTO_A, PHOTO_B = _photo(b"a"), _photo(b"b")

CONTACTS = [
    Contact(uid="u-ascii", fn="Ada Lovelace", n=("Lovelace", "Ada", "", "", "")),
    Contact(
        uid="u-ü-山田",
        fn="Zoë Ångström 山田太郎",
        org="Société Générale",
        phones=(Phone("+33 1 23 45 67 89", "cell"), Phone("+81 3-1234-5678", label="会社")),
        emails=(Email("zoë@example.org", "home"),),
        addresses=(Address(street="Straße 1", locality="München", country="Deutschland"),),
        birthday="--02-29",
        note="emoji 🚗📞 and a\nnewline",
        photo=PHOTO_A.hash,
    ),
    Contact(uid="u-photo-b", fn="Bob", photo=PHOTO_B.hash),
    Contact(uid="u-long", fn="x" * 300, note="y" * 8_000),  # str8 and str16 lengths
]
# A str32 string is over the bounds of section 7 (the car refuses it), but raw_upserts,
# which runs before those checks, must still cut it out whole.
OVERSIZED = Contact(uid="u-str32", fn="z", note="y" * 70_000)


def _batch(upserts: list[Contact], photos: list[Photo] | None = None) -> ContactsBatch:
    return ContactsBatch(
        seq=7,
        base_anchor=EMPTY_ANCHOR,
        upserts=upserts,
        deletes=["gone-1", "gone-ü"],
        photos=photos or [],
        final=True,
    )


def _blake(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


def _apply(batch: ContactsBatch, raw: list[bytes] | None) -> ApplyBatch:
    receiver = ContactsReceiver(MirrorState())
    receiver.hello()
    assert receiver.receive(batch, raw) == []  # a batch yields an event, not a reply
    ev = receiver.next_event()
    assert isinstance(ev, ApplyBatch)
    return ev


@pytest.mark.parametrize(
    ("upserts", "photos"),
    [
        ([], []),
        (CONTACTS[:1], []),
        (CONTACTS[1:2], [PHOTO_A]),
        (CONTACTS, [PHOTO_A, PHOTO_B]),
        ([*CONTACTS, OVERSIZED], []),
    ],
    ids=["none", "one", "one-non-ascii-with-photo", "many", "str32"],
)
def test_raw_upserts_are_each_contacts_bytes_as_encoded(
    upserts: list[Contact], photos: list[Photo]
) -> None:
    body = encode(_batch(upserts, photos))
    raw = raw_upserts(body)
    assert raw == [msgspec.msgpack.encode(c) for c in upserts]
    assert all(type(r) is bytes for r in raw)
    # Each slice is a whole contact: it decodes back to the one it came from.
    assert [msgspec.msgpack.decode(r, type=Contact) for r in raw] == upserts


class _WireBatch(msgspec.Struct, array_like=True, tag=33):
    """A ``ContactsBatch`` whose upserts are written as given bytes (the phone's encoder)."""

    seq: int
    base_anchor: bytes
    upserts: list[msgspec.Raw]
    deletes: list[str]
    photos: list[Photo]
    final: bool


def _non_canonical(contact: Contact) -> bytes:
    """The contact with its uid as str8 (``0xd9``), which msgspec never writes for <32 B."""
    canonical = msgspec.msgpack.encode(contact)
    uid = contact.uid.encode()
    assert len(uid) < 32 and canonical[1] == 0xA0 | len(uid)  # fixarray, then fixstr uid
    return canonical[:1] + bytes([0xD9, len(uid)]) + canonical[2:]


def test_raw_upserts_keeps_bytes_a_reencoding_would_change() -> None:
    contact = CONTACTS[0]
    sent = _non_canonical(contact)
    body = msgspec.msgpack.encode(_WireBatch(1, EMPTY_ANCHOR, [msgspec.Raw(sent)], [], [], True))
    batch = decode(body)
    assert isinstance(batch, ContactsBatch) and batch.upserts == [contact]
    assert raw_upserts(body) == [sent] != [msgspec.msgpack.encode(contact)]


def test_receiver_digests_and_hands_on_the_raw_bytes() -> None:
    batch = _batch(CONTACTS, [PHOTO_A, PHOTO_B])
    raw = raw_upserts(encode(batch))
    ev = _apply(batch, raw)
    assert ev.encoded == raw
    assert ev.digests == [(c.uid, _blake(r)) for c, r in zip(CONTACTS, raw, strict=True)]
    assert ev.added == frozenset(c.uid for c in CONTACTS)


def test_receiver_digests_non_canonical_raw_bytes_as_sent() -> None:
    contact = CONTACTS[0]
    sent = _non_canonical(contact)
    ev = _apply(_batch([contact]), [sent])
    assert ev.encoded == [sent]
    assert ev.digests == [(contact.uid, _blake(sent))]
    assert _blake(sent) != contact_digest(contact)  # so the digest really came from ``raw``


@pytest.mark.parametrize("raw", [None, []], ids=["none", "wrong-length"])
def test_receiver_without_usable_raw_encodes_each_contact(raw: list[bytes] | None) -> None:
    batch = _batch(CONTACTS, [PHOTO_A, PHOTO_B])
    ev = _apply(batch, raw)
    assert ev.encoded == [msgspec.msgpack.encode(c) for c in CONTACTS]
    assert ev.digests == [(c.uid, contact_digest(c)) for c in CONTACTS]


def test_canonical_raw_and_no_raw_give_the_same_batch() -> None:
    batch = _batch(CONTACTS, [PHOTO_A, PHOTO_B])
    with_raw = _apply(batch, raw_upserts(encode(batch)))
    without = _apply(batch, None)
    assert with_raw.digests == without.digests
    assert with_raw.new_anchor == without.new_anchor
    assert with_raw.encoded == without.encoded
