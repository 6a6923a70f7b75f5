"""``phone_bridge.book_cache``: an unchanged vCard file is read back, not parsed again.

What a user relies on: the second ``sync`` of the same file gives the same contacts (and
the same skipped cards) without parsing; any change to the file's bytes, even one that
keeps its size and mtime, is parsed again; a damaged or unwritable cache costs a parse and
one log line, never the sync; and the cache is private (0600) like the rest of the state.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from phone_bridge import book_cache
from phone_bridge.book_cache import BookCache
from phone_bridge.cli.inputs import read_contacts
from phone_bridge.engine import load_contacts

CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nTEL:+1555{n:07d}\r\nEND:VCARD\r\n"
BROKEN = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:broken\r\nN:;;;;\r\nEND:VCARD\r\n"


def _book(path: Path, names: list[str], *, broken: bool = False) -> Path:
    cards = [CARD.format(uid=f"u{i}", fn=fn, n=i) for i, fn in enumerate(names)]
    if broken:
        cards.insert(1, BROKEN)
    path.write_text("".join(cards))
    return path


class CountingParser:
    """``import_vcards``, counting the real parses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = book_cache.import_vcards

        def parse(data: bytes) -> object:
            self.calls += 1
            return real(data)

        monkeypatch.setattr(book_cache, "import_vcards", parse)


def _load(state: Path, path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """Contacts' names and skipped cards, as ``sync`` loads them through the cache."""
    book = load_contacts(path, importer=BookCache(state).importer(path))
    return [c.fn for c in book.contacts], [(e.line, e.reason) for e in book.errors]


@pytest.fixture
def parser(monkeypatch: pytest.MonkeyPatch) -> CountingParser:
    return CountingParser(monkeypatch)


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path, parser: CountingParser) -> None:
    path = _book(tmp_path / "book.vcf", ["Ada", "Grace", "Linus"], broken=True)
    state = tmp_path / "state"
    first = _load(state, path)
    again = _load(state, path)
    assert parser.calls == 1
    assert again == first
    assert first[0] == ["Ada", "Grace", "Linus"] and len(first[1]) == 1  # the broken card


def test_a_changed_file_is_parsed_again_even_with_the_same_size_and_mtime(
    tmp_path: Path, parser: CountingParser
) -> None:
    path = _book(tmp_path / "book.vcf", ["Ada", "Grace"])
    state = tmp_path / "state"
    assert _load(state, path)[0] == ["Ada", "Grace"]
    before = path.stat()
    _book(path, ["Ada", "Grack"])  # same length
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert _load(state, path)[0] == ["Ada", "Grack"]
    assert parser.calls == 2
    assert _load(state, path)[0] == ["Ada", "Grack"] and parser.calls == 2  # cached again


def test_a_new_importer_version_parses_again(
    tmp_path: Path, parser: CountingParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _book(tmp_path / "book.vcf", ["Ada"])
    state = tmp_path / "state"
    _load(state, path)
    monkeypatch.setattr(book_cache, "importer_version", lambda: b"\x01" * 16)
    assert _load(state, path)[0] == ["Ada"]
    assert parser.calls == 2


@pytest.mark.parametrize("damage", ["garbage body", "cut short", "empty"])
def test_a_corrupt_cache_is_ignored_with_one_log_line(
    tmp_path: Path, parser: CountingParser, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    path = _book(tmp_path / "book.vcf", ["Ada", "Grace"])
    state = tmp_path / "state"
    _load(state, path)
    (entry,) = (state / "books").iterdir()
    data = entry.read_bytes()
    damaged = {
        "garbage body": data[:52] + b"\xc1not msgpack",
        "cut short": data[: len(data) // 2],
        "empty": b"",
    }[damage]
    entry.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="phone_bridge.book_cache"):
        assert _load(state, path)[0] == ["Ada", "Grace"]
    assert parser.calls == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if damage == "empty":  # no header to match: just another version, parsed silently
        assert warnings == []
    else:
        assert len(warnings) == 1 and "is corrupt" in warnings[0], warnings
    # Rewritten: the next load is a hit again.
    assert _load(state, path)[0] == ["Ada", "Grace"] and parser.calls == 2


def test_the_cache_is_private_like_the_rest_of_the_state(tmp_path: Path) -> None:
    path = _book(tmp_path / "book.vcf", ["Ada"])
    state = tmp_path / "state"
    _load(state, path)
    books = state / "books"
    (entry,) = books.iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(books.stat().st_mode) & 0o077 == 0
    assert not [p for p in books.iterdir() if p.name.startswith(".")]  # no temporary left


def test_an_unwritable_cache_is_logged_and_the_book_still_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _book(tmp_path / "book.vcf", ["Ada"])
    state = tmp_path / "state"
    state.mkdir()
    (state / "books").write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="phone_bridge.book_cache"):
        assert _load(state, path)[0] == ["Ada"]
    assert any("not written" in r.getMessage() for r in caplog.records)


def test_read_contacts_uses_the_state_dirs_cache(tmp_path: Path, parser: CountingParser) -> None:
    path = _book(tmp_path / "book.vcf", ["Ada", "Grace"])
    state = tmp_path / "state"
    names = [[c.fn for c in read_contacts(path, False, state_dir=state).contacts]
             for _ in range(2)]  # fmt: skip
    assert names == [["Ada", "Grace"]] * 2
    assert parser.calls == 1
    assert len(list((state / "books").iterdir())) == 1
    # Without a state dir (e.g. a caller that keeps no state) nothing is cached.
    read_contacts(path, False)
    assert len(list((state / "books").iterdir())) == 1
