"""The contact model shared by the phone and the car.

Field values are normalised at import (see ``protocol.vcard``): phone and email types are
lower-case words from a small vocabulary (``cell``, ``home``, ``work``, ``fax``, ``pager``,
``main``, ``other``) and a free ``label`` carries anything else, such as iOS's
``X-ABLabel``. Photos are not inline: ``photo`` is the SHA-256 of the image bytes, and the
bytes travel once per hash (``protocol.sync``).

Structs are ``array_like`` so a typical contact encodes to well under 120 bytes. They forbid
extra trailing elements: the car digests and stores a contact as the bytes the phone sent,
so those bytes must hold nothing but the contact.
"""

from __future__ import annotations

import hashlib

import msgspec

__all__ = [
    "Address",
    "Contact",
    "Email",
    "Phone",
    "Photo",
    "contact_digest",
    "digest_and_size",
    "photo_hash",
]


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
