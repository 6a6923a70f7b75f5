"""The sample vCard generator: deterministic, realistic, importable, runnable as a module."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

from phone_bridge.sample_data import generate_vcards, sample_png
from protocol.vcard import import_vcards

ROOT = Path(__file__).resolve().parent.parent.parent


def test_same_arguments_same_bytes_other_seed_other_bytes() -> None:
    assert generate_vcards(50, seed=3) == generate_vcards(50, seed=3)
    assert generate_vcards(50, seed=3) != generate_vcards(50, seed=4)


def test_cards_import_cleanly_with_realistic_variety() -> None:
    result = import_vcards(generate_vcards(500, photos=20))
    assert result.errors == []
    assert result.cards_seen == len(result.contacts) == 500
    contacts = result.contacts
    assert len({c.uid for c in contacts}) == 500
    assert all(1 <= len(c.phones) <= 3 for c in contacts)
    assert any(not c.fn.isascii() for c in contacts)
    assert {p.type for c in contacts for p in c.phones} >= {"cell", "home", "work", "fax"}
    assert any(p.label for c in contacts for p in c.phones)
    assert sum(bool(c.emails) for c in contacts) > 300
    assert any(c.org for c in contacts) and any(c.addresses for c in contacts)
    assert any(c.birthday for c in contacts)
    assert any("\n" in c.note for c in contacts)
    assert sum(bool(c.photo) for c in contacts) == 20
    assert len(result.photos) == 20
    assert {p.mime for p in result.photos.values()} == {"image/png"}


def test_lines_are_folded_to_75_octets() -> None:
    data = generate_vcards(200, photos=5)
    assert max(len(line) for line in data.split(b"\r\n")) <= 75
    data.decode("utf-8")  # folds never split a character


def test_sample_png_is_a_valid_png() -> None:
    png = sample_png(7)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    idat = png.index(b"IDAT")
    length = int.from_bytes(png[idat - 4 : idat], "big")
    assert len(zlib.decompress(png[idat + 4 : idat + 4 + length])) == 8 * (1 + 8 * 3)
    assert sample_png(7) != sample_png(8)


def test_module_main_writes_cards_to_stdout() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "phone_bridge.sample_data", "25"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert out == generate_vcards(25)
    bad = subprocess.run(
        [sys.executable, "-m", "phone_bridge.sample_data", "many"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert bad.returncode == 2 and b"usage" in bad.stderr
