"""The fast vCard import reads every file exactly as the line-by-line reading did.

``iter_cards`` takes most lines as one-line properties without looking at them
(``protocol.vcard_lines.slow_lines`` names the others); ``iter_cards(..., plain=False)``
reads every line the long way and is the reference. The pinned digest is the import of
two generated 10k books and every corpus and sample file by the importer before the
fast path (commit 74501e2): the output must not move by one character.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_bridge.sample_data import generate_vcards
from protocol.contacts import Contact
from protocol.errors import VCardError
from protocol.vcard import ImportResult, import_vcards
from protocol.vcard_lex import RawCard, front_end, iter_cards

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "tests" / "data" / "vcard").glob("*.vcf")) + sorted(
    (ROOT / "samples").glob("*.vcf")
)
# sha256 over _projection() of the books and files in test_import_is_unchanged, as the
# importer of 74501e2 gave them. If the generator or a rule changes on purpose, recompute.
PINNED = "595f85da1cd82f055e53cc89f965009310784f145f8283510928a186caddd84f"
# Fragments that exercise every reason a line is not plain, and the lines around them.
PIECES = [
    "BEGIN:VCARD", "END:VCARD", "begin:vcard ", "End:VCard\t", "VERSION:3.0", "FN:A B",
    "N:a;b\\;c;;;", "TEL;TYPE=CELL:+1 555", "item1.TEL:2", "item1.X-ABLabel:Boat", "",
    " ", "\t", " folded", "\tfolded", "#comment", "#", "=", "NOTE;QUOTED-PRINTABLE:a=",
    "NOTE;ENCODING=QUOTED-PRINTABLE:=C3=A9=", "=41", "PHOTO;ENCODING=b:", "PHOTO;BASE64:QUJD",
    "X-BASE64-ISH:x", "QUJDRA==", "QUJD  ", "TEL;TYPE=\"a:b\":3", "no colon", ":x", "\x0b",
    "\x0cFN:x", "EMAIL;ENCODING=B:QQ==", "BEGIN:VCALENDAR", "BEGIN", "END:", "x.BEGIN:VCARD",
]  # fmt: skip


def _cards(lines: list[bytes], *, plain: bool) -> list[Any]:
    """iter_cards' output as comparable values (VCardError compares by identity)."""
    out: list[Any] = []
    for card in iter_cards(lines, plain=plain):
        if isinstance(card, VCardError):
            out.append(("error", card.line, card.reason))
        else:
            assert isinstance(card, RawCard)
            warnings = [(w.line, w.reason) for w in card.warnings]
            out.append((card.line, card.props, warnings))
    return out


def _same_both_ways(data: bytes) -> None:
    lines = front_end(data).lines
    assert _cards(lines, plain=True) == _cards(lines, plain=False)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.sampled_from(["\r\n", "\n", "\r"]))
def test_fast_path_reads_what_the_long_way_reads(pieces: list[str], eol: str) -> None:
    _same_both_ways(eol.join(pieces).encode())


def test_fast_path_reads_mutated_corpus_files_as_the_long_way() -> None:
    rng = random.Random(13)
    seeds = [path.read_bytes() for path in FILES] + [generate_vcards(4, seed=3, photos=2)]
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = rng.choice([b"\r\n ", b"\n", b"=\r\n", b"\r\n\r\n", b"#", b"\t"])
            if rng.random() < 0.3:
                del data[rng.randrange(len(data) + 1) :]
        _same_both_ways(bytes(data))


def test_a_generated_book_is_read_as_the_long_way() -> None:
    _same_both_ways(generate_vcards(2000, seed=5, photos=50))


def _projection(result: ImportResult) -> dict[str, Any]:
    """Everything a user of the import sees, as JSON (field names stay out of it)."""
    return {
        "contacts": [_contact(c) for c in result.contacts],
        "photos": sorted(
            [h.hex(), p.mime, hashlib.sha256(p.data).hexdigest()] for h, p in result.photos.items()
        ),
        "errors": [[e.line, e.reason] for e in result.errors],
        "warnings": [[e.line, e.reason] for e in result.warnings],
        "cards_seen": result.cards_seen,
        "is_vcard": result.is_vcard,
        "truncated": result.truncated,
    }


def _contact(c: Contact) -> list[Any]:
    phones = [[p.number, p.type, p.label] for p in c.phones]
    emails = [[e.address, e.type, e.label] for e in c.emails]
    addresses = [
        [a.po_box, a.extended, a.street, a.locality, a.region, a.postcode, a.country, a.type,
         a.label]
        for a in c.addresses
    ]  # fmt: skip
    return [c.uid, c.fn, list(c.n), c.org, c.title, phones, emails, addresses, c.birthday,
            c.note, c.photo.hex()]  # fmt: skip


def test_import_is_unchanged() -> None:
    digest = hashlib.sha256()
    books = [generate_vcards(10_000, seed=7, photos=100), generate_vcards(10_000, seed=8)]
    for data in [*books, *(path.read_bytes() for path in FILES)]:
        digest.update(json.dumps(_projection(import_vcards(data)), ensure_ascii=False).encode())
    assert digest.hexdigest() == PINNED
