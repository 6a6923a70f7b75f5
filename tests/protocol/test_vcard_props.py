"""Property tests for vCard import: garbage never raises, written contacts re-import equal."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.contacts import Address, Contact, Email, Phone, Photo, photo_hash
from protocol.errors import VCardError
from protocol.vcard import ImportResult, import_vcards

TYPES = ["", "cell", "home", "work", "fax", "pager", "main", "other"]
# Labels that are also type words would (rightly) set the type on import.
TYPE_WORDS = {"cell", "mobile", "iphone", "home", "work", "fax", "homefax", "workfax",
              "otherfax", "pager", "main", "company_main", "other"}  # fmt: skip
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check(result: ImportResult) -> None:
    """The import contract: typed result, typed errors, no internal errors."""
    assert isinstance(result, ImportResult)
    assert all(isinstance(e, VCardError) and e.line >= 1 for e in result.errors)
    assert not [e for e in result.errors if e.reason.startswith("internal")], result.errors
    assert result.cards_seen >= len(result.contacts)
    for contact in result.contacts:
        assert contact.fn and contact.uid
        assert not contact.photo or contact.photo in result.photos


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check(import_vcards(data))
    check(import_vcards(b"BEGIN:VCARD\r\n" + data))


TOKENS = [
    "BEGIN:VCARD", "END:VCARD", "VERSION:2.1", "FN:A", "N:a;b\\;c;;;", "TEL;CELL:1", " x",
    "\tfold", "=", "=0D=0A=", "NOTE;ENCODING=QUOTED-PRINTABLE:a=", "NOTE;QUOTED-PRINTABLE:=E9",
    "PHOTO;ENCODING=b:", "PHOTO;BASE64:QUJD", "QUJDRA==", "", "item1.X-ABLabel:_$!<Home>!$_",
    "item1.TEL:2", "TEL;TYPE=\"a:b\":3", "ADR:;;;", "BDAY:--1399", "no colon", ":x",
    "N;CHARSET=nope:\xe9", "FN;CHARSET=UTF-16:ab", "UID:", "X-BT-UID:z", "ORG:\\",
]  # fmt: skip


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(TOKENS), max_size=40),
    st.sampled_from(["\r\n", "\n", "\r"]),
    st.sampled_from(["utf-8", "latin-1", "utf-16-le", "utf-16-be"]),
)
def test_vcard_shaped_garbage_never_raises(lines: list[str], eol: str, enc: str) -> None:
    data = ("BEGIN:VCARD" + eol + eol.join(lines)).encode(enc, "replace")
    check(import_vcards(data))


def text(*, newline: bool = False, min_size: int = 0) -> st.SearchStrategy[str]:
    """Printable text that import would not change by trimming."""
    chars = st.characters(
        exclude_categories=("Cc", "Cs"), include_characters="\n" if newline else None
    )
    return st.text(chars, min_size=min_size, max_size=30).filter(lambda s: s == s.strip())


labels = st.one_of(
    st.just(""),
    text(min_size=1).filter(
        lambda s: s.lower().removeprefix("x-") not in TYPE_WORDS and not s.startswith("_$!<")
    ),
)
numbers = st.text("0123456789+-() ", min_size=1, max_size=20).filter(lambda s: s == s.strip())
dates = st.dates().map(lambda d: d.isoformat() if d.year >= 1000 else d.strftime("--%m-%d"))
photos = st.binary(max_size=300).map(lambda b: PNG_MAGIC + b)


@st.composite
def contacts(draw: st.DrawFn) -> tuple[Contact, Photo | None]:
    n = draw(st.one_of(st.just(()), st.tuples(*[text()] * 5).filter(any)))
    photo_data = draw(st.one_of(st.none(), photos))
    photo = Photo(photo_hash(photo_data), "image/png", photo_data) if photo_data else None
    contact = Contact(
        uid=draw(text(min_size=1)),
        fn=draw(text(min_size=1)),
        n=n,
        org=draw(text()),
        title=draw(text()),
        phones=tuple(draw(st.lists(st.builds(Phone, numbers, st.sampled_from(TYPES), labels),
                                   max_size=3))),
        emails=tuple(draw(st.lists(st.builds(Email, text(min_size=1), st.sampled_from(TYPES),
                                             labels), max_size=2))),
        addresses=tuple(draw(st.lists(addresses(), max_size=2))),
        birthday=draw(st.one_of(st.just(""), dates)),
        note=draw(text(newline=True)),
        photo=photo.hash if photo else b"",
    )  # fmt: skip
    return contact, photo


@st.composite
def addresses(draw: st.DrawFn) -> Address:
    parts = draw(st.tuples(*[text()] * 7).filter(any))
    return Address(*parts, type=draw(st.sampled_from(TYPES)), label=draw(labels))


def esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")


def fold(line: str) -> bytes:
    """Fold at 60 octets on raw bytes, deliberately splitting multi-byte characters."""
    raw = line.encode()
    chunks = [raw[i : i + 60] for i in range(0, len(raw), 60)] or [b""]
    return b"\r\n ".join(chunks)


def typed(group: int, name: str, kind: str, label: str, value: str) -> list[str]:
    """Write a typed property, with an iOS-style X-ABLabel group when labelled."""
    params = f";TYPE={kind.upper()}" if kind else ""
    if not label:
        return [f"{name}{params}:{value}"]
    return [f"item{group}.{name}{params}:{value}", f"item{group}.X-ABLabel:{esc(label)}"]


def to_vcard(contact: Contact, photo: Photo | None) -> bytes:
    """A tiny vCard 3.0 writer, independent of the importer."""
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{esc(contact.uid)}", f"FN:{esc(contact.fn)}"]
    if contact.n:
        lines.append("N:" + ";".join(esc(p) for p in contact.n))
    lines += [f"ORG:{esc(contact.org)}"] if contact.org else []
    lines += [f"TITLE:{esc(contact.title)}"] if contact.title else []
    group = 0
    for phone in contact.phones:
        group += 1
        lines += typed(group, "TEL", phone.type, phone.label, phone.number)
    for email in contact.emails:
        group += 1
        lines += typed(group, "EMAIL", email.type, email.label, esc(email.address))
    for adr in contact.addresses:
        group += 1
        value = ";".join(esc(p) for p in (adr.po_box, adr.extended, adr.street, adr.locality,
                                          adr.region, adr.postcode, adr.country))  # fmt: skip
        lines += typed(group, "ADR", adr.type, adr.label, value)
    lines += [f"BDAY:{contact.birthday}"] if contact.birthday else []
    lines += [f"NOTE:{esc(contact.note)}"] if contact.note else []
    if photo is not None:
        lines.append("PHOTO;ENCODING=b;TYPE=PNG:" + base64.b64encode(photo.data).decode())
    lines.append("END:VCARD")
    return b"\r\n".join(fold(line) for line in lines) + b"\r\n"


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(contacts(), max_size=4, unique_by=lambda cp: cp[0].uid))
def test_written_contacts_reimport_equal(items: list[tuple[Contact, Photo | None]]) -> None:
    data = b"".join(to_vcard(c, p) for c, p in items)
    result = import_vcards(data) if items else ImportResult([], {}, [], 0)
    assert result.errors == []
    assert result.contacts == [c for c, _ in items]
    assert result.photos == {p.hash: p for _, p in items if p is not None}
