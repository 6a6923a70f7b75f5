"""The contact model shared by the phone and the car.

Field values are normalised at import (see ``protocol.vcard``): phone and email types are
lower-case words from a small vocabulary (``cell``, ``home``, ``work``, ``fax``, ``pager``,
``main``, ``other``) and a free ``label`` carries anything else, such as iOS's
``X-ABLabel``. Photos are not inline: ``photo`` is the SHA-256 of the image bytes, and the
bytes travel once per hash (``protocol.sync``).

Structs are ``array_like`` so a typical contact encodes to well under 120 bytes. They forbid
extra trailing elements: the car digests and stores a contact as the bytes the phone sent,
so those bytes must hold nothing but the contact. They are ``gc=False``: frozen and holding
only strings, bytes and tuples of each other, they cannot form a reference cycle, and
leaving 10k decoded contacts out of the cyclic collector halves a batch's decode time.

Many contacts at once. A sync handles thousands of contacts per step, so the helpers here
that take many (``encode_each``, ``raw_digests``, ``bounds_refusals``) run their per-contact
loop in C (``map``) rather than one Python call per contact.

Bounds. Every field has one (``check_bounds``, PROTOCOL.md section 7), far beyond any
real phone book, so a paired phone cannot make the car store and serve megabytes for one
contact: a compressed batch would otherwise carry a 4 MB name in a few KB. The car refuses
a batch holding a contact out of bounds; the phone leaves such a contact out of the sync.
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Iterable, Sequence
from itertools import compress

import msgspec

__all__ = [
    "MAX_CONTACT_BYTES",
    "MAX_ENTRIES",
    "MAX_MIME_BYTES",
    "MAX_NOTE_BYTES",
    "MAX_TEXT_BYTES",
    "Address",
    "Contact",
    "Email",
    "Phone",
    "Photo",
    "bounds_refusals",
    "check_bounds",
    "contact_digest",
    "digest_and_size",
    "encode_each",
    "photo_hash",
    "raw_digests",
]

# Bounds in UTF-8 bytes (PROTOCOL.md section 7). Real names, numbers and streets stay under
# ~200 bytes and real notes under a few KiB; these leave an order of magnitude of room.
MAX_TEXT_BYTES = 1024  # every string field but the note (uid has the same bound)
MAX_NOTE_BYTES = 8 * 1024
MAX_ENTRIES = 64  # phones, emails and addresses, each
MAX_N_PARTS = 5  # vCard N: family, given, additional, prefixes, suffixes
HASH_SIZE = 32  # SHA-256, the photo's name
# The whole contact as encoded (as sent): what the car stores and serves for it.
MAX_CONTACT_BYTES = 64 * 1024
MAX_MIME_BYTES = 128  # RFC 6838 caps type and subtype at 127 characters each


class Phone(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, gc=False):
    number: str
    type: str = ""
    label: str = ""


class Email(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, gc=False):
    address: str
    type: str = ""
    label: str = ""


class Address(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, gc=False):
    """A postal address in vCard ADR order."""

    po_box: str = ""
    extended: str = ""
    street: str = ""
    locality: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""
    type: str = ""
    label: str = ""


class Contact(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, gc=False):
    """One contact.

    ``uid`` is stable across exports: the vCard ``UID`` or ``X-BT-UID`` when present,
    otherwise derived from the name (see ``protocol.vcard``). ``n`` is the structured name
    in vCard order: family, given, additional, prefixes, suffixes.
    """

    uid: str
    fn: str
    n: tuple[str, ...] = ()
    org: str = ""
    title: str = ""
    phones: tuple[Phone, ...] = ()
    emails: tuple[Email, ...] = ()
    addresses: tuple[Address, ...] = ()
    birthday: str = ""  # ISO 8601 date, "--MM-DD" when the year is unknown
    note: str = ""
    photo: bytes = b""  # SHA-256 of the photo bytes, empty when none


class Photo(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, gc=False):
    """Photo bytes, addressed by their SHA-256."""

    hash: bytes
    mime: str
    data: bytes


_enc = msgspec.msgpack.Encoder()


def check_bounds(contact: Contact, encoded_size: int | None = None) -> str | None:
    """Say why a contact is out of the bounds of PROTOCOL.md section 7, or None.

    Args:
        contact: the contact to check (the uid is checked by ``protocol.sync``).
        encoded_size: the length of its msgpack bytes as sent; encoded here when None.

    Returns:
        A short reason naming the field (no field content), or None when within bounds.
    """
    c = contact
    if len(c.n) > MAX_N_PARTS:
        return f"n has {len(c.n)} parts (at most {MAX_N_PARTS})"
    for kind, items in (("phone", c.phones), ("email", c.emails), ("address", c.addresses)):
        if len(items) > MAX_ENTRIES:
            return f"{len(items)} {kind} entries (at most {MAX_ENTRIES})"
    if len(c.photo) not in (0, HASH_SIZE):
        return f"photo hash of {len(c.photo)} bytes (0 or {HASH_SIZE})"
    size = len(_enc.encode(c)) if encoded_size is None else encoded_size
    # No string is longer than the whole encoding: a typical contact (~100 bytes) is done.
    if size > MAX_TEXT_BYTES and (why := _check_texts(c)) is not None:
        return why
    if size > MAX_CONTACT_BYTES:
        return f"contact of {size} bytes (at most {MAX_CONTACT_BYTES})"
    return None


def _check_texts(c: Contact) -> str | None:
    """Check each string field against its bound."""
    if _utf8_len(c.note) > MAX_NOTE_BYTES:
        return f"note over {MAX_NOTE_BYTES} bytes"
    texts = [("fn", c.fn), ("org", c.org), ("title", c.title), ("birthday", c.birthday)]
    texts += [("n", part) for part in c.n]
    for kind, items in (("phone", c.phones), ("email", c.emails), ("address", c.addresses)):
        for it in items:
            fields = zip(it.__struct_fields__, msgspec.structs.astuple(it), strict=True)
            texts += ((f"{kind} {name}", value) for name, value in fields)
    for name, value in texts:
        if _utf8_len(value) > MAX_TEXT_BYTES:
            return f"{name} over {MAX_TEXT_BYTES} bytes"
    return None


def contact_digest(contact: Contact) -> bytes:
    """Return a 16-byte digest of the contact's encoded form; equal contacts, equal digests."""
    return hashlib.blake2b(_enc.encode(contact), digest_size=16).digest()


def digest_and_size(contact: Contact) -> tuple[bytes, int]:
    """Return ``(contact_digest(contact), encoded size)`` from a single encoding."""
    raw = _enc.encode(contact)
    return hashlib.blake2b(raw, digest_size=16).digest(), len(raw)


_raw_list = msgspec.msgpack.Decoder(list[msgspec.Raw])
_blake16 = functools.partial(hashlib.blake2b, digest_size=16)
_hash_digest = operator.methodcaller("digest")
_N, _PHONES, _EMAILS, _ADDRESSES, _PHOTO = map(
    operator.attrgetter, ("n", "phones", "emails", "addresses", "photo")
)
_HASH_SIZES = frozenset((0, HASH_SIZE))


def encode_each(contacts: Sequence[Contact]) -> list[msgspec.Raw]:
    """Return each contact's msgpack bytes (as ``msgspec.Raw``, a buffer) from one encoding.

    The bytes are exactly ``msgspec.msgpack.encode(contact)`` of each: msgpack is context
    free, so a list's elements are their own encodings, cut out in C.
    """
    return _raw_list.decode(_enc.encode(contacts)) if contacts else []


def raw_digests(raws: Iterable[bytes | msgspec.Raw]) -> list[bytes]:
    """Return ``contact_digest`` of each contact given as its msgpack bytes."""
    return list(map(_hash_digest, map(_blake16, raws)))


def bounds_refusals(contacts: Sequence[Contact], sizes: Sequence[int]) -> dict[int, str]:
    """``check_bounds`` of many contacts: ``{index: why}`` for those out of bounds.

    Args:
        contacts: the contacts.
        sizes: their encoded sizes, in the same order.

    Returns:
        The index and reason of every contact ``check_bounds`` refuses (empty when none).
    """
    if not contacts:
        return {}
    # A few aggregate tests in C cover every bound but the strings'; a string is never
    # longer than the whole encoding, so only contacts over MAX_TEXT_BYTES need theirs
    # measured. A book failing an aggregate test (never a real one) is checked one by one.
    aggregate_ok = (
        max(map(len, map(_N, contacts))) <= MAX_N_PARTS
        and max(map(len, map(_PHONES, contacts))) <= MAX_ENTRIES
        and max(map(len, map(_EMAILS, contacts))) <= MAX_ENTRIES
        and max(map(len, map(_ADDRESSES, contacts))) <= MAX_ENTRIES
        and set(map(len, map(_PHOTO, contacts))) <= _HASH_SIZES
    )
    suspects: Iterable[int] = range(len(contacts))
    if aggregate_ok:
        suspects = compress(suspects, map(MAX_TEXT_BYTES.__lt__, sizes))
    out: dict[int, str] = {}
    for i in suspects:
        if (why := check_bounds(contacts[i], sizes[i])) is not None:
            out[i] = why
    return out


def photo_hash(data: bytes) -> bytes:
    """Return the SHA-256 that names a photo."""
    return hashlib.sha256(data).digest()


def _utf8_len(text: str) -> int:
    """UTF-8 length; ASCII text (the common case) is measured without encoding it."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
