"""Deterministic, realistic sample contacts as vCard 3.0, for the demo, benches and tests.

``generate_vcards(n)`` writes what a phone's export looks like: varied names (including
non-ASCII ones), one to three typed phones, emails, and some organisations, addresses,
birthdays, notes with escaped newlines and commas, iOS-style ``X-ABLabel`` groups, and,
for the first ``photos`` cards, a small embedded PNG. Lines are folded at 75 octets on
character boundaries, as RFC 6350 asks. The same ``(n, seed, photos)`` always gives the
same bytes.

    python -m phone_bridge.sample_data 2000 > contacts.vcf   # or: python -m shell.sample_data
"""

from __future__ import annotations

import base64
import random
import struct
import sys
import zlib

__all__ = ["generate_vcards", "main", "sample_png"]

GIVEN = [
    "Anna", "Ben", "Chloé", "David", "Émile", "Fatima", "Günther", "Hana", "Igor", "Jürgen",
    "Kateřina", "Liam", "María", "Noah", "Olga", "Pierre", "Quentin", "Rosa", "Søren", "Tomás",
    "Ursula", "Vikram", "Wei", "Xavier", "Yuki", "Zoë", "Łukasz", "Ægir", "Иван", "Екатерина",
    "李", "Mary", "José", "Nikolaj", "Aoife", "Siobhán",
]  # fmt: skip
FAMILY = [
    "Smith", "Müller", "O'Neil", "García", "Nguyen", "Kowalski", "Ørsted", "Dubois", "Rossi",
    "Yamamoto", "Иванова", "Petrov", "van der Berg", "Núñez", "Schmidt", "Öztürk", "Brown",
    "Lefèvre", "Novák", "Chen", "王", "Fitzgerald", "de la Cruz", "Andersson", "Kim",
]  # fmt: skip
ORGS = ["Acme, Inc.", "Globex", "Initech", "Umbrella; R&D", "Stark Industries", "Müller GmbH"]
TITLES = ["Engineer", "Manager", "Director", "Intern", "Consultant"]
STREETS = ["Main St", "Hauptstraße", "Rue de Rivoli", "Calle Mayor", "High Street", "Elm Ave"]
CITIES = [
    ("Springfield", "IL", "62701", "USA"), ("Berlin", "", "10115", "Germany"),
    ("Paris", "", "75001", "France"), ("Madrid", "", "28013", "Spain"),
    ("London", "", "SW1A 2AA", "UK"), ("Toronto", "ON", "M5H 2N2", "Canada"),
]  # fmt: skip
PHONE_TYPES = ["CELL", "HOME", "WORK", "WORK,FAX", "MAIN", "PAGER", "OTHER"]
LABELS = ["Car phone", "Office", "_$!<Mobile>!$_", "Grandma's", "Boat"]
NOTES = ["Met at the conference, 2023", "Allergic to nuts\nPrefers email", "Call after 6pm"]
DOMAINS = ["example.com", "example.org", "mail.example.net"]
_FOLD = 75  # RFC 6350: lines SHOULD NOT be longer than 75 octets


def generate_vcards(n: int, *, seed: int = 1, photos: int = 0) -> bytes:
    """Generate ``n`` vCard 3.0 cards.

    Args:
        n: how many cards.
        seed: the random seed; same arguments, same bytes.
        photos: how many of the cards (the first ones) carry an embedded PNG.

    Returns:
        The file's bytes, UTF-8 with CRLF line endings.
    """
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        out.extend(_fold(line) for line in _card(rng, i, with_photo=i < photos))
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


def sample_png(index: int) -> bytes:
    """Return a valid 8x8 RGB PNG whose colour depends on ``index`` (so hashes differ).

    Args:
        index: any integer.

    Returns:
        The PNG bytes (about 80 bytes).
    """
    rgb = bytes(((index * 37) % 256, (index * 91) % 256, (index * 53) % 256))
    raw = b"".join(b"\x00" + rgb * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def main(argv: list[str] | None = None) -> int:
    """Write ``N`` sample cards to stdout: ``python -m phone_bridge.sample_data N [PHOTOS]``.

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        count = int(args[0]) if args else 100
        photos = int(args[1]) if len(args) > 1 else 0
    except ValueError:
        print("usage: python -m phone_bridge.sample_data N [PHOTOS]", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(generate_vcards(count, photos=photos))
    return 0


def _card(rng: random.Random, i: int, *, with_photo: bool) -> list[str]:
    """Return the unfolded lines of one card."""
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"N:{_esc(family)};{_esc(given)};;;"]
    lines.append(f"FN:{_esc(given)} {_esc(family)}")
    if rng.random() < 0.3:
        lines.append(f"UID:urn:uuid:{rng.getrandbits(128):032x}")
    for k in range(rng.randint(1, 3)):
        number = f"+{rng.randint(1, 49)} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}"
        if rng.random() < 0.15:
            lines += [f"item{k + 1}.TEL:{number}", f"item{k + 1}.X-ABLabel:{rng.choice(LABELS)}"]
        else:
            lines.append(f"TEL;TYPE={rng.choice(PHONE_TYPES)}:{number}")
    if rng.random() < 0.8:
        user = f"{given}.{family}".lower().replace(" ", "").replace("'", "")
        lines.append(f"EMAIL;TYPE=INTERNET;TYPE={rng.choice(['HOME', 'WORK'])}:{user}{i}@"
                     f"{rng.choice(DOMAINS)}")  # fmt: skip
    lines += _extras(rng)
    if with_photo:
        lines.append("PHOTO;ENCODING=b;TYPE=PNG:" + base64.b64encode(sample_png(i)).decode())
    lines.append("END:VCARD")
    return lines


def _extras(rng: random.Random) -> list[str]:
    """Return the optional lines: ORG, TITLE, ADR, BDAY, NOTE."""
    lines: list[str] = []
    if rng.random() < 0.4:
        lines += [f"ORG:{_esc(rng.choice(ORGS))}", f"TITLE:{rng.choice(TITLES)}"]
    if rng.random() < 0.3:
        city, region, code, country = rng.choice(CITIES)
        street = f"{rng.randint(1, 200)} {rng.choice(STREETS)}"
        lines.append(f"ADR;TYPE={rng.choice(['HOME', 'WORK'])}:;;{_esc(street)};{city};"
                     f"{region};{code};{country}")  # fmt: skip
    if rng.random() < 0.25:
        lines.append(f"BDAY:{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-"
                     f"{rng.randint(1, 28):02d}")  # fmt: skip
    if rng.random() < 0.2:
        lines.append(f"NOTE:{_esc(rng.choice(NOTES))}")
    return lines


def _esc(text: str) -> str:
    """Escape a text value for vCard 3.0."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")


def _fold(line: str) -> str:
    """Fold a line at 75 octets without splitting a UTF-8 character."""
    if len(line.encode()) <= _FOLD:
        return line
    parts: list[str] = []
    current, size = "", 0
    for ch in line:
        width = len(ch.encode())
        if size + width > _FOLD:
            parts.append(current)
            current, size = " ", 1  # the continuation's leading space counts
        current += ch
        size += width
    parts.append(current)
    return "\r\n".join(parts)


def _chunk(kind: bytes, body: bytes) -> bytes:
    """Return one PNG chunk: length, type, body, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


if __name__ == "__main__":
    raise SystemExit(main())
