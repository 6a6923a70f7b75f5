"""The contact model shared by the phone and the car.

Field values are normalised at import (see ``protocol.vcard``): phone and email types are
lower-case words from a small vocabulary (``cell``, ``home``, ``work``, ``fax``, ``pager``,
``main``, ``other``) and a free ``label`` carries anything else, such as iOS's
``X-ABLabel``. Photos are not inline: ``photo`` is the SHA-256 of the image bytes, and the
bytes travel once per hash (``protocol.sync``).

Structs are ``array_like`` so a typical contact encodes to well under 120 bytes. They forbid
extra trailing elements: the car digests and stores a contact as the bytes the phone sent,
so those bytes must hold nothing but the contact.

Bounds. Every field has one (``check_bounds``, PROTOCOL.md section 7), far beyond any
real phone book, so a paired phone cannot make the car store and serve megabytes for one
contact: a compressed batch would otherwise carry a 4 MB name in a few KB. The car refuses
a batch holding a contact out of bounds; the phone leaves such a contact out of the sync.
"""

from __future__ import annotations

import hashlib

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
    "check_bounds",
    "contact_digest",
    "digest_and_size",
    "photo_hash",
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


class Phone(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    number: str
    type: str = ""
    label: str = ""


class Email(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    address: str
    type: str = ""
    label: str = ""


class Address(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
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


class Contact(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
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


class Photo(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
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


def photo_hash(data: bytes) -> bytes:
    """Return the SHA-256 that names a photo."""
    return hashlib.sha256(data).digest()


def _utf8_len(text: str) -> int:
    """UTF-8 length; ASCII text (the common case) is measured without encoding it."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
